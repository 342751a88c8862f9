//! Gives the heap's free memory back to the operating system after a run.
//!
//! A serve host idles most of the time, but its scheduled runs can start
//! together (every pipeline's first run at start, or a hundred merchants on
//! one hour's tick). What that burst freed stays in glibc's arenas: 1,000
//! scheduled pipelines held 152 MB after their first runs, of which the
//! heap proper was 16 MB. After a run, a process-wide thread trims the
//! arenas (`malloc_trim`) at most once every few seconds, so a burst of a
//! thousand runs ending costs a few trims, not a thousand.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often the trimmer looks whether a run has ended.
const EVERY: Duration = Duration::from_secs(5);

/// Asks for the free heap to be given back soon (after a run ends).
pub fn after_run() {
    static TRIMMER: OnceLock<()> = OnceLock::new();
    static ENDED: AtomicBool = AtomicBool::new(false);
    ENDED.store(true, Ordering::Relaxed);
    TRIMMER.get_or_init(|| {
        let spawned = std::thread::Builder::new().name("ferry-trim".into()).spawn(|| {
            loop {
                std::thread::sleep(EVERY);
                if ENDED.swap(false, Ordering::Relaxed) {
                    trim();
                }
            }
        });
        if let Err(e) = spawned {
            tracing::warn!("the heap trimmer did not start ({e}); freed memory stays with the allocator");
        }
    });
}

/// Returns the arenas' free pages to the system, where the allocator is glibc's.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers and only walks the allocator's
    // own arenas under their locks; any thread may call it at any time.
    #[allow(unsafe_code)]
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    /// A freed burst is given back: RSS falls after a trim (Linux, glibc).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn a_trim_gives_a_freed_burst_back() {
        let rss = || {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok()).unwrap()
        };
        // Many small blocks, from several threads (so several arenas), touched and freed.
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    let blocks: Vec<Vec<u8>> = (0..20_000).map(|i| vec![i as u8; 1000]).collect();
                    // Keep the last block so the arena's top is not free (no automatic trim).
                    let last = blocks.last().cloned();
                    drop(blocks);
                    last
                })
            })
            .collect();
        let kept: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let before = rss();
        super::trim();
        let after = rss();
        assert!(after + 20_000 < before, "trimming gave back {} KB of an 80 MB freed burst ({before} -> {after} KB)", before.saturating_sub(after));
        drop(kept);
    }
}
