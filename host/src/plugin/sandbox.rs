//! Per-call store state: a WASI context with nothing inherited (no env, no
//! args, no preopens, no network), capped guest output, and a memory
//! limiter that remembers whether it refused a growth.

use super::bindings::ferry::mapping::host::{self, Level};
use bytes::Bytes;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// One guest log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// `trace` .. `error`, or `stdout` / `stderr` for raw output.
    pub level: &'static str,
    /// The text.
    pub message: String,
}

/// Guest output kept for one call, capped in bytes.
#[derive(Debug, Default)]
pub(crate) struct Captured {
    pub lines: Vec<LogLine>,
    pub kept: usize,
    pub dropped_bytes: u64,
    pub cap: usize,
}

impl Captured {
    fn push(&mut self, level: &'static str, message: &str) {
        if self.kept + message.len() > self.cap {
            self.dropped_bytes += message.len() as u64;
            return;
        }
        self.kept += message.len();
        self.lines.push(LogLine { level, message: printable(message) });
    }
}

/// Guest text with its control characters escaped (`\n`, `\u{1b}`), so a
/// guest cannot forge a line, or colours, in the host's log.
pub(crate) fn printable(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars().map(|c| if c.is_control() { c.escape_debug().to_string() } else { c.to_string() }).collect()
}

/// A stdout/stderr stream that keeps what fits and silently drops the rest,
/// so a chatty guest never fails its batch for talking.
#[derive(Clone)]
pub(crate) struct CappedPipe {
    level: &'static str,
    log: Arc<Mutex<Captured>>,
}

impl CappedPipe {
    fn write_bytes(&self, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        let mut log = self.log.lock().expect("log lock");
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            log.push(self.level, line);
        }
    }
}

impl IsTerminal for CappedPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for CappedPipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_bytes(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(1 << 16)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedPipe {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for CappedPipe {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.write_bytes(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Refuses memory beyond the limit and remembers that it did; tracks the
/// largest linear memory granted.
pub(crate) struct MemoryLimiter {
    pub max_bytes: usize,
    pub refused: Option<usize>,
    pub peak: usize,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.refused = Some(desired);
            return Ok(false);
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }
    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// Everything a store holds for one call.
pub(crate) struct StoreData {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limiter: MemoryLimiter,
    pub log: Arc<Mutex<Captured>>,
}

impl StoreData {
    pub fn new(max_memory: usize, max_log: usize) -> Self {
        let log = Arc::new(Mutex::new(Captured { cap: max_log, ..Captured::default() }));
        let wasi = WasiCtx::builder()
            .stdout(CappedPipe { level: "stdout", log: log.clone() })
            .stderr(CappedPipe { level: "stderr", log: log.clone() })
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        StoreData { wasi, table: ResourceTable::new(), limiter: MemoryLimiter { max_bytes: max_memory, refused: None, peak: 0 }, log }
    }

    /// The captured output: lines kept, bytes dropped.
    pub fn take_log(&self) -> (Vec<LogLine>, u64) {
        let mut log = self.log.lock().expect("log lock");
        (std::mem::take(&mut log.lines), log.dropped_bytes)
    }
}

impl WasiView for StoreData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl host::Host for StoreData {
    fn log(&mut self, level: Level, message: String) {
        let level = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        self.log.lock().expect("log lock").push(level, &message);
    }
}

impl super::bindings::ferry::mapping::types::Host for StoreData {}

#[cfg(test)]
mod tests {
    #[test]
    fn guest_text_cannot_forge_a_log_line() {
        assert_eq!(super::printable("ok 茶"), "ok 茶");
        assert_eq!(super::printable("a\n2026-12-04T00:00:00Z ERROR forged\r\u{1b}[31m"), "a\\n2026-12-04T00:00:00Z ERROR forged\\r\\u{1b}[31m");
    }
}
