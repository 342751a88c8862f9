//! The cluster tests' harness: a PostgreSQL database, pipelines over their
//! own simulators (lanes), and real `ferry serve` workers started, called
//! and stopped by the tests.

use crate::helpers::{PipelineSpec, ferry_command, missing_at_target, source_config};
use crate::pg::TestDb;
use ferry_sim::Running;
use ferry_sim::jushuitan::{JushuitanSimConfig, SimState};
use ferry_sim::target::{TargetSimConfig, TargetState};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN: &str = "token-cluster-7788";

/// One pipeline's simulators.
pub(crate) struct Lane {
    pub(crate) name: String,
    pub(crate) source: Arc<Running<Arc<SimState>>>,
    pub(crate) target: Running<Arc<TargetState>>,
}

impl Lane {
    pub(crate) fn missing(&self) -> Vec<u64> {
        missing_at_target(&self.source.state.truth(), &self.target.state.truth())
    }

    pub(crate) fn each_once(&self) -> bool {
        let t = self.target.state.truth();
        t.doubled().is_empty() && t.deliveries.values().all(|n| *n == 1)
    }
}

/// A running `ferry serve` worker; killed when dropped.
pub(crate) struct Worker {
    pub(crate) id: String,
    pub(crate) url: String,
    pub(crate) log: PathBuf,
    pub(crate) child: std::process::Child,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The database, the pipelines' files and the workers.
pub(crate) struct Fleet {
    pub(crate) _db: TestDb,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) lanes: Vec<Lane>,
    pub(crate) workers: Vec<Worker>,
    pub(crate) http: reqwest::Client,
}

/// A source simulator over the last 20 hours: one window per sync.
pub(crate) async fn source(seed: u64, app: &str, orders: usize, per_second: u32, per_minute: u32) -> Arc<Running<Arc<SimState>>> {
    let mut c: JushuitanSimConfig = source_config(seed, app, orders);
    c.from = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(20);
    (c.per_second, c.per_minute) = (per_second, per_minute);
    Arc::new(ferry_sim::jushuitan::start(c, 0).await.unwrap())
}

impl Fleet {
    /// Pipelines `p00`.. over `sources` (one lane each, in order), each
    /// with its own target, served by a cluster with a `lease`.
    pub(crate) async fn new(sources: Vec<Arc<Running<Arc<SimState>>>>, target: TargetSimConfig, plugin: &str, lease: &str) -> Fleet {
        let db = TestDb::new("cluster");
        let dir = tempfile::tempdir().unwrap();
        let mut lanes = Vec::new();
        let mut serve = format!("[cluster]\ndatabase = \"{}\"\nlease = \"{lease}\"\n\n[[tokens]]\ntoken = \"{TOKEN}\"\ntenant = \"default\"\n", db.url);
        for (i, source) in sources.into_iter().enumerate() {
            let name = format!("p{i:02}");
            let target = ferry_sim::target::start(target.clone(), 0).await.unwrap();
            let config = source.state.config();
            let start = ferry::time::format(config.from);
            let spec = PipelineSpec {
                source_url: &source.url,
                app_key: &config.app_key,
                target_url: &target.url,
                plugin,
                state: Path::new("unused.db"),
                start: &start,
                batch_size: 20,
                concurrency: 2,
                per_second: config.per_second,
                per_minute: config.per_minute,
                mapping_options: "{}",
            };
            let text =
                spec.toml().replace("name = \"it-orders\"", &format!("name = \"{name}\"")).replace("path = \"unused.db\"", &format!("url = \"{}\"", db.url));
            std::fs::write(dir.path().join(format!("{name}.toml")), text).unwrap();
            serve.push_str(&format!("\n[[pipelines]]\nfile = \"{name}.toml\"\n"));
            lanes.push(Lane { name, source, target });
        }
        std::fs::write(dir.path().join("serve.toml"), serve).unwrap();
        Fleet { _db: db, dir, lanes, workers: Vec::new(), http: reqwest::Client::new() }
    }

    /// Starts worker `id` and waits until it is ready.
    pub(crate) async fn start(&mut self, id: &str) {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = self.dir.path().join(format!("{id}.log"));
        let serve = self.dir.path().join("serve.toml");
        let child = ferry_command(&["serve", serve.to_str().unwrap(), "--listen", &format!("127.0.0.1:{port}"), "--worker", id])
            .env("FERRY_LOG", "info")
            .stdout(std::fs::File::create(self.dir.path().join(format!("{id}.out"))).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let worker = Worker { id: id.into(), url: format!("http://127.0.0.1:{port}"), log, child };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !reqwest::get(format!("{}/readyz", worker.url)).await.is_ok_and(|r| r.status() == 200) {
            assert!(Instant::now() < deadline, "worker {id} never became ready:\n{}", std::fs::read_to_string(&worker.log).unwrap_or_default());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.workers.push(worker);
    }

    pub(crate) async fn call(&self, worker: usize, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.workers[worker].url)).bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let code = resp.status().as_u16();
        (code, resp.json().await.unwrap_or(Value::Null))
    }

    /// Waits until every command is complete, asking `worker`.
    pub(crate) async fn wait_all(&self, worker: usize, ids: &[String], limit: Duration) -> Vec<Value> {
        let deadline = Instant::now() + limit;
        loop {
            // One listing per look, not one call per command: the workers
            // share two cores with the simulators.
            let (_, page) = self.call(worker, Method::GET, "/sync-commands?limit=500", None).await;
            let items = page["items"].as_array().cloned().unwrap_or_default();
            let done: Vec<Value> =
                ids.iter().filter_map(|id| items.iter().find(|i| i["id"] == json!(id)).filter(|i| !i["completedAt"].is_null()).cloned()).collect();
            if done.len() == ids.len() {
                return done;
            }
            if Instant::now() > deadline {
                self.dump_logs();
                panic!("{} of {} sync commands finished in {limit:?}", done.len(), ids.len());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub(crate) fn dump_logs(&self) {
        for w in &self.workers {
            eprintln!("--- worker {} log\n{}", w.id, std::fs::read_to_string(&w.log).unwrap_or_default());
        }
    }

    /// Checks every lane against its simulators' own counts.
    pub(crate) fn assert_each_order_once(&self) {
        for lane in &self.lanes {
            assert!(lane.missing().is_empty(), "{}: missing {:?}", lane.name, lane.missing());
            assert!(lane.each_once(), "{}: some order was applied more than once", lane.name);
            assert!(!lane.target.state.truth().records.is_empty(), "{}: nothing delivered", lane.name);
        }
    }
}

pub(crate) fn sync_body(name: &str) -> Option<Value> {
    Some(json!({ "pipeline": name }))
}

/// Whether the lane's target has every order (its run may end before a
/// look at the leases).
pub(crate) fn fleet_done(fleet: &Fleet, pipeline: &str) -> bool {
    fleet.lanes.iter().any(|l| l.name == pipeline && l.missing().is_empty())
}
