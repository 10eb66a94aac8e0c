//! Who may call what: one table maps each API route to the least role it needs, and one
//! middleware enforces it before any handler runs. A route missing from the table is refused
//! to everyone, so forgetting a line fails closed.
//!
//! A caller proves who they are with the session cookie that `POST /api/login` sets, or with
//! `Authorization: Bearer TOKEN` (a token from `switchboard user token`). Only SHA-256 digests
//! of both are stored, so lookups compare digests, never the secrets themselves.

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use switchboard_store::{Role, UnixMillis, User};

use super::{count, ApiError, AppState};
use crate::auth::token_digest;

/// One API route and the least role that may call it; `None`: open to everyone.
#[derive(Debug)]
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub min: Option<Role>,
}

const fn route(method: Method, path: &'static str, min: Option<Role>) -> Route {
    Route { method, path, min }
}

const AGENT: Option<Role> = Some(Role::Agent);
const OPERATOR: Option<Role> = Some(Role::Operator);
const ADMIN: Option<Role> = Some(Role::Admin);

/// Every API route (paths as registered, `{name}` for a path parameter). `docs/api.md` shows
/// the same table; the API tests walk this one.
pub static ROUTES: &[Route] = &[
    route(Method::POST, "/api/login", None),
    route(Method::POST, "/api/logout", None),
    route(Method::GET, "/api/me", AGENT),
    route(Method::GET, "/api/agents", AGENT),
    route(Method::GET, "/api/agents/{name}/knowledge", AGENT),
    route(Method::POST, "/api/agents/{name}/knowledge", OPERATOR),
    route(Method::GET, "/api/agents/{name}/knowledge/search", AGENT),
    route(
        Method::DELETE,
        "/api/agents/{name}/knowledge/{*document}",
        OPERATOR,
    ),
    route(Method::GET, "/api/agents/{name}/memory", OPERATOR),
    route(Method::GET, "/api/callers/{number}/memory", OPERATOR),
    route(Method::DELETE, "/api/callers/{number}/memory", OPERATOR),
    route(Method::DELETE, "/api/callers/{number}", ADMIN),
    route(Method::GET, "/api/blacklist", OPERATOR),
    route(Method::DELETE, "/api/blacklist/{number}", OPERATOR),
    route(Method::POST, "/api/lists/{name}/contacts", OPERATOR),
    route(Method::GET, "/api/campaigns", OPERATOR),
    route(Method::GET, "/api/campaigns/{name}", OPERATOR),
    route(Method::POST, "/api/campaigns/{name}/status", OPERATOR),
    route(Method::GET, "/api/calls", AGENT),
    route(Method::GET, "/api/calls/{id}", AGENT),
    route(Method::GET, "/api/calls/{id}/recording", AGENT),
];

/// The cookie holding a browser's session token.
pub const SESSION_COOKIE: &str = "switchboard_session";

/// The authenticated user of a request, put there by [`authorize`].
#[derive(Clone, Debug)]
pub struct Caller {
    pub user: User,
    pub via: Via,
}

impl Caller {
    /// The agents this caller may see, by name: `None` for every agent (operators and admins);
    /// a user of the `agent` role sees those it works for (`switchboard user agents`), and
    /// nothing of the others, not even that they exist.
    pub async fn agents(&self, state: &AppState) -> Result<Option<Vec<String>>, ApiError> {
        if self.user.role.at_least(Role::Operator) {
            return Ok(None);
        }
        Ok(Some(state.store.user_agents(&self.user.id).await?))
    }

    /// Whether this caller may see `agent` (its knowledge, its calls).
    pub async fn sees(&self, state: &AppState, agent: &str) -> Result<bool, ApiError> {
        Ok(self
            .agents(state)
            .await?
            .is_none_or(|agents| agents.iter().any(|a| a == agent)))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    Session,
    Token,
}

/// The middleware on every API route: finds the route's rule, authenticates when it needs a
/// role, refuses 401 (no valid credentials) or 403 (role too low), and counts the request.
pub async fn authorize(
    State(state): State<AppState>,
    matched: MatchedPath,
    mut request: Request,
    next: Next,
) -> Response {
    // HEAD is served by the GET handler, so it follows the GET rule.
    let method = if request.method() == Method::HEAD {
        Method::GET
    } else {
        request.method().clone()
    };
    let Some(route) = ROUTES
        .iter()
        .find(|r| r.method == method && r.path == matched.as_str())
    else {
        tracing::error!(
            "{method} {} has no line in http::access::ROUTES; refused",
            matched.as_str()
        );
        return ApiError::NoAccessRule(format!("{method} {}", matched.as_str())).into_response();
    };
    let outcome = match route.min {
        None => Ok(()),
        Some(min) => match authenticate(&state, request.headers()).await {
            Ok(Some(caller)) if caller.user.role.at_least(min) => {
                request.extensions_mut().insert(caller);
                Ok(())
            }
            Ok(Some(caller)) => Err(ApiError::Forbidden {
                need: min,
                have: caller.user.role,
            }),
            Ok(None) => Err(ApiError::Unauthenticated),
            Err(e) => Err(e),
        },
    };
    let response = match outcome {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    };
    count(route.path, response.status().as_u16());
    response
}

/// The user behind the request's bearer token or session cookie, if valid. A bearer token,
/// when present, is the only credential looked at.
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Option<Caller>, ApiError> {
    let now = UnixMillis::now();
    if let Some(token) = bearer_token(headers) {
        let user = state
            .store
            .user_for_token(&token_digest(token), now)
            .await?;
        return Ok(user.map(|user| Caller {
            user,
            via: Via::Token,
        }));
    }
    let Some(token) = session_token(headers) else {
        return Ok(None);
    };
    let user = state
        .store
        .user_for_session(&token_digest(token), now)
        .await?;
    Ok(user.map(|user| Caller {
        user,
        via: Via::Session,
    }))
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The session token from the `Cookie` header(s).
pub fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == SESSION_COOKIE).then_some(value)
        })
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or(ApiError::Unauthenticated)
    }
}
