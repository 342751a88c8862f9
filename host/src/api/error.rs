//! API errors: a status and a JSON body `{"error": "..."}`.

use super::model::ErrorBody;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answer.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl ApiError {
    pub fn bad(msg: impl Into<String>) -> Self {
        ApiError(StatusCode::BAD_REQUEST, msg.into())
    }
    pub fn not_found(msg: impl Into<String>) -> Self {
        ApiError(StatusCode::NOT_FOUND, msg.into())
    }
    pub fn conflict(msg: impl Into<String>) -> Self {
        ApiError(StatusCode::CONFLICT, msg.into())
    }
    pub fn internal(msg: impl Into<String>) -> Self {
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, msg.into())
    }
}

/// A state store that fails is the server's fault (500), with its reason.
impl From<crate::state::StateError> for ApiError {
    fn from(e: crate::state::StateError) -> Self {
        ApiError::internal(e.to_string())
    }
}

/// The engine's refusals, as HTTP answers.
impl From<crate::commands::CommandError> for ApiError {
    fn from(e: crate::commands::CommandError) -> Self {
        use crate::commands::CommandError as E;
        match e {
            E::Invalid(m) => ApiError::bad(m),
            E::NotFound(m) => ApiError::not_found(m),
            E::Conflict(m) => ApiError::conflict(m),
            E::Internal(m) => ApiError::internal(m),
            E::Upstream(m) => ApiError(StatusCode::BAD_GATEWAY, m),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorBody { error: self.1 })).into_response()
    }
}

/// Parses a command id from the path.
pub fn parse_id(id: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(id).map_err(|_| ApiError::bad(format!("`{id}` is not a UUID (commands are identified by a client-chosen UUID)")))
}

/// Parses a JSON body with a clear message.
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad(format!("invalid body: {}", crate::plain::words(&e.to_string()))))
}
