//! Who is calling, and what they may do. A caller is the admin token, a project's API key, a
//! share link (all `Authorization: Bearer ...`), or a signed-in user (the session cookie).
//! Cookie-authenticated requests that change state must carry the session's CSRF token in
//! `X-CSRF-Token`; bearer requests need none, since a browser never adds that header cross-site.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use footfall_engine::ProjectId;
use subtle::ConstantTimeEq;

use crate::accounts::audit::Actor;
use crate::accounts::roles::Role;
use crate::accounts::sessions::{cookie_token, ActiveSession, Stage};
use crate::accounts::share_links::{ShareAccess, ShareLinkId};
use crate::accounts::{AccountError, User};
use crate::http::client_ip::client_ip;
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::metadata::{hash_token, ApiKey, KeyScope};

pub const CSRF_HEADER: &str = "x-csrf-token";
/// The password of a share link that has one.
pub const SHARE_PASSWORD_HEADER: &str = "x-share-password";

#[derive(Debug, Clone)]
pub enum Principal {
    Admin,
    Key(ApiKey),
    User(Box<SignedIn>),
    /// A share link: read-only aggregates of one project, nothing else.
    Share {
        id: ShareLinkId,
        project: ProjectId,
    },
}

#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: User,
    pub session: ActiveSession,
}

impl Principal {
    /// For the audit log.
    pub fn actor(&self) -> Actor {
        match self {
            Self::Admin => Actor::Admin,
            Self::Key(key) => Actor::Key(key.name.clone().unwrap_or_else(|| key.scope.as_str().to_string())),
            Self::User(s) => Actor::User(s.user.id.clone()),
            Self::Share { id, .. } => Actor::Share(id.0.clone()),
        }
    }
}

/// An authenticated request: the principal and the client's address.
pub struct Caller {
    pub principal: Principal,
    pub address: IpAddr,
}

pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// The client address of a request, believing `X-Forwarded-For` only from trusted proxies.
pub fn request_address(state: &AppState, parts: &Parts) -> IpAddr {
    let peer =
        parts.extensions.get::<ConnectInfo<SocketAddr>>().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    client_ip(peer, &parts.headers, &state.config.trusted_proxies)
}

/// Whether the request came over HTTPS: the public URL says so, or a trusted proxy does.
pub fn is_https(state: &AppState, parts: &Parts) -> bool {
    if state.config.public_url.starts_with("https://") {
        return true;
    }
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let trusted = peer.is_some_and(|ip| state.config.trusted_proxies.iter().any(|net| net.contains(&ip)));
    trusted
        && parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').next().is_some_and(|p| p.trim().eq_ignore_ascii_case("https")))
}

fn store_error(e: AccountError) -> ApiError {
    crate::http::accounts::account_error(e)
}

/// The session of the request's cookie, whatever its stage.
pub fn cookie_session(state: &AppState, headers: &HeaderMap) -> Result<Option<(User, ActiveSession)>, ApiError> {
    let Some(token) =
        headers.get_all(axum::http::header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(cookie_token)
    else {
        return Ok(None);
    };
    let Some(session) = state.accounts.session(token).map_err(store_error)? else { return Ok(None) };
    let Some(user) = state.accounts.user(&session.session.user).map_err(store_error)? else { return Ok(None) };
    Ok(Some((user, session)))
}

/// Refuses a state-changing cookie request without the session's CSRF token.
pub fn check_csrf(method: &Method, headers: &HeaderMap, session: &ActiveSession) -> Result<(), ApiError> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let presented = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
    if session.csrf_matches(presented) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "this request needs the X-CSRF-Token header (csrf_token from GET /api/v1/auth/me)",
        ))
    }
}

pub fn authenticate(state: &AppState, method: &Method, headers: &HeaderMap) -> Result<Principal, ApiError> {
    if let Some(token) = bearer(headers) {
        if bool::from(hash_token(token).as_bytes().ct_eq(state.admin_token_hash.as_bytes())) {
            return Ok(Principal::Admin);
        }
        if let Some(key) = state.metadata.key(token) {
            check_key_creator(state, &key)?;
            return Ok(Principal::Key(key));
        }
        let password = headers.get(SHARE_PASSWORD_HEADER).and_then(|v| v.to_str().ok());
        return match state.accounts.share_access(token, password).map_err(store_error)? {
            ShareAccess::Granted(id, project) => Ok(Principal::Share { id, project }),
            ShareAccess::PasswordNeeded => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "share_password_required",
                "this share link has a password: send it in X-Share-Password",
            )),
            ShareAccess::WrongPassword => {
                Err(ApiError::new(StatusCode::UNAUTHORIZED, "share_password_wrong", "wrong share link password"))
            }
            ShareAccess::Unknown => Err(ApiError::unauthorized()),
        };
    }
    let Some((user, session)) = cookie_session(state, headers)? else { return Err(ApiError::unauthorized()) };
    match session.session.stage {
        Stage::Full => {}
        Stage::Pending => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "mfa_required",
                "finish signing in with POST /api/v1/auth/totp",
            ))
        }
        Stage::EnrolOnly => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "mfa_enrolment_required",
                "a project you belong to requires two-factor sign-in: enrol first (POST /api/v1/auth/totp/enrol)",
            ))
        }
    }
    check_csrf(method, headers, &session)?;
    Ok(Principal::User(Box::new(SignedIn { user, session })))
}

/// A key made by a user stops working once that user no longer has the role keys need.
fn check_key_creator(state: &AppState, key: &ApiKey) -> Result<(), ApiError> {
    let Some(creator) = &key.created_by else { return Ok(()) };
    let Some(id) = crate::accounts::UserId::parse(creator) else { return Err(ApiError::unauthorized()) };
    let user = state.accounts.user(&id).map_err(store_error)?;
    let role = match &user {
        Some(u) => state.accounts.role(u, &key.project).map_err(store_error)?,
        None => None,
    };
    if role.is_some_and(|r| r >= Role::Admin) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "key_creator_lost_access",
            "this key's creator no longer has access",
        ))
    }
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let principal = authenticate(state, &parts.method, &parts.headers)?;
        Ok(Caller { principal, address: request_address(state, parts) })
    }
}

pub fn require_admin(principal: &Principal) -> Result<(), ApiError> {
    match principal {
        Principal::Admin => Ok(()),
        _ => Err(ApiError::forbidden("this endpoint needs the admin token")),
    }
}

pub fn require_scope(principal: &Principal, scope: KeyScope) -> Result<(), ApiError> {
    match principal {
        Principal::Admin => Ok(()),
        Principal::Key(key) if key.scope == scope => Ok(()),
        Principal::Key(key) => Err(ApiError::forbidden(format!(
            "this {} key cannot be used here; a {} key is needed",
            key.scope.as_str(),
            scope.as_str()
        ))),
        Principal::User(_) => Err(ApiError::forbidden(format!("this endpoint needs a {} key", scope.as_str()))),
        Principal::Share { .. } => Err(share_refused()),
    }
}

pub fn share_refused() -> ApiError {
    ApiError::forbidden("a share link is read-only and answers aggregates only")
}

/// The role the caller has on `project`, if any. The admin token owns everything; an `admin`
/// key is an admin of its project; other keys and share links hold no role.
pub fn role_on(state: &AppState, principal: &Principal, project: &ProjectId) -> Result<Option<Role>, ApiError> {
    Ok(match principal {
        Principal::Admin => Some(Role::Owner),
        Principal::Key(key) if key.scope == KeyScope::Admin && &key.project == project => Some(Role::Admin),
        Principal::Key(_) | Principal::Share { .. } => None,
        Principal::User(s) => state.accounts.role(&s.user, project).map_err(store_error)?,
    })
}

/// Refuses unless the caller has at least `needed` on `project` (404 when the project does not
/// exist, 403 otherwise, so a stranger learns nothing more than a member would).
pub fn require_role(
    state: &AppState,
    principal: &Principal,
    project: &str,
    needed: Role,
) -> Result<ProjectId, ApiError> {
    let Some(p) = state.metadata.project(project) else {
        return Err(ApiError::not_found(format!("no project {project:?}")));
    };
    if let Principal::Share { .. } = principal {
        return Err(share_refused());
    }
    match role_on(state, principal, &p.id)? {
        Some(role) if role >= needed => Ok(p.id),
        _ => Err(ApiError::forbidden(format!("this needs the {} role on project {}", needed.as_str(), p.id))),
    }
}

/// The projects a signed-in user may read.
pub fn readable_projects(state: &AppState, user: &User) -> Result<Vec<(ProjectId, Role)>, ApiError> {
    let ids: Vec<ProjectId> = state.metadata.projects().into_iter().map(|p| p.id).collect();
    Ok(state.accounts.roles(user, &ids).map_err(store_error)?.into_iter().collect())
}
