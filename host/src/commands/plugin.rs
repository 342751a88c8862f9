//! Plugin commands: a component for a pipeline swaps that pipeline's
//! plugin through the same checks as a file drop (on the tenant's share of
//! the plugin pool); the status says whether it went live or why not. An
//! undo puts back the version that was live before, through the same
//! checks. In a cluster the command is in the shared table, so it is read,
//! replayed or undone through any worker, and the other workers follow the
//! version it put live (`follow`).

use super::model::PluginResource;
use super::status::PluginStatus;
use super::sync::Accepted;
use super::{CommandError, Engine, ListQuery, PipelineHandle, command_key};
use crate::state::ControlStore;
use jiff::Timestamp;
use std::sync::Arc;
use uuid::Uuid;

/// A plugin command and its outcome (kept in the pipeline's state store).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PluginCommand {
    body_hash: String,
    created: Timestamp,
    resource: PluginResource,
}

impl PluginCommand {
    fn persist(&self, handle: &PipelineHandle) {
        let r = &self.resource;
        let record = serde_json::to_value(self).unwrap_or_default();
        super::history::persist(handle, "plugin", &r.id, &r.tenant, self.created, r.status.as_str(), record);
    }

    /// Moves the command on, as `PluginStatus::may_become` allows (see
    /// `status::advance`).
    fn become_(&mut self, next: PluginStatus) -> bool {
        super::status::advance(&mut self.resource.status, next, &self.resource.id)
    }
}

async fn install(handle: &Arc<PipelineHandle>, bytes: Vec<u8>, origin: String) -> Result<Result<String, String>, CommandError> {
    let registry = handle.registry.clone();
    let name = handle.pipeline.name.clone();
    let tenant = handle.tenant.clone();
    let result =
        crate::plugin::PluginPool::global().run(&tenant, move || registry.install_bytes(&name, &bytes, &origin)).await.map_err(CommandError::Internal)?;
    Ok(result.map(|p| p.label()).map_err(|e| e.to_string()))
}

fn vanished(id: Uuid) -> CommandError {
    CommandError::Internal(format!("plugin command {id} vanished while it ran"))
}

impl Engine {
    /// Runs the tenant's plugin command `id`: puts `component` live for
    /// `pipeline` if it passes the checks, or records why not. The same id
    /// with the same body (`body_hash`) answers the command as it is; with
    /// another body it is a conflict.
    pub async fn swap_plugin(
        &self,
        tenant: &str,
        id: Uuid,
        pipeline: &str,
        component: Vec<u8>,
        body_hash: String,
    ) -> Result<Accepted<PluginResource>, CommandError> {
        let handle = self.pipeline_for(pipeline, tenant)?.clone();
        self.shared_plugin(tenant, id)?;
        {
            let mut cmds = self.plugins.lock().expect("plugins lock");
            if let Some(existing) = cmds.get(&command_key(tenant, id)) {
                if existing.body_hash == body_hash {
                    return Ok(Accepted { resource: existing.resource.clone(), created: false });
                }
                return Err(CommandError::Conflict(format!("plugin command {id} exists with a different body")));
            }
            let resource = PluginResource {
                id: id.to_string(),
                pipeline: pipeline.to_string(),
                tenant: tenant.to_string(),
                status: PluginStatus::Validating,
                digest: crate::plugin::digest_of(&component),
                previous: handle.registry.live(pipeline).map(|p| p.digest.clone()),
                undone_at: None,
                plugin: None,
                reason: None,
                created_at: Timestamp::now().to_string(),
                completed_at: None,
            };
            cmds.insert(command_key(tenant, id), PluginCommand { body_hash, created: Timestamp::now(), resource });
        }
        let result = install(&handle, component, format!("plugin command {id}")).await?;
        let mut cmds = self.plugins.lock().expect("plugins lock");
        let cmd = cmds.get_mut(&command_key(tenant, id)).ok_or_else(|| vanished(id))?;
        match result {
            Ok(label) => {
                cmd.become_(PluginStatus::Live);
                cmd.resource.plugin = Some(label);
            }
            Err(reason) => {
                cmd.become_(PluginStatus::Rejected);
                cmd.resource.reason = Some(reason);
            }
        }
        let r = &mut cmd.resource;
        r.completed_at = Some(Timestamp::now().to_string());
        metrics::counter!("ferry_commands_total", "kind" => "plugin", "status" => r.status.as_str()).increment(1);
        cmd.persist(&handle);
        Ok(Accepted { resource: cmd.resource.clone(), created: true })
    }

    fn owned_plugin(&self, tenant: &str, id: Uuid) -> Result<PluginCommand, CommandError> {
        self.shared_plugin(tenant, id)?;
        let cmds = self.plugins.lock().expect("plugins lock");
        cmds.get(&command_key(tenant, id)).cloned().ok_or_else(|| CommandError::NotFound(format!("no plugin command {id}")))
    }

    /// In a cluster, the shared table knows every worker's plugin commands:
    /// one this worker has not seen is read from it (and kept here), so a
    /// command PUT through one worker is read, replayed or undone through
    /// any. Another kind of command under the id is a conflict.
    fn shared_plugin(&self, tenant: &str, id: Uuid) -> Result<(), CommandError> {
        let Some(cluster) = &self.cluster else { return Ok(()) };
        let key = command_key(tenant, id);
        if self.plugins.lock().expect("plugins lock").contains_key(&key) {
            return Ok(());
        }
        let Some(record) = cluster.db().command(tenant, &id.to_string())? else { return Ok(()) };
        if record.kind != "plugin" {
            return Err(CommandError::Conflict(format!("{id} is the id of a {} command", record.kind)));
        }
        let cmd: PluginCommand = serde_json::from_value(record.record).map_err(|e| CommandError::Internal(format!("stored plugin command {id}: {e}")))?;
        self.plugins.lock().expect("plugins lock").entry(key).or_insert(cmd);
        Ok(())
    }

    /// The tenant's plugin command `id`.
    pub fn plugin_command(&self, tenant: &str, id: Uuid) -> Result<PluginResource, CommandError> {
        Ok(self.owned_plugin(tenant, id)?.resource)
    }

    /// Puts back the version live before the swap. Undoing twice is
    /// harmless; a swap superseded by a later one is refused, naming the
    /// later command.
    pub async fn undo_plugin(&self, tenant: &str, id: Uuid) -> Result<PluginResource, CommandError> {
        let cmd = self.owned_plugin(tenant, id)?;
        let r = &cmd.resource;
        match r.status {
            PluginStatus::Undone => return Ok(r.clone()),
            PluginStatus::Live => {}
            other => return Err(CommandError::Conflict(format!("plugin command {id} is `{other}`: only a swap that went live can be undone"))),
        }
        let handle = self.pipeline_for(&r.pipeline, tenant)?.clone();
        let later = self
            .plugins
            .lock()
            .expect("plugins lock")
            .values()
            .filter(|c| c.resource.pipeline == r.pipeline && c.resource.status == PluginStatus::Live && c.created > cmd.created)
            .max_by_key(|c| c.created)
            .map(|c| c.resource.id.clone());
        if let Some(later) = later {
            return Err(CommandError::Conflict(format!("plugin command {id} was superseded by plugin command {later}; undo that one first")));
        }
        let live = handle.registry.live(&r.pipeline).map(|p| p.digest.clone());
        if live.as_deref() != Some(r.digest.as_str()) {
            return Err(CommandError::Conflict(format!(
                "the live version of `{}` is {}, not the one plugin command {id} put live (it was replaced since, e.g. by a file change)",
                r.pipeline,
                live.as_deref().unwrap_or("none")
            )));
        }
        let previous =
            r.previous.clone().ok_or_else(|| CommandError::Conflict(format!("plugin command {id} put the first version live; there is nothing before it")))?;
        let bytes = handle
            .state
            .plugin_version(&previous)?
            .ok_or_else(|| CommandError::Conflict(format!("version {previous} is no longer kept; it cannot be put back")))?;
        if let Err(reason) = install(&handle, bytes, format!("undo of plugin command {id}")).await? {
            return Err(CommandError::Conflict(format!("the previous version failed its checks and was not put back: {reason}")));
        }
        let mut cmds = self.plugins.lock().expect("plugins lock");
        let cmd = cmds.get_mut(&command_key(tenant, id)).ok_or_else(|| vanished(id))?;
        if cmd.become_(PluginStatus::Undone) {
            cmd.resource.undone_at = Some(Timestamp::now().to_string());
        }
        cmd.persist(&handle);
        metrics::counter!("ferry_commands_total", "kind" => "plugin", "status" => "undone").increment(1);
        Ok(cmd.resource.clone())
    }

    /// The tenant's plugin commands matching `q`, newest first: one page
    /// and the total.
    pub fn list_plugin_commands(&self, tenant: &str, q: &ListQuery) -> Result<(Vec<PluginResource>, u64), CommandError> {
        let (records, total) = super::history::list(self, tenant, "plugin", q)?;
        let items = records.into_iter().filter_map(|r| serde_json::from_value::<PluginCommand>(r.record).ok()).map(|c| c.resource).collect();
        Ok((items, total))
    }
}

/// Loads the stored plugin commands at start.
pub(crate) fn restore(engine: &Engine) {
    for h in engine.pipelines.values() {
        let filter = crate::state::CommandFilter { kind: "plugin".into(), pipeline: Some(h.pipeline.name.clone()), ..Default::default() };
        let mut cmds = engine.plugins.lock().expect("plugins lock");
        for r in h.state.commands(&filter).unwrap_or_default() {
            if let Ok(c) = serde_json::from_value::<PluginCommand>(r.record)
                && let Ok(id) = Uuid::parse_str(&c.resource.id)
            {
                cmds.insert(command_key(&c.resource.tenant, id), c);
            }
        }
        h.state.rest();
    }
}
