//! Hot swap: atomic, checked, traceable; the disk cache; the file watcher.

use crate::helpers::{engine, load, texts};
use ferry::plugin::{EngineOptions, Limits, Outcome, PluginEngine, PluginError, PluginWatcher, Registry};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn registry(pipeline: &str) -> Arc<Registry> {
    let registry = Arc::new(Registry::new(engine()));
    registry.register(pipeline, "{}".into(), Limits::default(), Vec::new());
    registry
}

#[test]
fn hot_swap_under_load() {
    let registry = registry("orders");
    registry.install_file("orders", ferry_fixtures::VERSIONED_V1.as_ref()).expect("v1 goes live");
    let stop = Arc::new(AtomicBool::new(false));
    let streamer = {
        let (registry, stop) = (registry.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut batch = 0u64;
            while !stop.load(Ordering::SeqCst) && batch < 100_000 {
                let records = texts(&[json!({"batch": batch, "n": 0}), json!({"batch": batch, "n": 1})]);
                let (plugin, out) = registry.map_batch("orders", &records).expect("no batch fails during swaps");
                assert_eq!(out.outcomes.len(), 2);
                for outcome in &out.outcomes {
                    let Outcome::Mapped(recs) = outcome else { panic!("{outcome:?}") };
                    let v: Value = serde_json::from_str(recs[0].get()).unwrap();
                    assert_eq!(v["batch"], json!(batch), "no batch lost or mixed");
                    assert_eq!(v["_version"], json!(plugin.info.version), "output made by the version the batch started on");
                }
                seen.push((batch, plugin.info.version.clone(), plugin.digest.clone()));
                batch += 1;
            }
            seen
        })
    };
    let wait_batches = |n: usize| std::thread::sleep(Duration::from_millis(50 * n as u64));
    wait_batches(4);
    let v2 = registry.install_file("orders", ferry_fixtures::VERSIONED_V2.as_ref()).expect("v2 goes live");
    wait_batches(4);
    let err = registry.install_file("orders", ferry_fixtures::VERSIONED_V3_BROKEN.as_ref()).expect_err("v3 is rejected");
    assert!(matches!(&err, PluginError::Rejected { live, .. } if live.contains("versioned@2.0.0")), "{err}");
    assert!(err.to_string().contains("broken on purpose"), "{err}");
    wait_batches(4);
    stop.store(true, Ordering::SeqCst);
    let seen = streamer.join().expect("streamer");

    assert_eq!(registry.live("orders").unwrap().digest, v2.digest, "v2 stays live");
    let batches: Vec<u64> = seen.iter().map(|s| s.0).collect();
    assert_eq!(batches, (0..seen.len() as u64).collect::<Vec<_>>(), "every batch ran exactly once, in order");
    let versions: Vec<&str> = seen.iter().map(|s| s.1.as_str()).collect();
    let first_v2 = versions.iter().position(|v| *v == "2.0.0").expect("some batches ran on v2");
    assert!(first_v2 > 0 && versions[..first_v2].iter().all(|v| *v == "1.0.0"));
    assert!(versions[first_v2..].iter().all(|v| *v == "2.0.0"), "never v3, never back to v1");
    let history = registry.history("orders");
    assert_eq!(history.iter().map(|h| h.accepted).collect::<Vec<_>>(), vec![true, true, false]);
    assert!(history[2].reason.as_deref().unwrap_or_default().contains("broken"));
}

#[test]
fn rejected_options_never_go_live() {
    let registry = Arc::new(Registry::new(engine()));
    registry.register("p", r#"{"fields": []}"#.into(), Limits::default(), Vec::new());
    let err = registry.install_file("p", ferry_fixtures::DECLARATIVE.as_ref()).expect_err("bad options");
    assert!(err.to_string().contains("at least one"), "{err}");
    assert!(registry.live("p").is_none());
}

#[test]
fn disk_cache_skips_recompile() {
    let dir = tempfile::tempdir().unwrap();
    let options = || EngineOptions { cache_dir: Some(dir.path().to_path_buf()), pooling: false, ..EngineOptions::default() };
    let first = PluginEngine::new(options()).unwrap().load_file(ferry_fixtures::JUSHUITAN_ORDERS.as_ref()).unwrap();
    assert!(!first.from_cache);
    let again = PluginEngine::new(options()).unwrap().load_file(ferry_fixtures::JUSHUITAN_ORDERS.as_ref()).unwrap();
    assert!(again.from_cache, "a restarted engine loads from the disk cache");
    assert_eq!(first.digest, again.digest);
    let order = json!({"o_id": 1, "io_date": "2024-01-01 00:00:00", "items": []});
    assert!(matches!(again.map_batch(&Limits::default(), "{}", &texts(&[order])).unwrap().outcomes[0], Outcome::Mapped(_)));
}

#[test]
fn watched_file_swaps_on_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plugin.wasm");
    std::fs::copy(ferry_fixtures::VERSIONED_V1, &path).unwrap();
    let registry = registry("w");
    registry.install_file("w", &path).unwrap();
    let _watcher = PluginWatcher::watch(registry.clone(), "w", &path).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    std::fs::copy(ferry_fixtures::VERSIONED_V2, &path).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while registry.live("w").unwrap().info.version != "2.0.0" {
        assert!(Instant::now() < deadline, "watcher did not swap within 20 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(load(ferry_fixtures::VERSIONED_V2).digest, registry.live("w").unwrap().digest);
}

/// One watcher serves every pipeline: more pipelines than the kernel's
/// inotify instances per user (128 by default) all watch their file; a
/// change reaches each registry watching it, and a dropped watcher no
/// longer swaps.
#[test]
fn many_pipelines_watch_through_one_watcher() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.wasm");
    std::fs::copy(ferry_fixtures::VERSIONED_V1, &path).unwrap();
    let mut watched = Vec::new();
    for i in 0..300 {
        let name = format!("many-{i}");
        let registry = registry(&name);
        registry.install_file(&name, &path).unwrap();
        let watcher = PluginWatcher::watch(registry.clone(), &name, &path).unwrap_or_else(|e| panic!("watcher {i}: {e}"));
        watched.push((name, registry, Some(watcher)));
    }
    // The last one stops watching before the change.
    let (_, dropped, watcher) = watched.last_mut().unwrap();
    let dropped = dropped.clone();
    drop(watcher.take());
    std::thread::sleep(Duration::from_millis(200));
    std::fs::copy(ferry_fixtures::VERSIONED_V2, &path).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    for (name, registry, _) in &watched[..299] {
        while registry.live(name).unwrap().info.version != "2.0.0" {
            assert!(Instant::now() < deadline, "{name} did not swap within 30 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(dropped.live("many-299").unwrap().info.version, "1.0.0", "a dropped watcher no longer swaps");
}
