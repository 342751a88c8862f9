//! Where a cold compile runs. Cranelift spreads a component's functions
//! over rayon's threads: on an idle host that is every core, the fastest
//! swap. While batches are being mapped, it would take their cores too and
//! slow them for the length of the compile. So then a compile runs on a
//! pool one core smaller, leaving a core to the batches: the swap takes
//! longer, the batches keep their pace. A host with one core compiles as
//! before.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long after the last batch a host still counts as mapping (batches
/// come one after another, with short gaps between them).
const QUIET: Duration = Duration::from_millis(500);

/// Batches being mapped with an engine's plugins, and when the last ended.
#[derive(Debug)]
pub(crate) struct Activity {
    in_flight: AtomicUsize,
    /// Milliseconds from `origin` to the end of the last batch (0: none yet).
    last_end_ms: AtomicU64,
    origin: Instant,
}

impl Default for Activity {
    fn default() -> Self {
        Activity { in_flight: AtomicUsize::new(0), last_end_ms: AtomicU64::new(0), origin: Instant::now() }
    }
}

/// Counts one batch as mapped until dropped.
pub(crate) struct Mapping<'a>(&'a Activity);

impl Drop for Mapping<'_> {
    fn drop(&mut self) {
        let now = self.0.origin.elapsed().as_millis().max(1) as u64;
        self.0.last_end_ms.store(now, Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Activity {
    /// Marks a batch as being mapped.
    pub(crate) fn batch(&self) -> Mapping<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Mapping(self)
    }

    /// Whether a batch is mapped now or ended less than [`QUIET`] ago.
    pub(crate) fn busy(&self) -> bool {
        self.busy_at(self.origin.elapsed())
    }

    /// [`busy`](Self::busy) as seen `at` after the origin.
    fn busy_at(&self, at: Duration) -> bool {
        let last = self.last_end_ms.load(Ordering::Relaxed);
        self.in_flight.load(Ordering::Relaxed) > 0 || (last > 0 && at.as_millis() as u64 <= last + QUIET.as_millis() as u64)
    }
}

/// Runs `compile` on every core when the host is idle, on all but one
/// while it maps batches.
pub(crate) fn beside_batches<T: Send>(activity: &Activity, compile: impl FnOnce() -> T + Send) -> T {
    match spare_pool() {
        Some(pool) if activity.busy() => pool.install(compile),
        _ => compile(),
    }
}

/// The compiler threads a compile in another process may use: all but one
/// core while batches are mapped, else every core (`None`).
pub(crate) fn threads_beside_batches(activity: &Activity) -> Option<usize> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores > 1 && activity.busy()).then_some(cores - 1)
}

/// A rayon pool of one thread fewer than the cores (none on one core).
fn spare_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if cores < 2 {
            return None;
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(cores - 1)
            .thread_name(|i| format!("ferry-compile-{i}"))
            .build()
            .map_err(|e| tracing::warn!("no spare compile pool ({e}); compiles use every core"))
            .ok()
    })
    .as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Busy while a batch runs and for a short while after; idle before
    /// any batch and once quiet.
    #[test]
    fn busy_while_mapping_and_shortly_after() {
        let activity = Activity::default();
        assert!(!activity.busy());
        let batch = activity.batch();
        assert!(activity.busy_at(Duration::from_secs(3600)));
        drop(batch);
        let ended = Duration::from_millis(activity.last_end_ms.load(Ordering::Relaxed));
        assert!(activity.busy_at(ended) && activity.busy_at(ended + QUIET));
        assert!(!activity.busy_at(ended + QUIET + Duration::from_millis(1)));
    }

    /// A busy host compiles on the spare pool, one thread short of the
    /// cores; an idle one on every core.
    #[test]
    fn a_busy_host_compiles_beside_its_batches() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = || (std::thread::current().name().map(str::to_owned), rayon::current_num_threads());
        let activity = Activity::default();
        let (_, idle) = beside_batches(&activity, threads);
        assert_eq!(idle, rayon::current_num_threads());
        let _batch = activity.batch();
        let (name, busy) = beside_batches(&activity, threads);
        if cores > 1 {
            assert!(name.is_some_and(|n| n.starts_with("ferry-compile-")));
            assert_eq!(busy, cores - 1);
        } else {
            assert_eq!(busy, idle);
        }
    }
}
