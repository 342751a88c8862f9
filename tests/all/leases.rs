//! One writer per pipeline across processes: the lease fences a worker
//! that lost it, a `ferry run` of a pipeline in the cluster's database holds
//! the lease while it runs, and a cluster refuses a pipeline whose state is
//! a file of its own.

use crate::helpers::{PipelineSpec, ferry_command, source_config};
use crate::pg::TestDb;
use ferry::state::CommandRecord;
use ferry_sim::target::TargetSimConfig;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A queued sync command `c1` of `pipeline` and `tenant`, as the API stores it.
fn queued_sync(pipeline: &str, tenant: &str) -> CommandRecord {
    CommandRecord {
        id: "c1".into(),
        kind: "sync".into(),
        pipeline: pipeline.into(),
        tenant: tenant.into(),
        created: "2024-01-01T00:00:00Z".into(),
        status: "queued".into(),
        record: json!({}),
    }
}

/// The lease fences writes: once another worker has taken a pipeline over,
/// the worker that lost it can no longer stage batches, confirm or move the
/// checkpoint, while the new holder can.
#[test]
fn a_worker_that_lost_its_lease_cannot_write() {
    use ferry::cluster::Cluster;
    use ferry::state::{ControlStore, DataStore, PgStore};
    let db = TestDb::new("fence");
    // Two stores on the same database, as two processes would have.
    let (a, b) = (PgStore::connect(&db.url).unwrap(), PgStore::connect(&db.url.replace("127.0.0.1", "localhost")).unwrap());
    assert!(!Arc::ptr_eq(&a, &b));
    let (w1, w2) = (Cluster::join(a.clone(), "w1".into(), Duration::from_secs(1)), Cluster::join(b.clone(), "w2".into(), Duration::from_secs(1)));
    a.insert_command(&queued_sync("p", "t")).unwrap();
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
    use ferry::state::{ControlStore, PgStore};
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
    h.wait_for_commands(1).await;
    let holder = store.lease_holder("it-orders").unwrap().unwrap_or_default();
    assert!(holder.starts_with("ferry run on "), "the run holds the lease: {holder:?}");
    store.insert_command(&queued_sync("it-orders", "default")).unwrap();
    assert!(worker.claim("it-orders").unwrap().is_none(), "a worker cannot claim the pipeline while the run holds it");
    let status = crate::helpers::wait_exit(run, Duration::from_secs(60)).await;
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    assert!(h.missing().is_empty() && h.each_once());
    assert_eq!(store.lease_holder("it-orders").unwrap(), None, "given back at the end");
    assert!(worker.claim("it-orders").unwrap().is_some(), "the worker claims it now");
    worker.release("it-orders").unwrap();
    store.unfence("it-orders");
}
