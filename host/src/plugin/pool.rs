//! Plugin work (batches, swaps) is shared fairly between tenants: each
//! tenant runs at most `per_tenant` plugin calls at once, and the host at
//! most `total`, so one tenant flooding the host with swaps or batches
//! waits for its own calls to finish and can never take every thread.
//! Waiting is async (tokio's semaphores are first in, first out), and a
//! call runs on the blocking pool only once it holds both permits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::Semaphore;

/// Plugin calls per tenant and per host.
pub struct PluginPool {
    per_tenant: usize,
    total: Arc<Semaphore>,
    tenants: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl PluginPool {
    /// `per_tenant` calls of one tenant, `total` of the host, at once.
    pub fn new(per_tenant: usize, total: usize) -> Self {
        PluginPool { per_tenant: per_tenant.max(1), total: Arc::new(Semaphore::new(total.max(1))), tenants: Mutex::default() }
    }

    /// The process's pool: a tenant gets one call per core (at least two),
    /// the host four tenants' worth.
    pub fn global() -> &'static PluginPool {
        static POOL: OnceLock<PluginPool> = OnceLock::new();
        POOL.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
            PluginPool::new(cores, 4 * cores)
        })
    }

    fn tenant(&self, tenant: &str) -> Arc<Semaphore> {
        let mut tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
        tenants.entry(tenant.to_string()).or_insert_with(|| Arc::new(Semaphore::new(self.per_tenant))).clone()
    }

    /// Runs `f` on the blocking pool once `tenant` has a free call and the
    /// host a free slot.
    pub async fn run<T: Send + 'static>(&self, tenant: &str, f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
        let own = self.tenant(tenant).acquire_owned().await.map_err(|e| e.to_string())?;
        let host = self.total.clone().acquire_owned().await.map_err(|e| e.to_string())?;
        tokio::task::spawn_blocking(move || {
            let out = f();
            drop((own, host));
            out
        })
        .await
        .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A tenant that fills its share waits for itself; another tenant's
    /// call runs at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_tenant_cannot_take_every_slot() {
        let pool = Arc::new(PluginPool::new(2, 4));
        let started = Instant::now();
        let mut flood = Vec::new();
        for _ in 0..20 {
            let pool = pool.clone();
            flood.push(tokio::spawn(async move { pool.run("greedy", || std::thread::sleep(Duration::from_millis(300))).await }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t = Instant::now();
        pool.run("polite", || ()).await.unwrap();
        assert!(t.elapsed() < Duration::from_millis(200), "the other tenant waited {:?}", t.elapsed());
        for f in flood {
            f.await.unwrap().unwrap();
        }
        // 20 calls of 300 ms, two at a time: about 3 s, never all at once.
        assert!(started.elapsed() >= Duration::from_millis(2900), "{:?}", started.elapsed());
    }
}
