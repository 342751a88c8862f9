//! The SQLite schema: its versions, applied in order by `PRAGMA
//! user_version`, each once; a released version is never edited, a change
//! is a new one.

/// Schema versions, applied in order; never edit a released one.
pub(super) const MIGRATIONS: &[&str] = &[
    "CREATE TABLE checkpoints (pipeline TEXT PRIMARY KEY, at TEXT NOT NULL, updated TEXT NOT NULL);
     CREATE TABLE id_check (pipeline TEXT NOT NULL, record_id TEXT NOT NULL, version TEXT NOT NULL, at TEXT NOT NULL,
                            PRIMARY KEY (pipeline, record_id, version)) WITHOUT ROWID;
     CREATE TABLE outbox (command TEXT PRIMARY KEY, pipeline TEXT NOT NULL, seq INTEGER NOT NULL, status TEXT NOT NULL,
                          entry TEXT NOT NULL, plugin TEXT NOT NULL, created TEXT NOT NULL, confirmed TEXT, task_count TEXT);
     CREATE INDEX outbox_by_status ON outbox (pipeline, status, seq);
     CREATE TABLE dead_letters (id INTEGER PRIMARY KEY AUTOINCREMENT, pipeline TEXT NOT NULL, record_id TEXT NOT NULL,
                                version TEXT NOT NULL, reason TEXT NOT NULL, plugin TEXT NOT NULL, raw TEXT NOT NULL,
                                command TEXT, created TEXT NOT NULL);
     CREATE INDEX dead_letters_by_pipeline ON dead_letters (pipeline, id);
     CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, pipeline TEXT NOT NULL, kind TEXT NOT NULL, started TEXT NOT NULL,
                        finished TEXT, status TEXT NOT NULL, summary TEXT);
     CREATE INDEX runs_by_pipeline ON runs (pipeline, id);",
    "CREATE TABLE commands (id TEXT PRIMARY KEY, kind TEXT NOT NULL, pipeline TEXT NOT NULL, tenant TEXT NOT NULL,
                            created TEXT NOT NULL, status TEXT NOT NULL, record TEXT NOT NULL);
     CREATE INDEX commands_by_kind ON commands (kind, created);
     CREATE TABLE plugin_versions (digest TEXT PRIMARY KEY, label TEXT NOT NULL, bytes BLOB NOT NULL, added TEXT NOT NULL);
     CREATE TABLE plugin_swaps (id INTEGER PRIMARY KEY AUTOINCREMENT, pipeline TEXT NOT NULL, at TEXT NOT NULL, digest TEXT NOT NULL,
                                label TEXT NOT NULL, origin TEXT NOT NULL, previous TEXT, accepted INTEGER NOT NULL, reason TEXT);
     CREATE INDEX plugin_swaps_by_pipeline ON plugin_swaps (pipeline, id);",
    "ALTER TABLE runs ADD COLUMN owner TEXT;",
    "CREATE TABLE rate_slots (app_key TEXT PRIMARY KEY, next_at INTEGER NOT NULL);",
    "CREATE TABLE window_progress (pipeline TEXT NOT NULL, begin_at TEXT NOT NULL, end_at TEXT NOT NULL, cursor TEXT NOT NULL,
                                   PRIMARY KEY (pipeline, begin_at, end_at));",
    // Command ids are scoped per tenant: two tenants may choose the same UUID.
    "CREATE TABLE commands_by_tenant (id TEXT NOT NULL, kind TEXT NOT NULL, pipeline TEXT NOT NULL, tenant TEXT NOT NULL,
                                      created TEXT NOT NULL, status TEXT NOT NULL, record TEXT NOT NULL, PRIMARY KEY (tenant, id));
     INSERT INTO commands_by_tenant SELECT id, kind, pipeline, tenant, created, status, record FROM commands;
     DROP TABLE commands;
     ALTER TABLE commands_by_tenant RENAME TO commands;
     CREATE INDEX commands_by_kind ON commands (kind, created);",
    // Access tokens per app and merchant, the pair sealed (see `crate::credentials`).
    "CREATE TABLE tokens (key TEXT PRIMARY KEY, generation INTEGER NOT NULL, sealed BLOB NOT NULL, expires_at TEXT, obtained_at TEXT NOT NULL,
                          obtained TEXT NOT NULL, seed TEXT NOT NULL, state TEXT NOT NULL, attempted_at TEXT, answer TEXT);",
    // The calls of the last minute per app_key (a JSON array of unix ms), for a restarted process.
    "ALTER TABLE rate_slots ADD COLUMN calls TEXT;",
];
