//! The API's one error type and how each case reaches the wire: a status and `{"error": why}`.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use switchboard_store::{Role, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("log in first: a session cookie from POST /api/login, or Authorization: Bearer TOKEN")]
    Unauthenticated,
    #[error("this needs the {} role or higher; you are {}", .need.as_str(), .have.as_str())]
    Forbidden { need: Role, have: Role },
    /// The same answer for an unknown user, a wrong password and a disabled user.
    #[error("unknown username or wrong password")]
    BadLogin,
    #[error("too many failed logins; try again in {retry_after_s} s")]
    Throttled { retry_after_s: u64 },
    #[error("too many logins at once; try again in a few seconds")]
    LoginsBusy,
    #[error("{what} {key:?} does not exist")]
    NotFound { what: &'static str, key: String },
    #[error("{0}")]
    BadRequest(String),
    #[error("knowledge cannot be managed now: {0}")]
    KnowledgeUnavailable(std::sync::Arc<crate::engines::EngineError>),
    #[error(transparent)]
    Knowledge(#[from] kb::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A route that is not in the access table: served to nobody (see `access::ROUTES`).
    #[error("route {0} has no access rule")]
    NoAccessRule(String),
    /// A blocking task behind the request panicked (a bug); logged, never shown.
    #[error("the {0} task crashed")]
    Crashed(&'static str),
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    /// A recording file that does not open (torn, tampered, another key): logged, never shown.
    #[error(transparent)]
    Recording(#[from] crate::runtime::recording::RecordingError),
    /// Recordings cannot be read on this box (the key could not be loaded at start).
    #[error("recordings cannot be read on this box; the service log says why")]
    RecordingsUnavailable,
    /// An erasure that could not finish (`retention::erase`).
    #[error(transparent)]
    Erase(#[from] crate::Error),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated | ApiError::BadLogin => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } | ApiError::NoAccessRule(_) => StatusCode::FORBIDDEN,
            ApiError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::KnowledgeUnavailable(_)
            | ApiError::LoginsBusy
            | ApiError::RecordingsUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Knowledge(e) => match e {
                kb::Error::InvalidName { .. } => StatusCode::BAD_REQUEST,
                kb::Error::UnknownDocument { .. } => StatusCode::NOT_FOUND,
                kb::Error::UnsupportedFormat { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                kb::Error::Unreadable { .. } | kb::Error::NoText { .. } => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ApiError::Store(StoreError::NotFound { .. }) => StatusCode::NOT_FOUND,
            ApiError::Store(StoreError::Conflict { .. }) => StatusCode::CONFLICT,
            ApiError::Erase(crate::Error::NotANumber(_)) => StatusCode::BAD_REQUEST,
            ApiError::Erase(crate::Error::RecordingsElsewhere(_)) => StatusCode::CONFLICT,
            ApiError::Erase(crate::Error::Store(StoreError::NotFound { .. })) => {
                StatusCode::NOT_FOUND
            }
            ApiError::Store(_)
            | ApiError::Crashed(_)
            | ApiError::Auth(_)
            | ApiError::Erase(_)
            | ApiError::Recording(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        // Server-side failures are logged in full; the client learns only that one happened
        // (a database error can quote SQL, a disk error a path).
        let message = if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!("API request failed: {self}");
            "internal error; the service log has the details".to_string()
        } else {
            self.to_string()
        };
        let mut response = (status, Json(serde_json::json!({ "error": message }))).into_response();
        if let ApiError::Throttled { retry_after_s } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, retry_after_s.into());
        }
        response
    }
}

/// A handler's query parameters, like axum's `Query`, but a missing or malformed parameter is a
/// 400 in the API's JSON shape naming it, not a plain-text rejection.
pub struct Params<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Params<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(t)| Params(t))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}
