//! Scale-out: several real `ferry serve` processes on one PostgreSQL
//! database share 30 pipelines, one merchant's rate budget, sync commands
//! and plugin swaps, and take over a killed worker's pipelines.

use crate::helpers::{PipelineSpec, ferry_command, missing_at_target, source_config};
use crate::pg::TestDb;
use ferry::sim::jushuitan::{JushuitanSimConfig, SimState};
use ferry::sim::target::{TargetSimConfig, TargetState};
use ferry::sim::{self, Running};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN: &str = "token-cluster-7788";

/// One pipeline's simulators.
struct Lane {
    name: String,
    source: Arc<Running<Arc<SimState>>>,
    target: Running<Arc<TargetState>>,
}

impl Lane {
    fn missing(&self) -> Vec<u64> {
        missing_at_target(&self.source.state.truth(), &self.target.state.truth())
    }

    fn each_once(&self) -> bool {
        let t = self.target.state.truth();
        t.doubled().is_empty() && t.deliveries.values().all(|n| *n == 1)
    }
}

/// A running `ferry serve` worker; killed when dropped.
struct Worker {
    id: String,
    url: String,
    log: PathBuf,
    child: std::process::Child,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The database, the pipelines' files and the workers.
struct Fleet {
    _db: TestDb,
    dir: tempfile::TempDir,
    lanes: Vec<Lane>,
    workers: Vec<Worker>,
    http: reqwest::Client,
}

/// A source simulator over the last 20 hours: one window per sync.
async fn source(seed: u64, app: &str, orders: usize, per_second: u32, per_minute: u32) -> Arc<Running<Arc<SimState>>> {
    let mut c: JushuitanSimConfig = source_config(seed, app, orders);
    c.from = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(20);
    (c.per_second, c.per_minute) = (per_second, per_minute);
    Arc::new(sim::jushuitan::start(c, 0).await.unwrap())
}

impl Fleet {
    /// Pipelines `p00`.. over `sources` (one lane each, in order), each
    /// with its own target, served by a cluster with a `lease`.
    async fn new(sources: Vec<Arc<Running<Arc<SimState>>>>, target: TargetSimConfig, plugin: &str, lease: &str) -> Fleet {
        let db = TestDb::new("cluster");
        let dir = tempfile::tempdir().unwrap();
        let mut lanes = Vec::new();
        let mut serve = format!("[cluster]\ndatabase = \"{}\"\nlease = \"{lease}\"\n\n[[tokens]]\ntoken = \"{TOKEN}\"\ntenant = \"default\"\n", db.url);
        for (i, source) in sources.into_iter().enumerate() {
            let name = format!("p{i:02}");
            let target = sim::target::start(target.clone(), 0).await.unwrap();
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
    async fn start(&mut self, id: &str) {
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

    async fn call(&self, worker: usize, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.workers[worker].url)).bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let code = resp.status().as_u16();
        (code, resp.json().await.unwrap_or(Value::Null))
    }

    /// Waits until every command is complete, asking `worker`.
    async fn wait_all(&self, worker: usize, ids: &[String], limit: Duration) -> Vec<Value> {
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

    fn dump_logs(&self) {
        for w in &self.workers {
            eprintln!("--- worker {} log\n{}", w.id, std::fs::read_to_string(&w.log).unwrap_or_default());
        }
    }

    /// Checks every lane against its simulators' own counts.
    fn assert_each_order_once(&self) {
        for lane in &self.lanes {
            assert!(lane.missing().is_empty(), "{}: missing {:?}", lane.name, lane.missing());
            assert!(lane.each_once(), "{}: some order was applied more than once", lane.name);
            assert!(!lane.target.state.truth().records.is_empty(), "{}: nothing delivered", lane.name);
        }
    }
}

fn sync_body(name: &str) -> Option<Value> {
    Some(json!({ "pipeline": name }))
}

/// Three workers, 30 pipelines: ten share one merchant's budget (5/s), the
/// others have a merchant each. Every command is accepted by one worker,
/// followed on another, and every order lands once with no 199/200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_share_thirty_pipelines_and_one_merchant_budget() {
    let shared = source(300, "merchant-shared", 200, 5, 300).await;
    let mut sources = vec![shared.clone(); 10];
    for i in 0..20 {
        sources.push(source(301 + i, &format!("merchant-{i}"), 60, 50, 3000).await);
    }
    let mut fleet = Fleet::new(sources, TargetSimConfig::default(), ferry_fixtures::JUSHUITAN_ORDERS, "3s").await;
    for id in ["w1", "w2", "w3"] {
        fleet.start(id).await;
    }
    let mut ids = Vec::new();
    for (i, lane) in fleet.lanes.iter().enumerate() {
        let id = uuid::Uuid::new_v4().to_string();
        let (code, r) = fleet.call(i % 3, Method::PUT, &format!("/sync-commands/{id}"), sync_body(&lane.name)).await;
        assert_eq!(code, 201, "{r}");
        // The same PUT through another worker is a replay of the same command.
        let (code, again) = fleet.call((i + 1) % 3, Method::PUT, &format!("/sync-commands/{id}"), sync_body(&lane.name)).await;
        assert_eq!((code, &again["id"]), (200, &r["id"]), "{again}");
        ids.push(id);
    }
    let (code, _) = fleet.call(2, Method::PUT, &format!("/sync-commands/{}", ids[0]), sync_body("p01")).await;
    assert_eq!(code, 409, "another body under a taken id, through another worker");

    let done = fleet.wait_all(1, &ids, Duration::from_secs(180)).await;
    for d in &done {
        assert_eq!(d["status"], json!("succeeded"), "{d}");
        assert!(d["taskCount"]["success"].as_u64().unwrap() > 0, "{d}");
    }
    let ran_on: std::collections::BTreeSet<&str> = done.iter().filter_map(|d| d["worker"].as_str()).collect();
    assert!(ran_on.len() >= 2, "the work spread over the workers: {ran_on:?}");
    fleet.assert_each_order_once();
    let stats = shared.state.stats();
    assert_eq!((stats.code199, stats.code200), (0, 0), "three workers drew on one budget: {stats:?}");
    assert!(stats.max_per_second <= 5, "{stats:?}");
    for lane in &fleet.lanes {
        let s = lane.source.state.stats();
        assert_eq!((s.code199, s.code200), (0, 0), "{}: {s:?}", lane.name);
    }
    for lane in &fleet.lanes {
        let (_, p) = fleet.call(2, Method::GET, &format!("/pipelines/{}", lane.name), None).await;
        assert_eq!(p["lastRuns"].as_array().map(Vec::len), Some(1), "{}: one command, one run: {p}", lane.name);
    }
    let (code, cluster) = fleet.call(0, Method::GET, "/cluster", None).await;
    assert_eq!(code, 200, "{cluster}");
    let alive: Vec<&str> = cluster["workers"].as_array().unwrap().iter().filter(|w| w["alive"] == json!(true)).map(|w| w["id"].as_str().unwrap()).collect();
    assert_eq!(alive, vec!["w1", "w2", "w3"], "{cluster}");
}

/// SIGKILL a worker in the middle of its runs: once its leases run out the
/// other workers take its pipelines over, resume them from the outbox and
/// checkpoint, and the targets' own counts show nothing lost or doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_pipelines_are_taken_over() {
    let mut sources = Vec::new();
    for i in 0..4 {
        sources.push(source(320 + i, &format!("merchant-kill-{i}"), 400, 50, 3000).await);
    }
    let slow = TargetSimConfig { completion_delay: Duration::from_millis(150), ..TargetSimConfig::default() };
    let lease = Duration::from_secs(2);
    let mut fleet = Fleet::new(sources, slow, ferry_fixtures::JUSHUITAN_ORDERS, "2s").await;
    for id in ["w1", "w2", "w3"] {
        fleet.start(id).await;
    }
    let mut ids = Vec::new();
    for lane in &fleet.lanes {
        let id = uuid::Uuid::new_v4().to_string();
        let (code, r) = fleet.call(0, Method::PUT, &format!("/sync-commands/{id}"), sync_body(&lane.name)).await;
        assert_eq!(code, 201, "{r}");
        ids.push(id);
    }
    // w1 is woken by its own PUTs and claims first; kill it mid-run.
    let deadline = Instant::now() + Duration::from_secs(60);
    let held = loop {
        let (_, cluster) = fleet.call(1, Method::GET, "/cluster", None).await;
        let held: Vec<String> =
            cluster["leases"].as_array().unwrap().iter().filter(|l| l["worker"] == json!("w1")).map(|l| l["pipeline"].as_str().unwrap().to_string()).collect();
        let delivered = fleet.lanes.iter().filter(|l| held.contains(&l.name)).map(|l| l.target.state.truth().records.len()).sum::<usize>();
        // w1 has confirmed some records of a run it holds (its published
        // taskCount says so), so a takeover has work of w1's to count.
        let mut confirmed = 0;
        for (lane, id) in fleet.lanes.iter().zip(&ids) {
            if held.contains(&lane.name) {
                let (_, c) = fleet.call(1, Method::GET, &format!("/sync-commands/{id}"), None).await;
                confirmed += c["taskCount"]["success"].as_u64().unwrap_or(0);
            }
        }
        if delivered >= 40 && confirmed >= 20 {
            break held;
        }
        assert!(Instant::now() < deadline, "w1 ran nothing: {cluster}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut killed = fleet.workers.remove(0);
    killed.child.kill().unwrap();
    killed.child.wait().unwrap();
    let killed_at = Instant::now();
    // Taken over within the lease time (plus a poll and a little slack).
    let taken = loop {
        let (_, cluster) = fleet.call(0, Method::GET, "/cluster", None).await;
        let leases = cluster["leases"].as_array().unwrap();
        let moved = held.iter().all(|p| leases.iter().any(|l| l["pipeline"] == json!(p) && l["worker"] != json!("w1")) || fleet_done(&fleet, p));
        if moved && !leases.iter().any(|l| l["worker"] == json!("w1")) {
            break killed_at.elapsed();
        }
        assert!(killed_at.elapsed() < Duration::from_secs(30), "w1's pipelines were never taken over: {cluster}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(taken < lease + Duration::from_secs(3), "taken over after {taken:?}");
    let done = fleet.wait_all(0, &ids, Duration::from_secs(120)).await;
    for d in &done {
        assert_eq!(d["status"], json!("succeeded"), "{d}");
        assert_ne!(d["worker"], json!("w1"), "finished by a live worker: {d}");
    }
    let taken: Vec<&Value> = done.iter().filter(|d| d["notes"].to_string().contains("taken over by worker")).collect();
    assert_eq!(taken.len(), held.len(), "each run w1 held was taken over: {done:?}");
    // Each command's taskCount counts what every worker that ran it
    // delivered: it agrees with the records the command lists.
    for (id, d) in ids.iter().zip(&done) {
        let (_, records) = fleet.call(0, Method::GET, &format!("/sync-commands/{id}/records"), None).await;
        assert_eq!(d["taskCount"]["success"], records["count"], "taskCount and /records agree after a takeover: {d}");
    }
    fleet.assert_each_order_once();
    drop(killed);
}

/// A worker stopped (SIGSTOP) past its lease and woken again (SIGCONT)
/// writes nothing: the command keeps the worker that took it over and the
/// note saying so at every look, the run finishes there, and each order
/// lands once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_worker_woken_after_a_takeover_writes_nothing() {
    let sources = vec![source(350, "merchant-stop", 400, 50, 3000).await];
    let slow = TargetSimConfig { completion_delay: Duration::from_millis(150), ..TargetSimConfig::default() };
    let mut fleet = Fleet::new(sources, slow, ferry_fixtures::JUSHUITAN_ORDERS, "2s").await;
    fleet.start("w1").await;
    let id = uuid::Uuid::new_v4().to_string();
    let (code, _) = fleet.call(0, Method::PUT, &format!("/sync-commands/{id}"), sync_body("p00")).await;
    assert_eq!(code, 201);
    // w1 runs it and has published some progress.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, c) = fleet.call(0, Method::GET, &format!("/sync-commands/{id}"), None).await;
        if c["worker"] == json!("w1") && c["taskCount"]["success"].as_u64().unwrap_or(0) >= 20 {
            break;
        }
        assert!(Instant::now() < deadline, "w1 never ran it: {c}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    fleet.start("w2").await;
    let w1 = fleet.workers[0].child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-STOP", &w1]).status().unwrap().success());
    // w2 takes the run over once w1's lease has run out.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, c) = fleet.call(1, Method::GET, &format!("/sync-commands/{id}"), None).await;
        if c["worker"] == json!("w2") {
            break;
        }
        assert!(Instant::now() < deadline, "w2 never took it over: {c}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(std::process::Command::new("kill").args(["-CONT", &w1]).status().unwrap().success());
    // From now on every look shows w2 and the takeover note, until the end.
    let deadline = Instant::now() + Duration::from_secs(120);
    let done = loop {
        let (_, c) = fleet.call(1, Method::GET, &format!("/sync-commands/{id}"), None).await;
        assert_eq!(c["worker"], json!("w2"), "the woken worker's write landed: {c}");
        assert!(c["notes"].to_string().contains("taken over by worker w2"), "the takeover note is kept: {c}");
        if !c["completedAt"].is_null() {
            break c;
        }
        assert!(Instant::now() < deadline, "the run never finished: {c}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(done["status"], json!("succeeded"), "{done}");
    let (_, records) = fleet.call(1, Method::GET, &format!("/sync-commands/{id}/records"), None).await;
    assert_eq!(done["taskCount"]["success"], records["count"], "{done}");
    fleet.assert_each_order_once();
}

/// Whether the lane's target has every order (its run may end before a
/// look at the leases).
fn fleet_done(fleet: &Fleet, pipeline: &str) -> bool {
    fleet.lanes.iter().any(|l| l.name == pipeline && l.missing().is_empty())
}

/// A plugin swap through worker A reaches worker B: B's next batch maps
/// with the new version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_through_one_worker_reaches_the_others() {
    let sources = vec![source(340, "merchant-swap", 60, 50, 3000).await];
    let mut fleet = Fleet::new(sources, TargetSimConfig::default(), ferry_fixtures::VERSIONED_V1, "3s").await;
    fleet.start("a").await;
    fleet.start("b").await;
    let v2 = std::fs::read(ferry_fixtures::VERSIONED_V2).unwrap();
    let v2_digest = ferry::plugin::digest_of(&v2);
    let component = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &v2);
    let id = uuid::Uuid::new_v4().to_string();
    let (code, r) = fleet.call(0, Method::PUT, &format!("/plugin-commands/{id}"), Some(json!({ "pipeline": "p00", "component": component }))).await;
    assert_eq!((code, r["status"].as_str()), (201, Some("live")), "{r}");
    // The command is read, and replayed, through the other worker too.
    let (code, seen) = fleet.call(1, Method::GET, &format!("/plugin-commands/{id}"), None).await;
    assert_eq!((code, seen["status"].as_str(), seen["digest"].as_str()), (200, Some("live"), Some(v2_digest.as_str())), "{seen}");
    let (code, again) = fleet.call(1, Method::PUT, &format!("/plugin-commands/{id}"), Some(json!({ "pipeline": "p00", "component": component }))).await;
    assert_eq!((code, again["completedAt"].clone()), (200, r["completedAt"].clone()), "a replay through b changes nothing: {again}");
    let (code, _) = fleet.call(1, Method::PUT, &format!("/plugin-commands/{id}"), Some(json!({ "pipeline": "p00", "component": "AAAA" }))).await;
    assert_eq!(code, 409, "another body under the id, through b");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, p) = fleet.call(1, Method::GET, "/pipelines/p00", None).await;
        if p["plugin"]["digest"] == json!(v2_digest) {
            break;
        }
        assert!(Instant::now() < deadline, "worker b still runs {}", p["plugin"]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Stop a, so that b runs the next sync.
    let a = fleet.workers.remove(0);
    assert!(std::process::Command::new("kill").args(["-TERM", &a.child.id().to_string()]).status().unwrap().success());
    drop(a);
    let sync = uuid::Uuid::new_v4().to_string();
    let (code, _) = fleet.call(0, Method::PUT, &format!("/sync-commands/{sync}"), sync_body("p00")).await;
    assert_eq!(code, 201);
    let done = fleet.wait_all(0, &[sync], Duration::from_secs(60)).await;
    assert_eq!((done[0]["status"].as_str(), done[0]["worker"].as_str()), (Some("succeeded"), Some("b")), "{}", done[0]);
    let landed = fleet.lanes[0].target.state.truth();
    assert!(!landed.records.is_empty() && landed.records.values().all(|r| r["_version"] == json!("2.0.0")), "b mapped with v2");
    // A restarted worker takes the cluster's live version, not its file's.
    fleet.start("c").await;
    let (_, p) = fleet.call(1, Method::GET, "/pipelines/p00", None).await;
    assert_eq!(p["plugin"]["digest"], json!(v2_digest));
}

/// The lease fences writes: once another worker has taken a pipeline over,
/// the worker that lost it can no longer stage batches, confirm or move the
/// checkpoint, while the new holder can.
#[test]
fn a_worker_that_lost_its_lease_cannot_write() {
    use ferry::cluster::Cluster;
    use ferry::state::{CommandRecord, ControlStore, DataStore, PgStore};
    let db = TestDb::new("fence");
    // Two stores on the same database, as two processes would have.
    let (a, b) = (PgStore::connect(&db.url).unwrap(), PgStore::connect(&db.url.replace("127.0.0.1", "localhost")).unwrap());
    assert!(!Arc::ptr_eq(&a, &b));
    let (w1, w2) = (Cluster::join(a.clone(), "w1".into(), Duration::from_secs(1)), Cluster::join(b.clone(), "w2".into(), Duration::from_secs(1)));
    let command = CommandRecord {
        id: "c1".into(),
        kind: "sync".into(),
        pipeline: "p".into(),
        tenant: "t".into(),
        created: "2024-01-01T00:00:00Z".into(),
        status: "queued".into(),
        record: json!({}),
    };
    a.insert_command(&command).unwrap();
    assert_eq!(w1.claim("p").unwrap().map(|c| c.id), Some("c1".into()));
    assert!(w2.claim("p").unwrap().is_none(), "held by w1");
    assert_eq!(a.lease_holder("p").unwrap().as_deref(), Some("w1"));
    // `ferry run` refuses a pipeline a cluster worker holds.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.toml");
    let spec = PipelineSpec::offline(Path::new("unused.db"));
    let text = spec.toml().replace("name = \"it-orders\"", "name = \"p\"").replace("path = \"unused.db\"", &format!("url = \"{}\"", db.url));
    std::fs::write(&file, text).unwrap();
    let out = crate::helpers::ferry(&["run", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is leased by w1"), "{}", String::from_utf8_lossy(&out.stderr));
    let at: jiff::Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
    a.set_checkpoint("p", at).unwrap();
    std::thread::sleep(Duration::from_millis(1200)); // w1 stops renewing
    assert!(w2.claim("p").unwrap().is_some(), "taken over after the lease ran out");
    let refused = a.set_checkpoint("p", at + jiff::SignedDuration::from_hours(1)).unwrap_err();
    assert!(refused.to_string().contains("no longer holds the lease"), "{refused}");
    assert!(a.stage("p", None, &[], &[]).is_err());
    assert!(!w1.renew("p").unwrap(), "w1 learns it lost the lease");
    b.set_checkpoint("p", at + jiff::SignedDuration::from_hours(2)).unwrap();
    assert_eq!(a.checkpoint("p").unwrap(), Some(at + jiff::SignedDuration::from_hours(2)));
    w2.release("p").unwrap();
    a.unfence("p");
}

/// A cluster refuses a pipeline whose state is a SQLite file (a `ferry run`
/// of that file would sync it beside the cluster), naming the fix.
#[test]
fn a_cluster_refuses_a_pipeline_with_a_state_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("own.db");
    std::fs::write(dir.path().join("p.toml"), PipelineSpec::offline(&state).toml()).unwrap();
    let serve = dir.path().join("serve.toml");
    std::fs::write(&serve, "[cluster]\ndatabase = \"postgres://127.0.0.1/ferry\"\n\n[[pipelines]]\nfile = \"p.toml\"\n\n[[tokens]]\ntoken = \"t-0123456789\"\ntenant = \"default\"\n").unwrap();
    let err = ferry::api::ServeConfig::load(&serve).unwrap_err();
    assert!(err.contains("`it-orders`") && err.contains("own.db") && err.contains("[state] url"), "{err}");
}

/// `ferry run` of a pipeline whose state is the cluster's database holds
/// the pipeline's lease while it runs: a worker's claim finds it held (so
/// the cluster cannot sync it beside the run), and gets it once the run
/// has ended and given it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_holds_the_lease_against_the_cluster() {
    use ferry::cluster::Cluster;
    use ferry::state::{CommandRecord, ControlStore, PgStore};
    let db = TestDb::new("runlease");
    let mut cfg = source_config(84, "app-run-lease", 200);
    cfg.per_second = 20;
    let h = crate::helpers::harness(cfg, TargetSimConfig { completion_delay: Duration::from_millis(200), ..TargetSimConfig::default() }).await;
    let mut spec = h.spec(ferry_fixtures::JUSHUITAN_ORDERS);
    (spec.batch_size, spec.concurrency) = (20, 1);
    let text = spec.toml().replace(&format!("path = \"{}\"", h.state.display()), &format!("url = \"{}\"", db.url));
    std::fs::write(&h.file, text).unwrap();
    let store = PgStore::connect(&db.url).unwrap();
    let worker = Cluster::join(store.clone(), "w1".into(), Duration::from_secs(15));
    let run = ferry_command(&["run", h.file.to_str().unwrap()]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while h.target.state.truth().commands < 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let holder = store.lease_holder("it-orders").unwrap().unwrap_or_default();
    assert!(holder.starts_with("ferry run on "), "the run holds the lease: {holder:?}");
    let command = CommandRecord {
        id: "c1".into(),
        kind: "sync".into(),
        pipeline: "it-orders".into(),
        tenant: "default".into(),
        created: "2024-01-01T00:00:00Z".into(),
        status: "queued".into(),
        record: json!({}),
    };
    store.insert_command(&command).unwrap();
    assert!(worker.claim("it-orders").unwrap().is_none(), "a worker cannot claim the pipeline while the run holds it");
    let status = crate::helpers::wait_exit(run, Duration::from_secs(60)).await;
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    assert!(h.missing().is_empty() && h.each_once());
    assert_eq!(store.lease_holder("it-orders").unwrap(), None, "given back at the end");
    assert!(worker.claim("it-orders").unwrap().is_some(), "the worker claims it now");
    worker.release("it-orders").unwrap();
    store.unfence("it-orders");
}
