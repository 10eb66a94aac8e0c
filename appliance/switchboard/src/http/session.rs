//! `POST /api/login`, `POST /api/logout` and `GET /api/me`: browser sessions of the admin UI.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use switchboard_store::UnixMillis;

use super::access::{session_token, Caller, SESSION_COOKIE};
use super::{ApiError, AppState};
use crate::auth::{self, LoginFailure};

/// How long a session lasts after its login (a working day and a half); then log in again.
const SESSION_HOURS: i64 = 12;
/// How long a login waits for a password check slot before it is told to come back (503).
const PASSWORD_CHECK_QUEUE: Duration = Duration::from_secs(5);

#[derive(Deserialize)]
pub struct Login {
    username: String,
    password: String,
}

/// Checks the password and opens a session: the cookie holds a random token, the database its
/// digest. Failures get one answer whatever went wrong, are audited with the reason, and slow
/// down repeated guessing from one address ([`auth::LoginThrottle`]).
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(login): Json<Login>,
) -> Result<Response, ApiError> {
    let ip = peer.ip();
    if login.username.len() > auth::MAX_USERNAME {
        tracing::info!(%ip, len = login.username.len(), "failed login: username too long");
        return Err(ApiError::BadLogin);
    }
    if let Some(wait) = state.throttle.wait(ip, &login.username, Instant::now()) {
        return Err(ApiError::Throttled {
            retry_after_s: wait.as_secs().max(1),
        });
    }
    // A flood waits its turn here, a bounded time, rather than running argon2 on every core.
    let permit = tokio::time::timeout(
        PASSWORD_CHECK_QUEUE,
        Arc::clone(&state.password_checks).acquire_owned(),
    )
    .await
    .map_err(|_| ApiError::LoginsBusy)?
    .map_err(|_| ApiError::LoginsBusy)?;
    let user = state.store.user_by_name(&login.username).await?;
    let password = login.password;
    // argon2 takes tens of milliseconds of CPU: off the async workers.
    let checked = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        auth::check_login(user, &password)
    })
    .await
    .map_err(|_| ApiError::Crashed("password check"))?;
    let user = match checked {
        Ok(user) => user,
        Err(why) => {
            state.throttle.failed(ip, &login.username, Instant::now());
            let detail = json!({ "ip": ip.to_string(), "reason": why.as_str() });
            state
                .store
                .audit(
                    &login.username,
                    "user.login_failed",
                    &login.username,
                    &detail.to_string(),
                )
                .await?;
            if why == LoginFailure::UnknownUser {
                tracing::info!(%ip, "failed login for an unknown user");
            } else {
                tracing::info!(%ip, user = %login.username, "failed login: {}", why.as_str());
            }
            return Err(ApiError::BadLogin);
        }
    };
    state.throttle.succeeded(ip, &user.username);
    let token = auth::new_token("sbs_")?;
    let expires_at = UnixMillis(UnixMillis::now().0 + SESSION_HOURS * 3_600_000);
    let detail = json!({ "ip": ip.to_string() }).to_string();
    state
        .store
        .create_session(&user, &auth::token_digest(&token), expires_at, &detail)
        .await?;
    tracing::info!(%ip, user = %user.username, "logged in");
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_HOURS * 3600,
        secure(&state, &headers)
    );
    let body = json!({
        "username": user.username,
        "role": user.role.as_str(),
        "expires_at": expires_at.0,
    });
    Ok(with_cookie(Json(body).into_response(), &cookie))
}

/// Ends the request's session, if any, and clears the cookie. Always 204: logging out twice,
/// or with an expired session, is not an error.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(token) = session_token(&headers) {
        state
            .store
            .delete_session(&auth::token_digest(token))
            .await?;
    }
    let cookie = format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        secure(&state, &headers)
    );
    Ok(with_cookie(StatusCode::NO_CONTENT.into_response(), &cookie))
}

/// Who the caller is, and how they authenticated.
/// Who the caller is; `agents`: the agents a user of the `agent` role works for (absent for the
/// roles that see every agent).
pub async fn me(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut me = json!({
        "username": caller.user.username,
        "role": caller.user.role.as_str(),
        "via": caller.via,
    });
    if let Some(agents) = caller.agents(&state).await? {
        me["agents"] = json!(agents);
    }
    Ok(Json(me))
}

/// `; Secure` when the browser reached us over HTTPS: ours, or a TLS-terminating reverse proxy's
/// in front (`http.tls = "off"`), which says so in `X-Forwarded-Proto`.
fn secure(state: &AppState, headers: &HeaderMap) -> &'static str {
    let https = state.https
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    if https {
        "; Secure"
    } else {
        ""
    }
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}
