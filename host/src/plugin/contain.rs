//! Compiling under limits. Cranelift cannot be stopped half-way, and what
//! it needs grows with a component's shape, not its size: a 3 MB component
//! of nested blocks takes about a gigabyte, a larger one minutes of CPU. So
//! a cold compile runs in a child process, the `ferry` binary itself
//! (`ferry compile-plugin`, hidden), which caps its own address space
//! before it reads the component and is killed at the compile deadline; the
//! host takes wasmtime's serialized artifact from its stdout and never
//! holds the compiler's memory. A component over the size limit is refused
//! before anything runs. An embedder with no helper program compiles in
//! process, under the size limit only.

use super::error::PluginError;
use super::limits::{CompileLimit, CompileLimits};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Refuses a component over the size limit.
pub(crate) fn check_size(limits: &CompileLimits, len: usize, origin: &str) -> Result<(), PluginError> {
    if len as u64 > limits.max_component_bytes {
        return Err(PluginError::CompileLimit {
            origin: origin.into(),
            limit: CompileLimit::Size,
            detail: format!("it is {len} bytes, over the limit of {} bytes (FERRY_COMPILE_MAX_BYTES)", limits.max_component_bytes),
        });
    }
    Ok(())
}

/// How the child must build its engine so its artifact loads in ours.
pub(crate) struct EngineFlags {
    pub fuel: bool,
    pub epoch: bool,
}

/// The exit code of a child whose compile failed cleanly (its reason on
/// stderr); any other failure is the compiler process dying.
pub const COMPILE_FAILED_EXIT: u8 = 3;
/// Stderr kept from the child, in bytes.
const STDERR_KEPT: u64 = 16 << 10;

/// Compiles `bytes` in `helper` under `limits`; the serialized artifact.
/// `threads` caps the compiler's threads (`None`: every core).
pub(crate) fn in_child(
    helper: &std::path::Path,
    limits: &CompileLimits,
    flags: &EngineFlags,
    bytes: &[u8],
    threads: Option<usize>,
    origin: &str,
) -> Result<Vec<u8>, PluginError> {
    let failed = |reason: String| PluginError::Compile { origin: origin.into(), reason };
    let mut command = Command::new(helper);
    command.arg("compile-plugin").arg("--memory-bytes").arg(limits.memory_bytes.to_string());
    if !flags.fuel {
        command.arg("--no-fuel");
    }
    if !flags.epoch {
        command.arg("--no-epoch");
    }
    // Fewer malloc arenas: each reserves 64 MiB of the capped address space.
    command.env("MALLOC_ARENA_MAX", "2").env_remove("RUST_BACKTRACE");
    if let Some(n) = threads {
        command.env("RAYON_NUM_THREADS", n.to_string());
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("cannot start the compiler process {}: {e}", helper.display())))?;
    let started = Instant::now();
    std::thread::scope(|scope| {
        let mut stdin = child.stdin.take().expect("piped stdin");
        let mut stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        // A child that dies early closes its end: the write fails, the wait tells why.
        scope.spawn(move || stdin.write_all(bytes));
        let artifact = scope.spawn(move || {
            let mut out = Vec::new();
            stdout.read_to_end(&mut out).map(|_| out)
        });
        let errors = scope.spawn(move || {
            let mut text = String::new();
            let _ = stderr.take(STDERR_KEPT).read_to_string(&mut text);
            text
        });
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.elapsed() >= limits.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(PluginError::CompileLimit {
                        origin: origin.into(),
                        limit: CompileLimit::Time,
                        detail: format!("compiling took longer than {} (FERRY_COMPILE_TIMEOUT) and was stopped", humantime::format_duration(limits.timeout)),
                    });
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => return Err(failed(format!("cannot wait for the compiler process: {e}"))),
            }
        };
        let stderr = errors.join().unwrap_or_default();
        let artifact = artifact.join().map_err(|_| failed("reading the compiler's output panicked".into()))?;
        if status.success() {
            return artifact.map_err(|e| failed(format!("cannot read the compiler's output: {e}")));
        }
        let reason = stderr.trim();
        if out_of_memory(reason) {
            return Err(PluginError::CompileLimit {
                origin: origin.into(),
                limit: CompileLimit::Memory,
                detail: format!("compiling needed more than {} bytes (FERRY_COMPILE_MEMORY) and was stopped", limits.memory_bytes),
            });
        }
        match status.code() {
            Some(code) if code == i32::from(COMPILE_FAILED_EXIT) => Err(failed(reason.to_string())),
            _ => Err(failed(format!("the compiler process ended with {status}: {}", last_line(reason)))),
        }
    })
}

/// Whether the child's stderr says it ran out of its address space.
fn out_of_memory(stderr: &str) -> bool {
    stderr.contains("memory allocation of") || stderr.contains("os error 12") || stderr.contains("Cannot allocate memory")
}

fn last_line(text: &str) -> &str {
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message")
}

/// The child's side (`ferry compile-plugin`, whose command line reads the
/// component from stdin and writes the artifact to stdout): caps this
/// process's address space, then compiles `read()`'s component for an engine
/// of these settings. The error says which step failed.
pub fn compile_child(memory_bytes: u64, fuel: bool, epoch: bool, read: impl FnOnce() -> std::io::Result<Vec<u8>>) -> Result<Vec<u8>, String> {
    limit_address_space(memory_bytes).map_err(|e| format!("cannot limit the compiler's memory: {e}"))?;
    let bytes = read().map_err(|e| format!("cannot read the component: {e}"))?;
    let options = super::EngineOptions { pooling: false, fuel, epoch, ..super::EngineOptions::default() };
    super::engine::build(&options, false).and_then(|engine| engine.precompile_component(&bytes)).map_err(|e| format!("{e:#}"))
}

/// `setrlimit(RLIMIT_AS)` on this process.
fn limit_address_space(bytes: u64) -> std::io::Result<()> {
    let limit = libc::rlimit { rlim_cur: bytes as libc::rlim_t, rlim_max: bytes as libc::rlim_t };
    // SAFETY: setrlimit reads the struct we pass and touches nothing else.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) };
    if rc == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}
