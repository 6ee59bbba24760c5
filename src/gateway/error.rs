//! Errors at the HTTP edge: one enum, one `IntoResponse`, OpenAI-shaped bodies.
//!
//! The body is what OpenAI's API and SDKs use: `{"error": {"message", "type", "param",
//! "code"}}`, so client libraries raise their usual exception types. Client mistakes are not
//! logged as server errors, and no internal detail (a provider's key, a provider's error body,
//! a stack of causes) reaches the client: upstream failures are summarised by endpoint and
//! failure class.

use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::prices::PriceUpdateError;
use crate::plan::{AttemptFailure, PlanError};
use crate::route::{BodyError, HintError};

/// Everything a request can fail with before an answer starts.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error("could not read the request body: {0}")]
    BodyRead(String),
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error(transparent)]
    Hint(#[from] HintError),
    /// A field one dialect has and the other has not.
    #[error(transparent)]
    Translate(#[from] crate::dialect::TranslateError),
    /// A request field the router cannot take, and why.
    #[error("`{field}`: {message}")]
    BadField { field: String, message: String },
    /// The model, and the field that named it (`model` or `models[i]`).
    #[error("The model `{0}` does not exist: use an endpoint id, a model, a group or `auto` (see GET /v1/models)")]
    ModelNotFound(String, String),
    #[error("no endpoint satisfies the request's hard constraints: {}", removal_message(.removed))]
    NoCandidates {
        /// `(endpoint id, constraint that removed it)`.
        removed: Vec<(String, String)>,
    },
    #[error("no decision is kept for request `{0}` (unknown id, or older than the last {cap} decisions)", cap = super::decisions::CAPACITY)]
    DecisionNotFound(String),
    #[error("no route for {method} {path}")]
    NoRoute { method: String, path: String },
    #[error("{}", all_failed_message(.failures, *.deadline_hit))]
    AllAttemptsFailed {
        failures: Vec<AttemptFailure>,
        /// The request's deadline ended the attempts before `max_attempts` did.
        deadline_hit: bool,
        /// The shortest `Retry-After` a provider asked for, passed on to the client.
        retry_after: Option<std::time::Duration>,
    },
    #[error("a valid API key is required: Authorization: Bearer <key>")]
    Unauthorized,
    #[error(transparent)]
    Limited(#[from] crate::auth::LimitError),
    #[error("the router is at its limit of concurrent requests; retry shortly")]
    Overloaded,
    #[error("the request body did not arrive within {0:?}")]
    BodyTimeout(std::time::Duration),
    /// A route that exists, asked with a method it does not answer.
    #[error("{method} is not allowed on {path}: the Allow header lists the methods it takes")]
    MethodNotAllowed { method: String, path: String },
    /// An admin route without the admin token; the message says how to enable or use them.
    #[error("{0}")]
    AdminUnauthorized(String),
    /// A price update that was refused (file, model and field in the message).
    #[error(transparent)]
    PriceUpdate(PriceUpdateError),
    /// `PUT /admin/pricing/{provider}` with a name no provider could have.
    #[error("`{0}` is not a valid provider name")]
    InvalidProvider(String),
    /// A price sheet sent as the body is not UTF-8 text.
    #[error("the price sheet must be UTF-8 TOML")]
    SheetNotText,
    /// `DELETE /admin/routing/{name}` of a preset that does not exist.
    #[error("no preset `{0}`")]
    PresetNotFound(String),
    /// A presets change that was refused (file and field in the message).
    #[error(transparent)]
    InvalidPreset(crate::presets::PresetErrors),
    /// A score `POST /v1/feedback` cannot take.
    #[error(transparent)]
    Feedback(crate::feedback::FeedbackError),
    /// Something failed inside the router (a store, a task); the details go to the log only.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl From<PriceUpdateError> for ApiError {
    fn from(e: PriceUpdateError) -> ApiError {
        match e {
            PriceUpdateError::Write { path, source } => {
                tracing::error!(%path, error = %source, "writing a price sheet failed");
                ApiError::Internal("the price sheet could not be written")
            }
            refused => {
                tracing::warn!(error = %refused, "price update refused; the previous prices keep serving");
                ApiError::PriceUpdate(refused)
            }
        }
    }
}

impl From<super::routing::RoutingUpdateError> for ApiError {
    fn from(e: super::routing::RoutingUpdateError) -> ApiError {
        use super::routing::RoutingUpdateError as E;
        match e {
            E::Write { path, source } => {
                tracing::error!(%path, error = %source, "writing a preset failed");
                ApiError::Internal("the preset could not be written")
            }
            E::NotFound(name) => ApiError::PresetNotFound(name),
            E::Presets(e) => {
                tracing::warn!(error = %e, "presets change refused; the previous presets keep serving");
                ApiError::InvalidPreset(e)
            }
        }
    }
}

impl From<PlanError> for ApiError {
    fn from(e: PlanError) -> ApiError {
        match e {
            PlanError::Hint(h) => ApiError::Hint(h),
            PlanError::ModelNotFound { model, field } => ApiError::ModelNotFound(model, field),
            PlanError::NoCandidates { removed } => ApiError::NoCandidates { removed },
        }
    }
}

fn removal_message(removed: &[(String, String)]) -> String {
    let mut by_constraint: Vec<(&str, Vec<&str>)> = Vec::new();
    for (endpoint, constraint) in removed {
        match by_constraint.iter_mut().find(|(c, _)| c == constraint) {
            Some((_, list)) => list.push(endpoint),
            None => by_constraint.push((constraint, vec![endpoint])),
        }
    }
    by_constraint
        .iter()
        .map(|(c, eps)| format!("`{c}` removed {}", eps.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

fn all_failed_message(failures: &[AttemptFailure], deadline_hit: bool) -> String {
    let list: Vec<String> = failures.iter().map(|f| f.to_string()).collect();
    let why = if deadline_hit {
        " before the request deadline"
    } else {
        ""
    };
    format!(
        "all {} upstream attempt(s) failed{why}: {}",
        failures.len(),
        list.join("; ")
    )
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    message: String,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Body(_) | ApiError::BodyRead(_) | ApiError::Hint(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Translate(_) | ApiError::BadField { .. } => StatusCode::BAD_REQUEST,
            ApiError::NoCandidates { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::DecisionNotFound(_) => StatusCode::NOT_FOUND,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::ModelNotFound(..) | ApiError::NoRoute { .. } => StatusCode::NOT_FOUND,
            ApiError::AllAttemptsFailed { .. } => StatusCode::BAD_GATEWAY,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Limited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::AdminUnauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::PriceUpdate(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::InvalidProvider(_) | ApiError::SheetNotText => StatusCode::BAD_REQUEST,
            ApiError::PresetNotFound(_) => StatusCode::NOT_FOUND,
            ApiError::InvalidPreset(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Feedback(crate::feedback::FeedbackError::Unknown(_)) => StatusCode::NOT_FOUND,
            ApiError::Feedback(crate::feedback::FeedbackError::AlreadyScored(_)) => {
                StatusCode::CONFLICT
            }
        }
    }

    fn kind_and_code(&self) -> (&'static str, Option<&'static str>) {
        match self {
            ApiError::Body(BodyError::Json(_) | BodyError::NotAnObject) => {
                ("invalid_request_error", Some("invalid_json"))
            }
            ApiError::Body(_) | ApiError::BodyRead(_) | ApiError::Hint(_) => {
                ("invalid_request_error", None)
            }
            ApiError::Translate(_) => ("invalid_request_error", Some("untranslatable")),
            ApiError::BadField { .. } => ("invalid_request_error", None),
            ApiError::NoCandidates { .. } => ("invalid_request_error", Some("no_candidates")),
            ApiError::DecisionNotFound(_) => ("invalid_request_error", Some("decision_not_found")),
            ApiError::PayloadTooLarge { .. } => {
                ("invalid_request_error", Some("request_too_large"))
            }
            ApiError::ModelNotFound(..) => ("invalid_request_error", Some("model_not_found")),
            ApiError::NoRoute { .. } => ("invalid_request_error", Some("unknown_url")),
            ApiError::AllAttemptsFailed { .. } => ("upstream_error", Some("all_attempts_failed")),
            ApiError::Unauthorized => ("invalid_request_error", Some("invalid_api_key")),
            ApiError::Limited(crate::auth::LimitError::Rate { .. }) => {
                ("rate_limit_error", Some("rate_limit_exceeded"))
            }
            ApiError::Limited(crate::auth::LimitError::Spend { .. }) => {
                ("insufficient_quota", Some("spend_limit_reached"))
            }
            ApiError::Overloaded => ("server_error", Some("overloaded")),
            ApiError::BodyTimeout(_) => ("invalid_request_error", Some("request_timeout")),
            ApiError::MethodNotAllowed { .. } => {
                ("invalid_request_error", Some("method_not_allowed"))
            }
            ApiError::AdminUnauthorized(_) => ("invalid_request_error", Some("unauthorized")),
            ApiError::PriceUpdate(_) | ApiError::SheetNotText => {
                ("invalid_request_error", Some("invalid_price_sheet"))
            }
            ApiError::InvalidProvider(_) => ("invalid_request_error", Some("invalid_provider")),
            ApiError::Internal(_) => ("server_error", Some("internal")),
            ApiError::PresetNotFound(_) => ("invalid_request_error", Some("preset_not_found")),
            ApiError::InvalidPreset(_) => ("invalid_request_error", Some("invalid_preset")),
            ApiError::Feedback(crate::feedback::FeedbackError::Unknown(_)) => {
                ("invalid_request_error", Some("request_not_found"))
            }
            ApiError::Feedback(crate::feedback::FeedbackError::AlreadyScored(_)) => {
                ("invalid_request_error", Some("already_scored"))
            }
        }
    }

    fn param(&self) -> Option<&str> {
        match self {
            ApiError::Body(e) => e.field(),
            ApiError::Hint(e) => Some(&e.field),
            ApiError::Translate(e) => Some(&e.field),
            ApiError::BadField { field, .. } => Some(field),
            ApiError::ModelNotFound(_, field) => Some(field),
            ApiError::NoCandidates { removed } => removed.first().map(|(_, c)| c.as_str()),
            ApiError::Feedback(_) => Some("request_id"),
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), error = %self, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), error = %self, "request refused");
        }
        let (kind, code) = self.kind_and_code();
        let body = ErrorBody {
            error: ErrorDetail {
                message: self.to_string(),
                kind,
                param: self.param(),
                code,
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        let retry_after = match &self {
            ApiError::AllAttemptsFailed {
                failures,
                retry_after,
                ..
            } => {
                response
                    .headers_mut()
                    .insert(super::ATTEMPTS_HEADER, HeaderValue::from(failures.len()));
                *retry_after
            }
            ApiError::Limited(e) => Some(e.retry_after()),
            ApiError::Overloaded => Some(std::time::Duration::from_secs(1)),
            _ => None,
        };
        if let Some(d) = retry_after {
            // Whole seconds, rounded up: a client never retries before it may.
            let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}
