//! What the console answers when something goes wrong: `{"error": …}` in the CLI's own words,
//! with a status that says whose fault it is (an `OpError`'s `status()`).

use super::rights::Right;
use crate::ops::error::{OpError, Status};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An error as the API answers it.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn forbidden(right: Right, env: &str) -> ApiError {
        let what = match right {
            Right::View => "view",
            Right::Deploy => "deploy to",
            Right::OverrideWindow => "override the deploy windows of",
        };
        ApiError::new(
            StatusCode::FORBIDDEN,
            format!("you may not {what} environment `{env}`"),
        )
    }
}

impl From<OpError> for ApiError {
    fn from(e: OpError) -> ApiError {
        let status = match e.status() {
            Status::BadRequest => StatusCode::BAD_REQUEST,
            Status::Conflict => StatusCode::CONFLICT,
            Status::BadGateway => StatusCode::BAD_GATEWAY,
            Status::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = match &e {
            OpError::Manifest(m) => {
                let first = m
                    .problems
                    .first()
                    .map(|p| format!(": line {}: {}", p.span.line, p.message))
                    .unwrap_or_default();
                format!("{e}{first}")
            }
            _ => e.to_string(),
        };
        ApiError::new(status, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error(self.status, &self.message)
    }
}

/// `{"error": message}` with `status`.
pub fn error(status: StatusCode, message: &str) -> Response {
    json(status, &serde_json::json!({ "error": message }))
}

/// A handler's result.
pub type Result<T> = std::result::Result<T, ApiError>;

/// `IntoResponse` for plain JSON documents.
pub fn json<T: serde::Serialize>(status: StatusCode, v: &T) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string_pretty(v).unwrap_or_default() + "\n",
    )
        .into_response()
}
