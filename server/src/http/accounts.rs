//! Signing in and out, the second factor, one's own sessions and password, the setup link and
//! accepting an invitation: `/api/v1/auth/*` and `/api/v1/invitations/{token}/accept`.

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use crate::accounts::audit::{Actor, AuditEntry};
use crate::accounts::limits::Refusal;
use crate::accounts::sessions::{clear_cookie, session_cookie, ActiveSession, Session, Stage};
use crate::accounts::totp::{Factor, TotpError};
use crate::accounts::users::{check_new_password, check_password_size, normalize_email, UserError};
use crate::accounts::{AccountError, User};
use crate::http::auth::{check_csrf, cookie_session, is_https, readable_projects, request_address};
use crate::http::error::ApiError;
use crate::http::{read_body, AppState};

/// Account requests are small; this bounds what is read before a password is even looked at.
const MAX_ACCOUNT_BODY: usize = 16 << 10;

pub fn account_error(e: AccountError) -> ApiError {
    let message = e.to_string();
    match e {
        AccountError::Store(inner) => {
            tracing::error!(error = %inner, "accounts store");
            ApiError::internal("the accounts store failed")
        }
        AccountError::User(u) => match u {
            UserError::EmptyEmail | UserError::EmailTooLong | UserError::InvalidEmail(_) => {
                ApiError::bad_request("invalid_email", message)
            }
            UserError::PasswordTooShort => ApiError::bad_request("password_too_short", message),
            UserError::PasswordTooLong => ApiError::bad_request("password_too_long", message),
            UserError::PasswordTooCommon => ApiError::bad_request("password_too_common", message),
            UserError::Hash(_) => ApiError::internal(message),
        },
        AccountError::Totp(t) => match t {
            TotpError::AlreadyEnabled => ApiError::new(StatusCode::CONFLICT, "mfa_already_enabled", message),
            TotpError::NotEnabled => ApiError::new(StatusCode::CONFLICT, "mfa_not_enabled", message),
            TotpError::NotEnrolling => ApiError::new(StatusCode::CONFLICT, "mfa_not_enrolling", message),
            TotpError::WrongCode => ApiError::new(StatusCode::UNAUTHORIZED, "wrong_code", message),
            TotpError::Damaged(_) | TotpError::Qr(_) => ApiError::internal(message),
        },
        AccountError::BadCredentials => ApiError::new(StatusCode::UNAUTHORIZED, "bad_credentials", message),
        AccountError::RateLimited(secs) => ApiError {
            retry_after_secs: Some(secs),
            ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
        },
        AccountError::EmailTaken => ApiError::new(StatusCode::CONFLICT, "email_taken", message),
        AccountError::NotFound(_) => ApiError::not_found(message),
        AccountError::Expired(_) => ApiError::new(StatusCode::GONE, "expired", message),
        AccountError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
        AccountError::Forbidden(_) => ApiError::forbidden(message),
    }
}

fn refusal(r: Refusal) -> ApiError {
    let (code, message) = match r {
        Refusal::RateLimited(_) => ("rate_limited", "too many attempts; slow down"),
        Refusal::Locked(_) => ("account_locked", "too many failed sign-ins: this account is locked for a while"),
    };
    ApiError {
        retry_after_secs: Some(r.retry_after_secs()),
        ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, message)
    }
}

/// Reads a JSON body, refusing other content types (415) and anything large (413).
pub(crate) async fn json_request<T: DeserializeOwned>(parts: &Parts, body: Body) -> Result<T, ApiError> {
    let is_json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim().to_ascii_lowercase().starts_with("application/json"));
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the request as Content-Type: application/json",
        ));
    }
    let bytes = read_body(body, MAX_ACCOUNT_BODY).await?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request("invalid_json", e.to_string()))
}

fn user_agent(parts: &Parts) -> String {
    parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

/// A response with the session cookie set.
fn with_cookie(state: &AppState, parts: &Parts, token: &str, session: &Session, body: serde_json::Value) -> Response {
    let max_age = (session.expires_at - chrono::Utc::now()).num_seconds().max(0);
    let cookie = session_cookie(token, max_age, is_https(state, parts));
    let mut response = Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// The request's session, in one of `stages`; state-changing requests need its CSRF token.
fn session_in(
    state: &AppState,
    parts: &Parts,
    stages: &[Stage],
    csrf: bool,
) -> Result<(User, ActiveSession), ApiError> {
    let Some((user, session)) = cookie_session(state, &parts.headers)? else {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "not_signed_in", "sign in first"));
    };
    if !stages.contains(&session.session.stage) {
        return Err(match session.session.stage {
            Stage::Pending => {
                ApiError::new(StatusCode::UNAUTHORIZED, "mfa_required", "finish signing in with POST /api/v1/auth/totp")
            }
            Stage::EnrolOnly => ApiError::new(
                StatusCode::FORBIDDEN,
                "mfa_enrolment_required",
                "a project you belong to requires two-factor sign-in: enrol first",
            ),
            Stage::Full => {
                ApiError::new(StatusCode::CONFLICT, "already_signed_in", "this session is already signed in")
            }
        });
    }
    if csrf {
        check_csrf(&parts.method, &parts.headers, &session)?;
    }
    Ok((user, session))
}

/// Verifies a password off the async threads (argon2 takes ~100 ms); an unknown user costs the
/// same time.
async fn verify_password(state: &Arc<AppState>, user: Option<&User>, password: String) -> Result<bool, ApiError> {
    let stored = user.map(|u| u.password_hash.clone());
    let accounts = state.clone();
    tokio::task::spawn_blocking(move || match stored {
        Some(hash) => accounts.accounts.hasher().verify(&password, &hash),
        None => {
            accounts.accounts.hasher().verify_dummy(&password);
            false
        }
    })
    .await
    .map_err(|e| ApiError::internal(format!("password check failed: {e}")))
}

async fn hash_password(state: &Arc<AppState>, password: String) -> Result<String, ApiError> {
    let accounts = state.clone();
    tokio::task::spawn_blocking(move || accounts.accounts.hasher().hash(&password))
        .await
        .map_err(|e| ApiError::internal(format!("password hashing failed: {e}")))?
        .map_err(|e| account_error(e.into()))
}

/// The stage a user's new session starts in after the password.
fn stage_after_password(state: &AppState, user: &User) -> Result<Stage, ApiError> {
    if user.totp.is_some() {
        Ok(Stage::Pending)
    } else if state.accounts.mfa_required_for(user).map_err(account_error)? {
        Ok(Stage::EnrolOnly)
    } else {
        Ok(Stage::Full)
    }
}

fn signed_in_audit(state: &AppState, user: &User, address: IpAddr, how: &str) {
    let hashed = state.accounts.hash_address(address);
    if let Err(e) = state.accounts.remember_address(&user.id, &hashed) {
        tracing::warn!(error = %e, "remembering a sign-in address");
    }
    state
        .accounts
        .audit(AuditEntry::new(Actor::User(user.id.clone()), "login").user(&user.id).address(Some(hashed)).detail(how));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    email: String,
    password: String,
}

/// `POST /api/v1/auth/login`
pub async fn login(State(state): State<Arc<AppState>>, req: Request) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let address = request_address(&state, &parts);
    let req: Login = json_request(&parts, body).await?;
    let email = normalize_email(&req.email).map_err(|e| account_error(e.into()))?;
    check_password_size(&req.password).map_err(|e| account_error(e.into()))?;
    let guard = &state.accounts.guard;
    guard.attempt("login", &email, address).map_err(refusal)?;
    let user = state.accounts.user_by_email(&email).map_err(account_error)?;
    let hashed = state.accounts.hash_address(address);
    let known = user.as_ref().is_some_and(|u| u.known_addresses.contains(&hashed));
    if !known {
        if let Some(left) = guard.locked(&email) {
            state.accounts.audit(
                AuditEntry::new(Actor::Anonymous, "login_refused_locked")
                    .address(Some(hashed))
                    .target(email.clone())
                    .detail(format!("{} s left", left.as_secs())),
            );
            return Err(refusal(Refusal::Locked(left)));
        }
    }
    if !verify_password(&state, user.as_ref(), req.password).await? {
        let locked = guard.failure(&email);
        let mut entry = AuditEntry::new(Actor::Anonymous, "login_failed").address(Some(hashed)).target(email.clone());
        if let Some(u) = &user {
            entry = entry.user(&u.id);
        }
        if let Some(delay) = locked {
            entry = entry.detail(format!("account locked for {} s", delay.as_secs()));
            tracing::warn!(lock_secs = delay.as_secs(), "sign-in lock after repeated failures");
        }
        state.accounts.audit(entry);
        return Err(account_error(AccountError::BadCredentials));
    }
    let Some(user) = user else { return Err(account_error(AccountError::BadCredentials)) };
    guard.success(&email);
    let stage = stage_after_password(&state, &user)?;
    let (token, session) =
        state.accounts.start_session(&user, stage, address, &user_agent(&parts)).map_err(account_error)?;
    match stage {
        Stage::Full => signed_in_audit(&state, &user, address, "password"),
        Stage::EnrolOnly => signed_in_audit(&state, &user, address, "password, enrolment only"),
        Stage::Pending => {}
    }
    let body = json!({"mfa_required": stage == Stage::Pending, "enrol_required": stage == Stage::EnrolOnly});
    Ok(with_cookie(&state, &parts, &token, &session, body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Code {
    code: String,
}

/// `POST /api/v1/auth/totp`: completes a pending sign-in with a TOTP or recovery code. It takes
/// no CSRF token: the pending session has no way to read one yet, its cookie is `SameSite=Lax`
/// (a cross-site POST does not carry it), and a forged request would need the victim's code.
pub async fn totp(State(state): State<Arc<AppState>>, req: Request) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let address = request_address(&state, &parts);
    let (user, session) = session_in(&state, &parts, &[Stage::Pending], false)?;
    let req: Code = json_request(&parts, body).await?;
    let guard = &state.accounts.guard;
    guard.attempt("totp", &user.email, address).map_err(refusal)?;
    if let Some(left) = guard.locked(&user.email) {
        return Err(refusal(Refusal::Locked(left)));
    }
    let hashed = state.accounts.hash_address(address);
    let factor = match state.accounts.check_second_factor(&user.id, &req.code) {
        Ok(f) => f,
        Err(AccountError::Totp(TotpError::WrongCode)) => {
            guard.failure(&user.email);
            state.accounts.audit(AuditEntry::new(Actor::Anonymous, "mfa_failed").user(&user.id).address(Some(hashed)));
            return Err(account_error(TotpError::WrongCode.into()));
        }
        Err(e) => return Err(account_error(e)),
    };
    guard.success(&user.email);
    let (token, full) =
        state.accounts.upgrade_session(&session, &user, address, &user_agent(&parts)).map_err(account_error)?;
    let how = match factor {
        Factor::Totp => "password + totp",
        Factor::RecoveryCode => "password + recovery code",
    };
    signed_in_audit(&state, &user, address, how);
    Ok(with_cookie(&state, &parts, &token, &full, json!({"signed_in": true, "factor": how})))
}

/// `POST /api/v1/auth/totp/enrol`
pub async fn totp_enrol(State(state): State<Arc<AppState>>, req: Request) -> Result<Json<serde_json::Value>, ApiError> {
    let (parts, _) = req.into_parts();
    let (user, _) = session_in(&state, &parts, &[Stage::Full, Stage::EnrolOnly], true)?;
    let e = state.accounts.enrol_totp(&user.id).map_err(account_error)?;
    Ok(Json(json!({"secret": e.secret, "otpauth_uri": e.otpauth_uri, "qr_svg": e.qr_svg})))
}

/// `POST /api/v1/auth/totp/confirm`: an enrol-only session becomes a full one (new token).
pub async fn totp_confirm(State(state): State<Arc<AppState>>, req: Request) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let address = request_address(&state, &parts);
    let (user, session) = session_in(&state, &parts, &[Stage::Full, Stage::EnrolOnly], true)?;
    let req: Code = json_request(&parts, body).await?;
    state.accounts.guard.attempt("totp", &user.email, address).map_err(refusal)?;
    let hashed = Some(state.accounts.hash_address(address));
    let codes = state.accounts.confirm_totp(&user.id, &req.code, hashed).map_err(account_error)?;
    let body = json!({"recovery_codes": codes});
    if session.session.stage == Stage::EnrolOnly {
        let (token, full) =
            state.accounts.upgrade_session(&session, &user, address, &user_agent(&parts)).map_err(account_error)?;
        return Ok(with_cookie(&state, &parts, &token, &full, body));
    }
    Ok(Json(body).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Disable {
    password: String,
    code: String,
}

/// `POST /api/v1/auth/totp/disable`: needs the password and a current code.
pub async fn totp_disable(State(state): State<Arc<AppState>>, req: Request) -> Result<StatusCode, ApiError> {
    let (parts, body) = req.into_parts();
    let address = request_address(&state, &parts);
    let (user, _) = session_in(&state, &parts, &[Stage::Full], true)?;
    let req: Disable = json_request(&parts, body).await?;
    check_password_size(&req.password).map_err(|e| account_error(e.into()))?;
    state.accounts.guard.attempt("totp", &user.email, address).map_err(refusal)?;
    if !verify_password(&state, Some(&user), req.password).await? {
        state.accounts.guard.failure(&user.email);
        return Err(account_error(AccountError::BadCredentials));
    }
    let hashed = Some(state.accounts.hash_address(address));
    state.accounts.disable_totp(&user.id, &req.code, hashed).map_err(account_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/auth/totp/recovery-codes`: new codes for a current TOTP code.
pub async fn recovery_codes(
    State(state): State<Arc<AppState>>,
    req: Request,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (parts, body) = req.into_parts();
    let address = request_address(&state, &parts);
    let (user, _) = session_in(&state, &parts, &[Stage::Full], true)?;
    let req: Code = json_request(&parts, body).await?;
    state.accounts.guard.attempt("totp", &user.email, address).map_err(refusal)?;
    let hashed = Some(state.accounts.hash_address(address));
    let codes = state.accounts.regenerate_recovery_codes(&user.id, &req.code, hashed).map_err(account_error)?;
    Ok(Json(json!({"recovery_codes": codes})))
}

/// `GET /api/v1/auth/me`
pub async fn me(State(state): State<Arc<AppState>>, req: Request) -> Result<Json<serde_json::Value>, ApiError> {
    let (parts, _) = req.into_parts();
    let (user, session) = session_in(&state, &parts, &[Stage::Full, Stage::EnrolOnly], false)?;
    let projects: Vec<serde_json::Value> =
        readable_projects(&state, &user)?.into_iter().map(|(p, role)| json!({"id": p, "role": role})).collect();
    Ok(Json(json!({
        "id": user.id,
        "email": user.email,
        "instance_owner": user.instance_owner,
        "totp_enabled": user.totp.is_some(),
        "enrol_required": session.session.stage == Stage::EnrolOnly,
        "projects": projects,
        "csrf_token": session.session.csrf,
        "session_id": session.session.id,
    })))
}

/// `POST /api/v1/auth/logout`
pub async fn logout(State(state): State<Arc<AppState>>, req: Request) -> Result<Response, ApiError> {
    let (parts, _) = req.into_parts();
    let address = request_address(&state, &parts);
    let (user, session) = session_in(&state, &parts, &[Stage::Full, Stage::EnrolOnly], true)?;
    state.accounts.end_session(&session).map_err(account_error)?;
    state.accounts.audit(
        AuditEntry::new(Actor::User(user.id.clone()), "logout")
            .user(&user.id)
            .address(Some(state.accounts.hash_address(address))),
    );
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&clear_cookie(is_https(&state, &parts))) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}

/// `GET /api/v1/auth/sessions`: one's own sessions.
pub async fn sessions(State(state): State<Arc<AppState>>, req: Request) -> Result<Json<serde_json::Value>, ApiError> {
    let (parts, _) = req.into_parts();
    let (user, current) = session_in(&state, &parts, &[Stage::Full], false)?;
    let list: Vec<serde_json::Value> = state
        .accounts
        .sessions_of(&user.id)
        .map_err(account_error)?
        .into_iter()
        .map(|(_, s)| {
            json!({
                "id": s.id, "stage": s.stage, "created_at": s.created_at, "last_seen": s.last_seen,
                "expires_at": s.expires_at, "user_agent": s.user_agent, "current": s.id == current.session.id,
            })
        })
        .collect();
    Ok(Json(json!({"sessions": list})))
}

/// `DELETE /api/v1/auth/sessions/{id}`: takes effect on that session's next request.
pub async fn revoke_session(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    req: Request,
) -> Result<StatusCode, ApiError> {
    let (parts, _) = req.into_parts();
    let address = request_address(&state, &parts);
    let (user, _) = session_in(&state, &parts, &[Stage::Full], true)?;
    let hashed = Some(state.accounts.hash_address(address));
    if state.accounts.revoke_session(&user.id, &id, hashed).map_err(account_error)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("no such session of yours"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// `POST /api/v1/auth/password`: ends every other session of the user.
pub async fn change_password(
    State(state): State<Arc<AppState>>,
    req: Request,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (parts, body) = req.into_parts();
    let address = request_address(&state, &parts);
    let (user, session) = session_in(&state, &parts, &[Stage::Full], true)?;
    let req: PasswordChange = json_request(&parts, body).await?;
    check_password_size(&req.current_password).map_err(|e| account_error(e.into()))?;
    check_new_password(&req.new_password).map_err(|e| account_error(e.into()))?;
    state.accounts.guard.attempt("login", &user.email, address).map_err(refusal)?;
    if !verify_password(&state, Some(&user), req.current_password).await? {
        state.accounts.guard.failure(&user.email);
        return Err(account_error(AccountError::BadCredentials));
    }
    let hash = hash_password(&state, req.new_password).await?;
    let hashed = Some(state.accounts.hash_address(address));
    let ended = state.accounts.change_password(&user.id, hash, Some(&session.hash), hashed).map_err(account_error)?;
    Ok(Json(json!({"other_sessions_ended": ended})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Setup {
    token: String,
    email: String,
    password: String,
}

/// `POST /api/v1/auth/setup`: the first owner, with the token of the setup link.
pub async fn setup(State(state): State<Arc<AppState>>, req: Request) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let address = request_address(&state, &parts);
    let req: Setup = json_request(&parts, body).await?;
    normalize_email(&req.email).map_err(|e| account_error(e.into()))?;
    check_new_password(&req.password).map_err(|e| account_error(e.into()))?;
    state.accounts.guard.attempt("setup", "setup", address).map_err(refusal)?;
    let hash = hash_password(&state, req.password).await?;
    let hashed = Some(state.accounts.hash_address(address));
    let user = state.accounts.complete_setup(&req.token, &req.email, hash, hashed).map_err(account_error)?;
    tracing::info!(user = %user.id, "first owner created with the setup link");
    let (token, session) =
        state.accounts.start_session(&user, Stage::Full, address, &user_agent(&parts)).map_err(account_error)?;
    signed_in_audit(&state, &user, address, "setup link");
    let mut response = with_cookie(&state, &parts, &token, &session, json!({"id": user.id, "email": user.email}));
    *response.status_mut() = StatusCode::CREATED;
    Ok(response)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Accept {
    password: Option<String>,
}

/// `POST /api/v1/invitations/{token}/accept`: creates the invitee's account (or adds the
/// signed-in invitee) and signs them in.
pub async fn accept_invitation(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let address = request_address(&state, &parts);
    let req: Accept = json_request(&parts, body).await?;
    let signed_in = match cookie_session(&state, &parts.headers)? {
        Some((user, session)) if session.session.stage == Stage::Full => {
            check_csrf(&parts.method, &parts.headers, &session)?;
            Some(user)
        }
        _ => None,
    };
    if token.len() > 128 {
        return Err(ApiError::not_found("no such invitation"));
    }
    let Some(invitation) = state.accounts.invitation(&token).map_err(account_error)? else {
        return Err(ApiError::not_found("no such invitation (it may have been used already)"));
    };
    let exists = state.accounts.user_by_email(&invitation.email).map_err(account_error)?.is_some();
    let password_hash = match (&req.password, exists) {
        (Some(p), false) => {
            check_new_password(p).map_err(|e| account_error(e.into()))?;
            Some(hash_password(&state, p.clone()).await?)
        }
        (None, false) => {
            return Err(ApiError::bad_request("password_required", "choose a password for the new account"))
        }
        (_, true) => None,
    };
    let hashed = Some(state.accounts.hash_address(address));
    let user =
        state.accounts.accept_invitation(&token, password_hash, signed_in.as_ref(), hashed).map_err(account_error)?;
    let body = json!({"id": user.id, "email": user.email, "project": invitation.project, "role": invitation.role});
    if signed_in.is_some() {
        return Ok(Json(body).into_response());
    }
    let stage = stage_after_password(&state, &user)?;
    let (token, session) =
        state.accounts.start_session(&user, stage, address, &user_agent(&parts)).map_err(account_error)?;
    signed_in_audit(&state, &user, address, "invitation");
    Ok(with_cookie(&state, &parts, &token, &session, body))
}
