//! A Command-pattern target (seed 001): `PUT /{resource}/{uuid}` with
//! `{"records": [...]}`, replay-safe; `POST /{resource}` with an optional
//! id; `GET` status and per-record tasks; optional async completion;
//! faults (500, slow, reset before processing, apply-then-500, records
//! removed behind the writer's back); `GET /records/{resource}/{id}` for
//! reconciliation's lookup; and a ground-truth view with per-record
//! delivery counts.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use jiff::Timestamp;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

/// Probabilities (0..1) of each fault per write.
#[derive(Debug, Clone, Default)]
pub struct TargetFaults {
    /// 500 before processing.
    pub http500: f64,
    /// Process, but answer only after `slow_delay`.
    pub slow: f64,
    /// Drop the connection before processing.
    pub reset: f64,
    /// Process, then answer 500: applied, but the client cannot know.
    pub apply_then_500: f64,
    /// How late a slow answer comes.
    pub slow_delay: Duration,
}

/// Answers real targets send that a tidy one would not (each a named mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum TargetQuirk {
    /// Tasks name their record with a JSON number (when the id is numeric).
    RecordIdNumber,
    /// Failed tasks carry no `recordId`.
    RecordIdMissing,
    /// Failed tasks name a record that is not in the command.
    RecordIdUnknown,
    /// `taskCount.success` is one more than it should be: it does not add up.
    CountMismatch,
    /// `taskCount.failed` says one more failure than the tasks list.
    TasksDisagree,
    /// A command holding any record the target refuses is answered HTTP 400
    /// naming it, and nothing of it is applied.
    RejectWhole,
}

/// Target simulator settings.
#[derive(Debug, Clone, Default)]
pub struct TargetSimConfig {
    /// Seed of the fault rolls.
    pub seed: u64,
    /// Faults.
    pub faults: TargetFaults,
    /// Commands complete this long after creation (`completedAt` null until then).
    pub completion_delay: Duration,
    /// Records whose numeric id is a multiple of this are refused (0: none),
    /// besides those without an id or with a negative `amount`.
    pub refuse_every: u64,
    /// Answer modes.
    pub quirks: Vec<TargetQuirk>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Task {
    record_id: Option<String>,
    status: String,
    message: Option<String>,
}

#[derive(Debug, Clone)]
struct Command {
    id: Uuid,
    hash: String,
    created: Timestamp,
    completes: Timestamp,
    tasks: Vec<Task>,
    quirks: Vec<TargetQuirk>,
}

impl Command {
    fn resource(&self, now: Timestamp) -> Value {
        let done = now >= self.completes;
        let failed = self.tasks.iter().filter(|t| t.status == "FAILED").count();
        let (mut failed_n, mut success_n) = if done { (failed, self.tasks.len() - failed) } else { (0, 0) };
        if done && self.quirks.contains(&TargetQuirk::CountMismatch) {
            success_n += 1;
        }
        if done && failed > 0 && self.quirks.contains(&TargetQuirk::TasksDisagree) {
            (failed_n, success_n) = (failed_n + 1, success_n.saturating_sub(1));
        }
        json!({
            "id": self.id,
            "createdAt": self.created.to_string(),
            "completedAt": if done { Value::String(self.completes.to_string()) } else { Value::Null },
            "taskCount": {
                "failed": failed_n,
                "success": success_n,
                "total": self.tasks.len(),
            }
        })
    }

    /// The tasks as the target lists them, spelled by its quirks.
    fn listed_tasks(&self) -> Vec<Value> {
        let q = |k| self.quirks.contains(&k);
        self.tasks
            .iter()
            .map(|t| {
                let mut v = serde_json::to_value(t).expect("a task serializes");
                let failed = t.status == "FAILED";
                if q(TargetQuirk::RecordIdNumber)
                    && let Some(n) = t.record_id.as_deref().and_then(|id| id.parse::<u64>().ok())
                {
                    v["recordId"] = json!(n);
                }
                if failed && q(TargetQuirk::RecordIdMissing) {
                    v.as_object_mut().map(|m| m.remove("recordId"));
                }
                if failed && q(TargetQuirk::RecordIdUnknown) {
                    v["recordId"] = json!(format!("unknown-{}", t.record_id.as_deref().unwrap_or("none")));
                }
                v
            })
            .collect()
    }
}

/// Ground truth of the target.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TargetTruth {
    /// Stored records by id (last write wins).
    pub records: BTreeMap<String, Value>,
    /// How many times each record id was applied.
    pub deliveries: BTreeMap<String, u64>,
    /// How many times each version (`id@modified`) was applied; above 1 is a double.
    pub versions: BTreeMap<String, u64>,
    /// Commands created.
    pub commands: u64,
    /// PUTs of a known id with the same body (answered 200, not reprocessed).
    pub replays: u64,
    /// PUTs of a known id with a different body (409).
    pub conflicts: u64,
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, u64>,
    /// Records removed behind the writer's back ([`TargetState::remove_records`]).
    pub removed: u64,
}

struct Inner {
    commands: HashMap<Uuid, Command>,
    truth: TargetTruth,
    rng: ChaCha8Rng,
}

/// The target's state.
pub struct TargetState {
    config: TargetSimConfig,
    inner: Mutex<Inner>,
}

#[derive(Clone, Copy, PartialEq)]
enum Fault {
    Http500,
    Slow,
    Reset,
    ApplyThen500,
}

impl TargetTruth {
    /// Versions applied more than once.
    pub fn doubled(&self) -> Vec<String> {
        self.versions.iter().filter(|(_, n)| **n > 1).map(|(k, _)| k.clone()).collect()
    }
}

impl TargetState {
    /// A fresh, empty target.
    pub fn new(config: TargetSimConfig) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(config.seed);
        TargetState { config, inner: Mutex::new(Inner { commands: HashMap::new(), truth: TargetTruth::default(), rng }) }
    }

    /// Everything the target holds.
    pub fn truth(&self) -> TargetTruth {
        self.inner.lock().expect("target lock").truth.clone()
    }

    /// A named fault: someone deletes records at the target behind the
    /// writer's back (an ERP user cleaning up). They are gone from
    /// `records`, and their applications are forgotten, so writing one
    /// again counts as its first. Returns how many were held.
    pub fn remove_records(&self, ids: &[String]) -> usize {
        let mut inner = self.inner.lock().expect("target lock");
        let t = &mut inner.truth;
        let held = ids.iter().filter(|id| t.records.remove(*id).is_some()).count();
        for id in ids {
            t.deliveries.remove(id);
            let prefix = format!("{id}@");
            t.versions.retain(|k, _| !k.starts_with(&prefix));
        }
        t.removed += held as u64;
        held
    }

    fn roll(&self) -> Option<Fault> {
        let f = &self.config.faults;
        let mut inner = self.inner.lock().expect("target lock");
        let roll: f64 = inner.rng.random();
        let mut edge = 0.0;
        for (p, fault, name) in [
            (f.http500, Fault::Http500, "http500"),
            (f.slow, Fault::Slow, "slow"),
            (f.reset, Fault::Reset, "reset"),
            (f.apply_then_500, Fault::ApplyThen500, "apply_then_500"),
        ] {
            edge += p;
            if roll < edge {
                *inner.truth.faults.entry(name.into()).or_default() += 1;
                return Some(fault);
            }
        }
        None
    }

    /// Creates or replays a command: `(status, resource)`.
    fn write(&self, id: Uuid, mut body: Value) -> Result<(StatusCode, Value), (StatusCode, Value)> {
        if !body.get("records").is_some_and(Value::is_array) {
            return Err((StatusCode::BAD_REQUEST, json!({"error": "body must be a JSON object with a `records` array"})));
        }
        let hash = hex::encode(Sha256::digest(serde_json::to_vec(&body).expect("a Value always serializes")));
        let now = Timestamp::now();
        let mut inner = self.inner.lock().expect("target lock");
        if let Some(existing) = inner.commands.get(&id) {
            if existing.hash == hash {
                let resource = existing.resource(now);
                inner.truth.replays += 1;
                return Ok((StatusCode::OK, resource));
            }
            inner.truth.conflicts += 1;
            return Err((StatusCode::CONFLICT, json!({"error": format!("command {id} exists with a different body")})));
        }
        let records = match body.get_mut("records").map(Value::take) {
            Some(Value::Array(records)) => records,
            _ => Vec::new(),
        };
        let refuse_every = self.config.refuse_every;
        if self.config.quirks.contains(&TargetQuirk::RejectWhole)
            && let Some((id, why)) = records.iter().find_map(|r| check(r, refuse_every).err())
        {
            let named = id.unwrap_or_else(|| "(no id)".into());
            return Err((StatusCode::BAD_REQUEST, json!({"error": format!("record {named}: {why}; nothing of this command was applied")})));
        }
        let tasks: Vec<Task> = records.into_iter().map(|r| apply(&mut inner.truth, r, refuse_every)).collect();
        let completes = now + self.config.completion_delay;
        let command = Command { id, hash, created: now, completes, tasks, quirks: self.config.quirks.clone() };
        let resource = command.resource(now);
        inner.commands.insert(id, command);
        inner.truth.commands += 1;
        Ok((StatusCode::CREATED, resource))
    }
}

fn record_id(r: &Value) -> Option<String> {
    match r.get("id") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// The record's id, or why the target refuses it (with its id, if any).
fn check(r: &Value, refuse_every: u64) -> Result<String, (Option<String>, String)> {
    let Some(id) = record_id(r) else {
        return Err((None, "record has no `id`".into()));
    };
    let negative = match r.get("amount") {
        Some(Value::Number(n)) => n.as_f64().is_some_and(|a| a < 0.0),
        Some(Value::String(s)) => s.trim().starts_with('-'),
        _ => false,
    };
    if negative {
        return Err((Some(id), "`amount` must not be negative".into()));
    }
    if refuse_every > 0 && id.parse::<u64>().is_ok_and(|n| n % refuse_every == 0) {
        return Err((Some(id), format!("records whose id is a multiple of {refuse_every} are refused by this target")));
    }
    Ok(id)
}

/// Validates and stores one record.
fn apply(truth: &mut TargetTruth, r: Value, refuse_every: u64) -> Task {
    let id = match check(&r, refuse_every) {
        Ok(id) => id,
        Err((id, why)) => return Task { record_id: id, status: "FAILED".into(), message: Some(why) },
    };
    let version = r.get("modified").map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string)).unwrap_or_default();
    truth.records.insert(id.clone(), r);
    *truth.deliveries.entry(id.clone()).or_default() += 1;
    *truth.versions.entry(format!("{id}@{version}")).or_default() += 1;
    Task { record_id: Some(id), status: "SUCCESS".into(), message: None }
}

fn error(status: StatusCode, message: String) -> Response {
    (status, axum::Json(json!({"error": message}))).into_response()
}

async fn write(st: Arc<TargetState>, id: Uuid, body: Value) -> Response {
    let fault = st.roll();
    match fault {
        Some(Fault::Http500) => return error(StatusCode::INTERNAL_SERVER_ERROR, "simulated internal error".into()),
        Some(Fault::Reset) => {
            let broken = futures_util::stream::iter([Err::<Bytes, _>(std::io::Error::other("simulated reset"))]);
            return (StatusCode::OK, Body::from_stream(broken)).into_response();
        }
        _ => {}
    }
    let result = st.write(id, body);
    if fault == Some(Fault::Slow) {
        tokio::time::sleep(st.config.faults.slow_delay).await;
    }
    if fault == Some(Fault::ApplyThen500) {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "simulated failure after applying".into());
    }
    match result {
        Ok((status, resource)) => (status, axum::Json(resource)).into_response(),
        Err((status, body)) => (status, axum::Json(body)).into_response(),
    }
}

// The error is the handler's answer, returned as is with `?` (once per request).
#[allow(clippy::result_large_err)]
fn parse_body(body: &Bytes) -> Result<Value, Response> {
    serde_json::from_slice(body).map_err(|e| error(StatusCode::BAD_REQUEST, format!("body is not JSON: {e}")))
}

async fn put_command(State(st): State<Arc<TargetState>>, Path((_resource, id)): Path<(String, String)>, body: Bytes) -> Response {
    let Ok(id) = Uuid::parse_str(&id) else { return error(StatusCode::BAD_REQUEST, format!("`{id}` is not a UUID")) };
    match parse_body(&body) {
        Ok(v) => write(st, id, v).await,
        Err(r) => r,
    }
}

async fn post_command(State(st): State<Arc<TargetState>>, Path(_resource): Path<String>, body: Bytes) -> Response {
    let mut v = match parse_body(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let id = match v.as_object_mut().and_then(|m| m.remove("id")) {
        None | Some(Value::Null) => Uuid::new_v4(),
        Some(Value::String(s)) => match Uuid::parse_str(&s) {
            Ok(id) => id,
            Err(_) => return error(StatusCode::BAD_REQUEST, format!("`{s}` is not a UUID")),
        },
        Some(other) => return error(StatusCode::BAD_REQUEST, format!("`id` must be a UUID text, got {other}")),
    };
    let response = write(st, id, v).await;
    if response.status() == StatusCode::OK {
        return (StatusCode::CREATED, response.into_body()).into_response();
    }
    response
}

// The error is the handler's answer, returned as is with `?` (once per request).
#[allow(clippy::result_large_err)]
fn find(st: &TargetState, id: &str) -> Result<Command, Response> {
    let id = Uuid::parse_str(id).map_err(|_| error(StatusCode::BAD_REQUEST, format!("`{id}` is not a UUID")))?;
    st.inner.lock().expect("target lock").commands.get(&id).cloned().ok_or_else(|| error(StatusCode::NOT_FOUND, format!("no command {id}")))
}

async fn get_command(State(st): State<Arc<TargetState>>, Path((_resource, id)): Path<(String, String)>) -> Response {
    match find(&st, &id) {
        Ok(c) => axum::Json(c.resource(Timestamp::now())).into_response(),
        Err(r) => r,
    }
}

async fn get_tasks(State(st): State<Arc<TargetState>>, Path((_resource, id)): Path<(String, String)>) -> Response {
    match find(&st, &id) {
        Ok(c) if Timestamp::now() >= c.completes => axum::Json(json!({"tasks": c.listed_tasks()})).into_response(),
        Ok(_) => axum::Json(json!({"tasks": []})).into_response(),
        Err(r) => r,
    }
}

/// `GET /records/{resource}/{id}`: the record as the target holds it, or
/// 404 (what `target.lookup` asks).
async fn get_record(State(st): State<Arc<TargetState>>, Path((_resource, id)): Path<(String, String)>) -> Response {
    match st.inner.lock().expect("target lock").truth.records.get(&id) {
        Some(r) => axum::Json(r.clone()).into_response(),
        None => (StatusCode::NOT_FOUND, axum::Json(json!({"error": format!("no record {id}")}))).into_response(),
    }
}

async fn truth(State(st): State<Arc<TargetState>>) -> axum::Json<TargetTruth> {
    axum::Json(st.truth())
}

/// The target's routes.
pub fn router(state: Arc<TargetState>) -> Router {
    Router::new()
        .route("/__sim/truth", get(truth))
        .route("/{resource}", axum::routing::post(post_command))
        .route("/{resource}/{id}", put(put_command).get(get_command))
        .route("/{resource}/{id}/tasks", get(get_tasks))
        .route("/records/{resource}/{id}", get(get_record))
        .with_state(state)
}

/// Starts a target on 127.0.0.1:`port` (0 = any free port).
pub async fn start(config: TargetSimConfig, port: u16) -> std::io::Result<crate::Running<Arc<TargetState>>> {
    let state = Arc::new(TargetState::new(config));
    crate::spawn(port, router(state.clone()), state).await
}
