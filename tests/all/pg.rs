//! A fresh PostgreSQL database per test, dropped at the end. The server is
//! the machine's (`FERRY_TEST_POSTGRES`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`); `.ci/run` makes sure it
//! is up.

use std::sync::atomic::{AtomicU32, Ordering};

/// The maintenance database the test databases are made from.
pub fn admin_url() -> String {
    std::env::var("FERRY_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database that exists while this value lives.
pub struct TestDb {
    pub url: String,
    name: String,
}

/// Runs each statement on its own (`DROP DATABASE` refuses a transaction).
fn admin(statements: Vec<String>) {
    // The sync client runs its own runtime: keep it off the test's.
    std::thread::spawn(move || {
        let mut c =
            postgres::Client::connect(&admin_url(), postgres::NoTls).unwrap_or_else(|e| panic!("PostgreSQL at {} is needed for this test: {e}", admin_url()));
        for sql in statements {
            c.batch_execute(&sql).unwrap_or_else(|e| panic!("{sql}: {}", ferry::state::describe_postgres_error(&e)));
        }
    })
    .join()
    .unwrap();
}

impl TestDb {
    /// Creates `ferry_{tag}_{pid}_{n}`.
    pub fn new(tag: &str) -> TestDb {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!("ferry_{tag}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
        admin(vec![format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"), format!("CREATE DATABASE {name}")]);
        let base = admin_url();
        let url = match base.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("FERRY_TEST_POSTGRES must end with /database: {base}"),
        };
        TestDb { url, name }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(mut c) = postgres::Client::connect(&admin_url(), postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        })
        .join();
    }
}
