//! The OpenAPI document, generated from the handlers and models (utoipa).

use super::model;
use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Ferry control API", description = "Command-pattern control of Ferry pipelines: sync and plugin commands with client-chosen UUIDs."),
    paths(
        super::sync::put, super::sync::post, super::sync::get, super::sync::tasks, super::sync::cancel, super::sync::list, super::sync::records,
        super::plugins::put, super::plugins::get, super::plugins::undo, super::plugins::list,
        super::pipelines::list, super::pipelines::one, super::pipelines::dead_letters, super::pipelines::replay, super::pipelines::dead_letter_reasons, super::pipelines::reconcile, super::pipelines::plugin_history,
        super::pipelines::metrics, super::pipelines::healthz, super::pipelines::readyz, super::cluster::view
    ),
    components(schemas(model::SyncInput, model::SyncPost, model::SyncResource, crate::state::TaskCount, model::TaskView, model::TasksView,
        model::PluginInput, model::PluginResource, model::PluginView, model::PipelineView, model::TokenView, model::ErrorBody,
        model::SyncPage, model::PluginPage, crate::commands::model::ProgressView, crate::commands::status::SyncStatus, crate::commands::status::PluginStatus, model::RecordsView, model::LiveView, model::DeadLetterView, model::DeadLetterPage, model::SwapPage, model::ReplayView, model::DeadLetterReasons, model::ReasonCount, model::ReconcileInput, model::ReconcileRunning, crate::pipeline::reconcile::ReconcileReport, crate::pipeline::reconcile::WindowCheck, crate::pipeline::reconcile::Missing, crate::pipeline::reconcile::Why, crate::state::SwapRecord,
        super::cluster::ClusterView, crate::cluster::WorkerView, crate::cluster::LeaseView)),
    modifiers(&Bearer)
)]
struct ApiDoc;

/// `GET /openapi.json`.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
