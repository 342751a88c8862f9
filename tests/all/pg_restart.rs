//! A PostgreSQL restart in the middle of a run: a server of the test's own
//! (initdb into a temp dir, on a free port) is stopped and started again
//! while `ferry run` writes its state there; the run waits for it, says
//! how long, and finishes with nothing lost or doubled.

use crate::helpers::{ferry_command, harness, source_config};
use ferry_sim::target::TargetSimConfig;
use std::process::Command;
use std::time::{Duration, Instant};

/// A PostgreSQL server of this test's own, stopped when dropped.
struct OwnServer {
    dir: tempfile::TempDir,
    port: u16,
}

impl OwnServer {
    /// `cmd` as the `postgres` user when this is root (the server refuses root).
    fn as_owner(program: &str, args: &[&str]) -> Command {
        let root = Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", program]).args(args);
            c
        } else {
            let mut c = Command::new(program);
            c.args(args);
            c
        }
    }

    fn run(program: &str, args: &[&str]) {
        let out = OwnServer::as_owner(program, args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(out.status.success(), "{program} {args:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }

    fn start() -> OwnServer {
        let dir = tempfile::Builder::new().prefix("ferry-pg-").tempdir_in("/tmp").unwrap();
        Command::new("chmod").args(["777", dir.path().to_str().unwrap()]).status().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let data = dir.path().join("data");
        OwnServer::run("initdb", &["-D", data.to_str().unwrap(), "-A", "trust", "-U", "postgres", "--no-sync"]);
        let server = OwnServer { dir, port };
        server.up();
        server
    }

    fn pg_ctl(&self, what: &[&str]) {
        let (data, log) = (self.dir.path().join("data"), self.dir.path().join("log"));
        let opts = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.dir.path().display());
        let mut args = vec!["-D", data.to_str().unwrap(), "-l", log.to_str().unwrap(), "-o", &opts, "-w"];
        args.extend_from_slice(what);
        OwnServer::run("pg_ctl", &args);
    }

    fn up(&self) {
        self.pg_ctl(&["start"]);
    }

    fn down(&self) {
        self.pg_ctl(&["-m", "fast", "stop"]);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = OwnServer::as_owner("pg_ctl", &["-D", self.dir.path().join("data").to_str().unwrap(), "-m", "immediate", "stop"]).output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_rides_out_a_postgres_restart() {
    if Command::new("initdb").arg("--version").output().is_err() {
        panic!("initdb (PostgreSQL's server tools) is needed for this test");
    }
    let pg = tokio::task::spawn_blocking(OwnServer::start).await.unwrap();
    let h =
        harness(source_config(95, "app-pg-restart", 600), TargetSimConfig { completion_delay: Duration::from_millis(150), ..TargetSimConfig::default() }).await;
    let mut s = h.spec(ferry_fixtures::JUSHUITAN_ORDERS);
    (s.batch_size, s.concurrency) = (10, 1);
    let text = s.toml();
    let file = h.dir.path().join("pg.toml");
    std::fs::write(&file, format!("{}[state]\nurl = \"{}\"\n", &text[..text.find("[state]").unwrap()], pg.url())).unwrap();
    let mut run = ferry_command(&["run", file.to_str().unwrap()]);
    run.env("FERRY_PG_RECONNECT_GRACE", "45s").stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let child = run.spawn().unwrap();
    // Mid-run: the database goes away for about three seconds.
    h.wait_for_commands(5).await;
    assert!(h.target.state.truth().commands < 50, "the run is still going when the database stops");
    let pg = tokio::task::spawn_blocking(move || {
        pg.down();
        std::thread::sleep(Duration::from_secs(3));
        pg.up();
        pg
    })
    .await
    .unwrap();
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "the run finished: {stderr}");
    assert!(started.elapsed() < Duration::from_secs(120));
    assert!(stderr.contains("PostgreSQL is unreachable") && stderr.contains("trying again for up to 45 s"), "it said it waits: {stderr}");
    assert!(stderr.contains("PostgreSQL is reachable again after"), "it said how long it waited: {stderr}");
    assert!(h.missing().is_empty(), "missing {:?}", h.missing());
    assert!(h.each_once(), "doubled {:?}", h.target.state.truth().doubled());
    drop(pg);
}
