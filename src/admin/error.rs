//! Admin API errors: one JSON shape, `{"error": code, "message": text, ...detail}`,
//! with field or row detail where it applies.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::metrics::metrics;
use crate::numbers::RowError;
use crate::settings::SettingsError;
use crate::store::StoreError;

/// A field that failed validation.
#[derive(Debug, Clone, Serialize)]
pub struct FieldError {
    /// Field name.
    pub field: String,
    /// Why.
    pub reason: String,
}

/// An admin API error response.
#[derive(Debug)]
#[non_exhaustive]
pub enum ApiError {
    /// 401: missing or wrong bearer token.
    Unauthorized,
    /// 400: malformed request body or query (with the field when known).
    BadRequest {
        /// Field at fault, if known.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// 400: fields failed validation.
    InvalidFields(Vec<FieldError>),
    /// 400: CSV rows failed validation; the old list is kept.
    InvalidRows(Vec<RowError>),
    /// 404.
    NotFound(String),
    /// 409: already exists.
    Conflict(String),
    /// 415: wrong content type.
    UnsupportedMediaType(String),
    /// 500: storage failed.
    Store(StoreError),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound("not found".into()),
            StoreError::DuplicateNumber(n) => {
                ApiError::Conflict(format!("{n} is already on the list"))
            }
            other => ApiError::Store(other),
        }
    }
}

impl From<Vec<SettingsError>> for ApiError {
    fn from(errs: Vec<SettingsError>) -> Self {
        ApiError::InvalidFields(
            errs.into_iter()
                .map(|e| FieldError {
                    field: e.field.to_owned(),
                    reason: e.reason,
                })
                .collect(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                serde_json::json!({"error": "unauthorized", "message": "missing or invalid bearer token"}),
            ),
            ApiError::BadRequest { field, message } => (
                StatusCode::BAD_REQUEST,
                serde_json::json!({"error": "bad_request", "field": field, "message": message}),
            ),
            ApiError::InvalidFields(fields) => (
                StatusCode::BAD_REQUEST,
                serde_json::json!({"error": "invalid_fields",
                    "message": format!("{} invalid field(s)", fields.len()), "fields": fields}),
            ),
            ApiError::InvalidRows(rows) => (
                StatusCode::BAD_REQUEST,
                serde_json::json!({"error": "invalid_rows",
                    "message": format!("{} bad row(s); the number list was not changed", rows.len()),
                    "rows": rows}),
            ),
            ApiError::NotFound(m) => (
                StatusCode::NOT_FOUND,
                serde_json::json!({"error": "not_found", "message": m}),
            ),
            ApiError::Conflict(m) => (
                StatusCode::CONFLICT,
                serde_json::json!({"error": "conflict", "message": m}),
            ),
            ApiError::UnsupportedMediaType(m) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                serde_json::json!({"error": "unsupported_media_type", "message": m}),
            ),
            ApiError::Store(e) => {
                metrics().store_errors.inc();
                tracing::error!(error = %e, "admin API store failure");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    serde_json::json!({"error": "store", "message": e.to_string()}),
                )
            }
        };
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}
