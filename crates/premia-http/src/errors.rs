//! Error answers: a status and a sentence saying what to do, as `{"error": "..."}`, and the ones
//! several routes give.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// An error answer: a status and a sentence saying what to do, as `{"error": "..."}`.
#[derive(Debug)]
pub struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into() }
    }

    pub(crate) fn internal(e: impl std::fmt::Display) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

/// What a handler answers.
pub(crate) type Answer = Result<Response, ApiError>;

pub(crate) fn forbidden(message: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, message)
}

pub(crate) fn not_serving() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "the serving loop is not running, so the ledger cannot be read here; check the logs of premia serve",
    )
}

pub(crate) fn unknown_manager(manager: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("the ledger has nothing for manager {manager:?} in any period; check the id (they are case-sensitive)"),
    )
}

/// A value as JSON; failing to write one is a bug (500).
pub(crate) fn to_json(value: impl serde::Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(ApiError::internal)
}
