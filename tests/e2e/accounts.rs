//! Accounts over HTTP: `footfall user add` with and without a running server, sign-in with and
//! without TOTP, recovery codes, replayed codes, lockout, sessions, CSRF, cookie flags, roles,
//! invitations, share links and the audit log.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use footfall_tests::{assert_error_body, binary, json_body, Api, Server, ServerOpts};
use reqwest::blocking::Response;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use totp_rs::{Algorithm, Secret, TOTP};

use crate::pageview;

const PASSWORD: &str = "correct horse battery staple";
const ATTACKER: &str = "203.0.113.7";
const HOME: &str = "198.51.100.1";

/// Cheap password hashing (the cost is a setting; production uses the default) and a trusted
/// local proxy, so tests can choose the client address and scheme.
fn opts() -> ServerOpts {
    opts_with_rate_limit(1000)
}

fn opts_with_rate_limit(per_minute: u32) -> ServerOpts {
    ServerOpts::new()
        .arg("--argon2-memory")
        .arg("1MiB")
        .arg("--argon2-iterations")
        .arg("1")
        .arg("--login-rate-limit")
        .arg(per_minute.to_string())
        .trusted_proxies("127.0.0.1/32")
}

/// `footfall user add` on the server's data directory; returns (success, stdout + stderr).
fn user_add(server: &Server, email: &str, owner: bool, password: &str) -> (bool, String) {
    let mut cmd = Command::new(binary());
    cmd.args(["user", "add", "--email", email, "--data-dir"])
        .arg(server.data_dir())
        .args(["--argon2-memory", "1MiB", "--argon2-iterations", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if owner {
        cmd.arg("--owner");
    }
    let mut child = cmd.spawn().expect("spawn footfall user add");
    child.stdin.take().expect("stdin").write_all(format!("{password}\n").as_bytes()).expect("write the password");
    let out = child.wait_with_output().expect("wait for footfall user add");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// A browser: keeps the session cookie and the CSRF token, and sends requests through the
/// trusted proxy header from a chosen client address.
struct Browser<'a> {
    api: &'a Api,
    cookie: Option<String>,
    csrf: Option<String>,
    address: &'static str,
    last_set_cookie: Option<String>,
}

impl<'a> Browser<'a> {
    fn new(api: &'a Api) -> Self {
        Self { api, cookie: None, csrf: None, address: HOME, last_set_cookie: None }
    }

    fn at(mut self, address: &'static str) -> Self {
        self.address = address;
        self
    }

    fn request(&mut self, method: Method, path: &str, body: Option<Value>, csrf: bool) -> (StatusCode, Value) {
        let mut req = self.api.client().request(method, self.api.url(path)).header("x-forwarded-for", self.address);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", format!("footfall_session={c}"));
        }
        if csrf {
            if let Some(t) = &self.csrf {
                req = req.header("x-csrf-token", t);
            }
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().expect("send");
        self.absorb(resp)
    }

    fn absorb(&mut self, resp: Response) -> (StatusCode, Value) {
        let status = resp.status();
        if let Some(set) = resp.headers().get("set-cookie").and_then(|v| v.to_str().ok()) {
            self.last_set_cookie = Some(set.to_string());
            let value = set.split(';').next().and_then(|kv| kv.split_once('=')).map(|(_, v)| v.to_string());
            self.cookie = value.filter(|v| !v.is_empty());
        }
        let text = resp.text().expect("body");
        let body =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(json!({"raw": text})) };
        (status, body)
    }

    fn get(&mut self, path: &str) -> (StatusCode, Value) {
        self.request(Method::GET, path, None, false)
    }

    fn post(&mut self, path: &str, body: Value) -> (StatusCode, Value) {
        self.request(Method::POST, path, Some(body), true)
    }

    fn delete(&mut self, path: &str) -> (StatusCode, Value) {
        self.request(Method::DELETE, path, None, true)
    }

    /// Signs in (no second factor) and fetches the CSRF token.
    fn login(&mut self, email: &str, password: &str) -> Value {
        let (status, body) = self.post("/api/v1/auth/login", json!({"email": email, "password": password}));
        assert_eq!(status, StatusCode::OK, "login {email}: {body}");
        if body["mfa_required"] == json!(false) {
            self.refresh_csrf();
        }
        body
    }

    fn refresh_csrf(&mut self) {
        let (status, me) = self.get("/api/v1/auth/me");
        assert_eq!(status, StatusCode::OK, "me: {me}");
        self.csrf = me["csrf_token"].as_str().map(str::to_string);
    }

    fn sql(&mut self, sql: &str) -> (StatusCode, Value) {
        self.post("/api/v1/sql", json!({"sql": sql}))
    }
}

fn assert_err(got: (StatusCode, Value), status: StatusCode, code: &str, what: &str) {
    assert_eq!(got.0, status, "{what}: {}", got.1);
    assert_error_body(&got.1, Some(code));
}

fn audit_actions(browser: &mut Browser, project: &str) -> Vec<String> {
    let (status, body) = browser.get(&format!("/api/v1/projects/{project}/audit-log"));
    assert_eq!(status, StatusCode::OK, "audit log: {body}");
    body["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["action"].as_str().unwrap_or("").to_string())
        .collect()
}

fn count_rows(body: &Value) -> i64 {
    body.as_array().and_then(|rows| rows.first()).and_then(|r| r["c"].as_i64()).unwrap_or(-1)
}

#[test]
fn accounts_sign_in_roles_keys_sessions_and_audit() {
    let server = Server::start(opts());
    let api = server.api();
    assert!(server.log_tail(200).contains("/setup?token=ffs_setup_"), "a fresh install logs a setup link");

    // The first owner, added while the server runs (the server holds the store's lock).
    let (ok, out) = user_add(&server, "Owner@Example.com", true, PASSWORD);
    assert!(ok, "user add with the server running: {out}");
    // The same address in full-width capitals is the same account.
    let (ok, out) = user_add(&server, "ＯＷＮＥＲ@example.com", false, PASSWORD);
    assert!(!ok && out.contains("already exists"), "a look-alike e-mail is refused: {out}");
    let (ok, out) = user_add(&server, "someone@example.com", false, "password1");
    assert!(!ok && out.contains("common"), "a common password is refused: {out}");

    // Wrong password and unknown e-mail answer the same.
    let mut owner = Browser::new(api);
    let wrong = owner.post("/api/v1/auth/login", json!({"email": "owner@example.com", "password": "not the password"}));
    let unknown = owner.post("/api/v1/auth/login", json!({"email": "nobody@example.com", "password": PASSWORD}));
    assert_err(wrong.clone(), StatusCode::UNAUTHORIZED, "bad_credentials", "wrong password");
    assert_eq!(wrong, unknown, "wrong e-mail and wrong password look the same");

    let body = owner.login("OWNER@example.com", PASSWORD);
    assert_eq!(body["mfa_required"], json!(false));
    let cookie = owner.last_set_cookie.clone().expect("a session cookie");
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(flag), "cookie has {flag}: {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: no Secure flag: {cookie}");
    // Behind a trusted proxy that says HTTPS, the cookie is Secure.
    let resp = api
        .post("/api/v1/auth/login")
        .header("x-forwarded-proto", "https")
        .json(&json!({"email": "owner@example.com", "password": PASSWORD}))
        .send()
        .unwrap();
    let secure = resp.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    assert!(secure.contains("; Secure"), "{secure}");

    // Projects and data.
    server.create_project("a", "a.example");
    server.create_project("b", "b.example");
    let a_ingest = server.create_key("a", "ingest");
    let b_ingest = server.create_key("b", "ingest");
    server.ingest_ok(&a_ingest, &(0..3).map(|i| pageview("a", &format!("https://a.example/{i}"))).collect::<Vec<_>>());
    server.ingest_ok(&b_ingest, &(0..5).map(|i| pageview("b", &format!("https://b.example/{i}"))).collect::<Vec<_>>());
    let (status, me) = owner.get("/api/v1/auth/me");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["projects"], json!([{"id": "a", "role": "owner"}, {"id": "b", "role": "owner"}]), "{me}");

    // CSRF: a cookie request that changes state needs the token.
    let no_csrf = owner.request(Method::POST, "/api/v1/projects/a/share-links", Some(json!({})), false);
    assert_err(no_csrf, StatusCode::FORBIDDEN, "csrf", "no CSRF token");
    let saved = owner.csrf.replace("0".repeat(48));
    assert_err(owner.post("/api/v1/projects/a/share-links", json!({})), StatusCode::FORBIDDEN, "csrf", "wrong token");
    owner.csrf = saved;
    // Bearer requests need none.
    assert_eq!(api.get("/api/v1/projects").bearer_auth(server.admin()).send().unwrap().status(), StatusCode::OK);

    // Invite a viewer to project a; the link signs the new user in.
    let (status, inv) =
        owner.post("/api/v1/projects/a/invitations", json!({"email": "Viewer@Example.com", "role": "viewer"}));
    assert_eq!(status, StatusCode::CREATED, "{inv}");
    let token = inv["token"].as_str().unwrap().to_string();
    assert!(inv["url"].as_str().unwrap().ends_with(&token) && inv["expires_at"].is_string(), "{inv}");
    let mut viewer = Browser::new(api);
    let (status, accepted) = viewer.post(&format!("/api/v1/invitations/{token}/accept"), json!({"password": PASSWORD}));
    assert_eq!(status, StatusCode::OK, "{accepted}");
    viewer.refresh_csrf();
    let (_, vme) = viewer.get("/api/v1/auth/me");
    assert_eq!(vme["email"], "viewer@example.com");
    assert_eq!(vme["projects"], json!([{"id": "a", "role": "viewer"}]));
    // The token is used up.
    let mut other = Browser::new(api);
    assert_err(
        other.post(&format!("/api/v1/invitations/{token}/accept"), json!({"password": PASSWORD})),
        StatusCode::NOT_FOUND,
        "not_found",
        "reused invitation",
    );

    // SQL: the viewer reads project a only.
    let (status, rows) = viewer.sql("SELECT count(*) AS c FROM events");
    assert_eq!(status, StatusCode::OK, "{rows}");
    assert_eq!(count_rows(&rows), 3);
    assert_eq!(count_rows(&viewer.sql("SELECT count(*) AS c FROM events WHERE project_id = 'b'").1), 0);
    assert_eq!(count_rows(&viewer.sql("SELECT count(*) AS c FROM pageviews").1), 3);
    assert_eq!(count_rows(&owner.sql("SELECT count(*) AS c FROM events").1), 8);
    // The viewer owns nothing: an empty audit_log. The owner's has the viewer's arrival.
    assert_eq!(count_rows(&viewer.sql("SELECT count(*) AS c FROM audit_log").1), 0);
    let (status, rows) = owner.sql("SELECT action FROM audit_log WHERE project_id = 'a' ORDER BY seq");
    assert_eq!(status, StatusCode::OK, "{rows}");
    let actions: Vec<&str> = rows.as_array().unwrap().iter().filter_map(|r| r["action"].as_str()).collect();
    assert!(actions.contains(&"member_invited") && actions.contains(&"member_added"), "{actions:?}");
    let (_, cols) = owner.sql("SELECT * FROM audit_log LIMIT 1");
    let text = cols.to_string();
    assert!(!text.contains("password_hash") && !text.contains("127.0.0.1") && !text.contains(HOME), "{text}");

    // The viewer is refused every admin action (403), and another project (403).
    let refused: Vec<(Method, &str, Option<Value>)> = vec![
        (Method::POST, "/api/v1/projects/a/keys", Some(json!({"scope": "query"}))),
        (Method::GET, "/api/v1/projects/a/keys", None),
        (Method::GET, "/api/v1/projects/a/members", None),
        (Method::POST, "/api/v1/projects/a/invitations", Some(json!({"email": "x@example.com", "role": "viewer"}))),
        (Method::POST, "/api/v1/projects/a/share-links", Some(json!({}))),
        (Method::PATCH, "/api/v1/projects/a/settings", Some(json!({"privacy_threshold": 2}))),
        (Method::GET, "/api/v1/projects/a/audit-log", None),
        (Method::GET, "/api/v1/projects/b/settings", None),
        (Method::POST, "/api/v1/projects", Some(json!({"id": "c", "domain": "c.example"}))),
        (Method::POST, "/api/v1/admin/flush", None),
        (Method::POST, "/api/v1/events", Some(json!([pageview("a", "https://a.example/x")]))),
    ];
    for (method, path, body) in refused {
        let (status, err) = viewer.request(method.clone(), path, body, true);
        assert_eq!(status, StatusCode::FORBIDDEN, "viewer {method} {path}: {err}");
        assert_error_body(&err, None);
    }
    let (status, settings) = viewer.get("/api/v1/projects/a/settings");
    assert_eq!((status, settings["privacy_threshold"].as_i64()), (StatusCode::OK, Some(5)));

    // Keys: made by a signed-in admin, listed without the secret, revocable.
    let (status, key) = owner.post("/api/v1/projects/a/keys", json!({"scope": "query", "name": "reporting"}));
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let key_token = key["token"].as_str().unwrap().to_string();
    let key_id = key["id"].as_str().unwrap().to_string();
    assert_eq!(server.count(&key_token, "events"), 3);
    let (_, listed) = owner.get("/api/v1/projects/a/keys");
    let entry = listed["keys"].as_array().unwrap().iter().find(|k| k["id"] == key_id.as_str()).expect("listed").clone();
    assert_eq!(entry["name"], "reporting");
    assert!(entry["last_used_at"].is_string(), "{entry}");
    assert!(!listed.to_string().contains(&key_token), "no secret in the list");
    assert_eq!(owner.delete(&format!("/api/v1/projects/a/keys/{key_id}")).0, StatusCode::NO_CONTENT);
    assert_eq!(server.sql_request(&key_token, "SELECT 1", "json").status(), StatusCode::UNAUTHORIZED);
    assert_eq!(owner.delete(&format!("/api/v1/projects/a/keys/{key_id}")).0, StatusCode::NOT_FOUND);
    let (status, _) = owner.post("/api/v1/projects/a/keys", json!({"scope": "superuser"}));
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Sessions: list, revoke another one (effective on its next request).
    let mut laptop = Browser::new(api);
    laptop.login("owner@example.com", PASSWORD);
    let (_, sessions) = owner.get("/api/v1/auth/sessions");
    let list = sessions["sessions"].as_array().unwrap();
    assert!(list.len() >= 2, "{sessions}");
    let (_, laptop_me) = laptop.get("/api/v1/auth/me");
    let laptop_id = laptop_me["session_id"].as_str().unwrap().to_string();
    assert_eq!(owner.delete(&format!("/api/v1/auth/sessions/{laptop_id}")).0, StatusCode::NO_CONTENT);
    assert_err(laptop.get("/api/v1/auth/me"), StatusCode::UNAUTHORIZED, "not_signed_in", "revoked session");

    // A password change ends every other session.
    let mut phone = Browser::new(api);
    phone.login("owner@example.com", PASSWORD);
    let new_password = "a much better passphrase";
    let (status, changed) =
        owner.post("/api/v1/auth/password", json!({"current_password": PASSWORD, "new_password": new_password}));
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert!(changed["other_sessions_ended"].as_u64().unwrap() >= 1);
    assert_eq!(phone.get("/api/v1/auth/me").0, StatusCode::UNAUTHORIZED);
    assert_eq!(owner.get("/api/v1/auth/me").0, StatusCode::OK);

    // Logout ends the session.
    let mut spare = Browser::new(api);
    spare.login("owner@example.com", new_password);
    let (status, _) = spare.post("/api/v1/auth/logout", json!({}));
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(spare.last_set_cookie.as_deref().unwrap_or("").contains("Max-Age=0"));
    assert_eq!(spare.get("/api/v1/auth/me").0, StatusCode::UNAUTHORIZED);

    // The audit log recorded it all.
    let actions = audit_actions(&mut owner, "a");
    for expected in ["member_invited", "member_added", "key_created", "key_revoked"] {
        assert!(actions.iter().any(|a| a == expected), "{expected} in {actions:?}");
    }
    let (_, all) =
        api.get("/api/v1/audit-log").bearer_auth(server.admin()).send().map(json_body).map(|b| (0, b)).unwrap();
    let all: Vec<&str> = all["entries"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    for expected in ["user_created", "login", "login_failed", "session_revoked", "password_changed", "logout"] {
        assert!(all.contains(&expected), "{expected} in {all:?}");
    }
}

fn now_step() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() / 30
}

/// A code for a step after `last` that the server accepts now (waiting for the clock if the
/// next one is still two steps ahead).
fn fresh_code(totp: &TOTP, last: &mut u64) -> String {
    loop {
        let now = now_step();
        let step = (*last + 1).max(now);
        if step <= now + 1 {
            *last = step;
            return totp.generate(step * 30);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn totp_sign_in_recovery_codes_and_replay() {
    // Wrong codes below count towards the lock; this test is not about the lock.
    let server = Server::start(opts().arg("--login-lock-after").arg("50"));
    let api = server.api();
    assert!(user_add(&server, "mfa@example.com", false, PASSWORD).0);
    assert!(user_add(&server, "other@example.com", false, PASSWORD).0);
    let mut b = Browser::new(api);
    b.login("mfa@example.com", PASSWORD);

    let (status, enrol) = b.post("/api/v1/auth/totp/enrol", json!({}));
    assert_eq!(status, StatusCode::OK, "{enrol}");
    let secret = enrol["secret"].as_str().unwrap().to_string();
    assert!(enrol["otpauth_uri"].as_str().unwrap().starts_with("otpauth://totp/Footfall:"));
    assert!(enrol["qr_svg"].as_str().unwrap().contains("<svg"));
    let totp = TOTP::new(Algorithm::SHA1, 6, 1, 30, Secret::Encoded(secret).to_bytes().unwrap()).unwrap();
    assert_err(
        b.post("/api/v1/auth/totp/confirm", json!({"code": "000000"})),
        StatusCode::UNAUTHORIZED,
        "wrong_code",
        "bad confirm",
    );
    let mut last = 0u64;
    let first = fresh_code(&totp, &mut last);
    let (status, confirmed) = b.post("/api/v1/auth/totp/confirm", json!({"code": first}));
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    let codes: Vec<String> =
        confirmed["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
    assert_eq!(codes.len(), 10);
    let (_, me) = b.get("/api/v1/auth/me");
    assert_eq!(me["totp_enabled"], json!(true));

    // Sign-in now stops half-way: the pending session is good for /auth/totp only.
    let mut c = Browser::new(api);
    let body = c.login("mfa@example.com", PASSWORD);
    assert_eq!(body["mfa_required"], json!(true));
    assert!(c.cookie.is_some(), "a pending session cookie");
    assert_err(c.get("/api/v1/auth/me"), StatusCode::UNAUTHORIZED, "mfa_required", "pending session on /me");
    assert_eq!(c.sql("SELECT 1").0, StatusCode::UNAUTHORIZED);
    // The code used to confirm is refused: a code works once.
    assert_err(c.post("/api/v1/auth/totp", json!({"code": first})), StatusCode::UNAUTHORIZED, "wrong_code", "replay");
    // Another user's code (their secret is not this one) fails too: any other 6 digits do.
    let stranger = TOTP::new(Algorithm::SHA1, 6, 1, 30, b"another users secret 20b".to_vec()).unwrap();
    let foreign = stranger.generate(now_step() * 30);
    if foreign != totp.generate(now_step() * 30) {
        assert_eq!(c.post("/api/v1/auth/totp", json!({"code": foreign})).0, StatusCode::UNAUTHORIZED);
    }
    let code = fresh_code(&totp, &mut last);
    let (status, done) = c.post("/api/v1/auth/totp", json!({"code": code}));
    assert_eq!(status, StatusCode::OK, "{done}");
    c.refresh_csrf();
    assert_eq!(c.get("/api/v1/auth/me").1["email"], "mfa@example.com");
    // That same code cannot complete a second sign-in.
    let mut d = Browser::new(api);
    d.login("mfa@example.com", PASSWORD);
    assert_eq!(d.post("/api/v1/auth/totp", json!({"code": code})).0, StatusCode::UNAUTHORIZED);

    // A recovery code works once.
    let (status, _) = d.post("/api/v1/auth/totp", json!({"code": codes[0].to_lowercase()}));
    assert_eq!(status, StatusCode::OK);
    let mut e = Browser::new(api);
    e.login("mfa@example.com", PASSWORD);
    assert_err(
        e.post("/api/v1/auth/totp", json!({"code": codes[0]})),
        StatusCode::UNAUTHORIZED,
        "wrong_code",
        "reused recovery code",
    );
    assert_eq!(e.post("/api/v1/auth/totp", json!({"code": codes[1]})).0, StatusCode::OK);

    // Regenerated codes replace the old ones.
    e.refresh_csrf();
    let code = fresh_code(&totp, &mut last);
    let (status, regen) = e.post("/api/v1/auth/totp/recovery-codes", json!({"code": code}));
    assert_eq!(status, StatusCode::OK, "{regen}");
    let mut f = Browser::new(api);
    f.login("mfa@example.com", PASSWORD);
    assert_eq!(f.post("/api/v1/auth/totp", json!({"code": codes[2]})).0, StatusCode::UNAUTHORIZED);
    assert_eq!(f.post("/api/v1/auth/totp", json!({"code": regen["recovery_codes"][0]})).0, StatusCode::OK);

    // Disabling needs the password and a current code.
    f.refresh_csrf();
    let code = fresh_code(&totp, &mut last);
    assert_err(
        f.post("/api/v1/auth/totp/disable", json!({"password": "wrong password!", "code": code})),
        StatusCode::UNAUTHORIZED,
        "bad_credentials",
        "disable with a wrong password",
    );
    let (status, body) = f.post("/api/v1/auth/totp/disable", json!({"password": PASSWORD, "code": code}));
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let mut g = Browser::new(api);
    assert_eq!(g.login("mfa@example.com", PASSWORD)["mfa_required"], json!(false));

    let (status, log) =
        api.get("/api/v1/audit-log").bearer_auth(server.admin()).send().map(|r| (r.status(), json_body(r))).unwrap();
    assert_eq!(status, StatusCode::OK);
    let actions: Vec<&str> = log["entries"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    for expected in ["mfa_enabled", "mfa_failed", "recovery_codes_regenerated", "mfa_disabled"] {
        assert!(actions.contains(&expected), "{expected} in {actions:?}");
    }
    let text = log.to_string();
    assert!(!text.contains(&codes[3]) && !text.contains(PASSWORD), "no secrets in the audit log");
    assert!(!server.log_tail(500).contains(PASSWORD), "no password in the server log");
}

#[test]
fn lockout_expires_and_never_locks_out_the_known_address() {
    let server = Server::start(
        opts().arg("--login-lock-after").arg("3").arg("--login-lock-delay").arg("2s").arg("--login-lock-max").arg("3s"),
    );
    let api = server.api();
    assert!(user_add(&server, "owner@example.com", true, PASSWORD).0);
    server.create_project("a", "a.example");
    let mut home = Browser::new(api);
    home.login("owner@example.com", PASSWORD);

    let mut attacker = Browser::new(api).at(ATTACKER);
    for _ in 0..3 {
        let r =
            attacker.post("/api/v1/auth/login", json!({"email": "owner@example.com", "password": "guess guess guess"}));
        assert_eq!(r.0, StatusCode::UNAUTHORIZED, "{}", r.1);
    }
    // Locked: even the right password is refused from elsewhere, with Retry-After.
    let resp = api
        .post("/api/v1/auth/login")
        .header("x-forwarded-for", ATTACKER)
        .json(&json!({"email": "owner@example.com", "password": PASSWORD}))
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = resp.headers().get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=3).contains(&retry), "{retry}");
    assert_error_body(&json_body(resp), Some("account_locked"));
    // An unknown e-mail locks the same way: the lock reveals nothing.
    for _ in 0..3 {
        attacker.post("/api/v1/auth/login", json!({"email": "ghost@example.com", "password": "guess guess guess"}));
    }
    let r = attacker.post("/api/v1/auth/login", json!({"email": "ghost@example.com", "password": PASSWORD}));
    assert_err(r, StatusCode::TOO_MANY_REQUESTS, "account_locked", "unknown e-mail locked too");

    // The owner sees the lock, and still signs in from the address they used before.
    let mut again = Browser::new(api);
    again.login("owner@example.com", PASSWORD);
    let (status, _) = home.post("/api/v1/projects/a/invitations", json!({"email": "m@example.com", "role": "admin"}));
    assert_eq!(status, StatusCode::CREATED);

    // The lock ends on its own.
    std::thread::sleep(Duration::from_millis(2200));
    let r = attacker.post("/api/v1/auth/login", json!({"email": "owner@example.com", "password": PASSWORD}));
    assert_eq!(r.0, StatusCode::OK, "{}", r.1);
    let (_, log) = api.get("/api/v1/audit-log").bearer_auth(server.admin()).send().map(|r| (0, json_body(r))).unwrap();
    let text = log.to_string();
    assert!(text.contains("login_refused_locked") && text.contains("account locked for 2 s"), "{text}");
    assert!(!text.contains(ATTACKER), "addresses are stored hashed");
}

#[test]
fn members_see_locks_and_rate_limit_answers_429() {
    let server =
        Server::start(opts_with_rate_limit(3).arg("--login-lock-after").arg("2").arg("--login-lock-delay").arg("30s"));
    let api = server.api();
    assert!(user_add(&server, "owner@example.com", true, PASSWORD).0);
    assert!(user_add(&server, "member@example.com", false, PASSWORD).0);
    server.create_project("a", "a.example");
    let mut owner = Browser::new(api);
    owner.login("owner@example.com", PASSWORD);
    let (status, inv) =
        owner.post("/api/v1/projects/a/invitations", json!({"email": "member@example.com", "role": "viewer"}));
    assert_eq!(status, StatusCode::CREATED);
    let mut member = Browser::new(api).at("192.0.2.50");
    member.login("member@example.com", PASSWORD);
    let (status, body) =
        member.post(&format!("/api/v1/invitations/{}/accept", inv["token"].as_str().unwrap()), json!({}));
    assert_eq!(status, StatusCode::OK, "{body}");

    let mut attacker = Browser::new(api).at(ATTACKER);
    for _ in 0..2 {
        attacker.post("/api/v1/auth/login", json!({"email": "member@example.com", "password": "guess guess guess"}));
    }
    let (_, members) = owner.get("/api/v1/projects/a/members");
    let m = members["members"].as_array().unwrap().iter().find(|m| m["email"] == "member@example.com").unwrap().clone();
    assert!(m["locked_for_secs"].as_u64().is_some_and(|s| s > 0), "{members}");

    // The address's bucket of 3 a minute is used up: 429 with Retry-After.
    attacker.post("/api/v1/auth/login", json!({"email": "y@example.com", "password": PASSWORD}));
    let resp = api
        .post("/api/v1/auth/login")
        .header("x-forwarded-for", ATTACKER)
        .json(&json!({"email": "x@example.com", "password": PASSWORD}))
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().get("retry-after").is_some());
    assert_error_body(&json_body(resp), Some("rate_limited"));
}

#[test]
fn share_links_are_read_only() {
    let server = Server::start(opts());
    let api = server.api();
    assert!(user_add(&server, "owner@example.com", true, PASSWORD).0);
    server.create_project("a", "a.example");
    let mut owner = Browser::new(api);
    owner.login("owner@example.com", PASSWORD);

    let (status, link) = owner.post("/api/v1/projects/a/share-links", json!({}));
    assert_eq!(status, StatusCode::CREATED, "{link}");
    let token = link["token"].as_str().unwrap().to_string();
    assert!(link["url"].as_str().unwrap().ends_with(&token) && link["id"].is_string());
    let shared = api.get("/api/v1/shared").bearer_auth(&token).send().map(json_body).unwrap();
    assert_eq!((shared["project"].as_str(), shared["privacy_threshold"].as_i64()), (Some("a"), Some(5)));
    // k is set per project by an admin.
    assert_eq!(
        owner.request(Method::PATCH, "/api/v1/projects/a/settings", Some(json!({"privacy_threshold": 10})), true).0,
        StatusCode::OK
    );
    let shared = api.get("/api/v1/shared").bearer_auth(&token).send().map(json_body).unwrap();
    assert_eq!(shared["privacy_threshold"].as_i64(), Some(10));

    // Never SQL, never anything that changes state.
    let r = server.sql_request(&token, "SELECT count(*) FROM events", "json");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    for (method, path, body) in [
        (Method::POST, "/api/v1/projects/a/keys", json!({"scope": "query"})),
        (Method::POST, "/api/v1/projects/a/share-links", json!({})),
        (Method::GET, "/api/v1/projects/a/members", json!(null)),
        (Method::GET, "/api/v1/projects", json!(null)),
        (Method::POST, "/api/v1/events", json!([pageview("a", "https://a.example/")])),
        (Method::POST, "/api/v1/admin/compact", json!(null)),
    ] {
        let resp = api.client().request(method.clone(), api.url(path)).bearer_auth(&token).json(&body).send().unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "share token {method} {path}");
    }

    // A password-protected link needs its password.
    let (_, locked) = owner.post("/api/v1/projects/a/share-links", json!({"password": "shared secret 123"}));
    let locked_token = locked["token"].as_str().unwrap();
    let r = api.get("/api/v1/shared").bearer_auth(locked_token).send().unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_error_body(&json_body(r), Some("share_password_required"));
    let r = api.get("/api/v1/shared").bearer_auth(locked_token).header("x-share-password", "nope").send().unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = api
        .get("/api/v1/shared")
        .bearer_auth(locked_token)
        .header("x-share-password", "shared secret 123")
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Listed without tokens, revocable.
    let (_, list) = owner.get("/api/v1/projects/a/share-links");
    assert_eq!(list["share_links"].as_array().unwrap().len(), 2);
    assert!(!list.to_string().contains(&token));
    let id = link["id"].as_str().unwrap();
    assert_eq!(owner.delete(&format!("/api/v1/projects/a/share-links/{id}")).0, StatusCode::NO_CONTENT);
    assert_eq!(api.get("/api/v1/shared").bearer_auth(&token).send().unwrap().status(), StatusCode::UNAUTHORIZED);
    let actions = audit_actions(&mut owner, "a");
    assert!(actions.iter().any(|a| a == "share_link_created") && actions.iter().any(|a| a == "share_link_revoked"));
}

#[test]
fn invitations_expire_mfa_requirement_and_bad_input() {
    let server = Server::start(opts().arg("--invitation-ttl").arg("3s"));
    let api = server.api();
    assert!(user_add(&server, "owner@example.com", true, PASSWORD).0);
    server.create_project("a", "a.example");
    let mut owner = Browser::new(api);
    owner.login("owner@example.com", PASSWORD);

    // An expired invitation is refused and creates nobody.
    let (_, inv) = owner.post("/api/v1/projects/a/invitations", json!({"email": "late@example.com", "role": "viewer"}));
    std::thread::sleep(Duration::from_millis(3300));
    let mut late = Browser::new(api);
    let r = late
        .post(&format!("/api/v1/invitations/{}/accept", inv["token"].as_str().unwrap()), json!({"password": PASSWORD}));
    assert_err(r, StatusCode::GONE, "expired", "expired invitation");
    let r = late.post("/api/v1/auth/login", json!({"email": "late@example.com", "password": PASSWORD}));
    assert_eq!(r.0, StatusCode::UNAUTHORIZED, "no half-made account");

    // The owner requires two-factor: a new member without it may only enrol.
    assert_eq!(
        owner.request(Method::PATCH, "/api/v1/projects/a/settings", Some(json!({"require_mfa": true})), true).0,
        StatusCode::OK
    );
    let (_, inv) = owner.post("/api/v1/projects/a/invitations", json!({"email": "new@example.com", "role": "viewer"}));
    let mut newbie = Browser::new(api);
    let (status, _) = newbie
        .post(&format!("/api/v1/invitations/{}/accept", inv["token"].as_str().unwrap()), json!({"password": PASSWORD}));
    assert_eq!(status, StatusCode::OK);
    newbie.refresh_csrf();
    let (_, me) = newbie.get("/api/v1/auth/me");
    assert_eq!(me["enrol_required"], json!(true));
    assert_err(newbie.sql("SELECT 1"), StatusCode::FORBIDDEN, "mfa_enrolment_required", "enrol-only session on SQL");
    let (status, enrol) = newbie.post("/api/v1/auth/totp/enrol", json!({}));
    assert_eq!(status, StatusCode::OK);
    let totp = TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        30,
        Secret::Encoded(enrol["secret"].as_str().unwrap().into()).to_bytes().unwrap(),
    )
    .unwrap();
    let (status, _) = newbie.post("/api/v1/auth/totp/confirm", json!({"code": totp.generate(now_step() * 30)}));
    assert_eq!(status, StatusCode::OK);
    newbie.refresh_csrf();
    assert_eq!(newbie.sql("SELECT 1 AS one").0, StatusCode::OK);

    // Bad input: clear 4xx, never a 500.
    let mut b = Browser::new(api);
    let cases = [
        (json!({"email": "a".repeat(300) + "@example.com", "password": PASSWORD}), "invalid_email"),
        (json!({"email": "not-an-email", "password": PASSWORD}), "invalid_email"),
        (json!({"email": "owner@example.com", "password": "x".repeat(5000)}), "password_too_long"),
        (json!({"email": "owner@example.com"}), "invalid_json"),
        (json!({"email": "owner@example.com", "password": PASSWORD, "extra": 1}), "invalid_json"),
    ];
    for (body, code) in cases {
        let r = b.post("/api/v1/auth/login", body.clone());
        assert_err(r, StatusCode::BAD_REQUEST, code, &body.to_string()[..60.min(body.to_string().len())]);
    }
    let r = api.post("/api/v1/auth/login").header("content-type", "text/plain").body("email=x").send().unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // A look-alike of an existing e-mail cannot be invited as someone new.
    let (_, inv) =
        owner.post("/api/v1/projects/a/invitations", json!({"email": "ＯＷＮＥＲ@example.com", "role": "viewer"}));
    let r = b
        .post(&format!("/api/v1/invitations/{}/accept", inv["token"].as_str().unwrap()), json!({"password": PASSWORD}));
    assert_err(r, StatusCode::CONFLICT, "conflict", "look-alike e-mail");
    let r = b.post("/api/v1/invitations/ffs_inv_nothing/accept", json!({"password": PASSWORD}));
    assert_err(r, StatusCode::NOT_FOUND, "not_found", "unknown invitation");
    let r = owner.post("/api/v1/projects/a/invitations", json!({"email": "x@example.com", "role": "god"}));
    assert_eq!(r.0, StatusCode::BAD_REQUEST);
    let r = owner.post("/api/v1/projects/a/invitations", json!({"email": "\u{430}dmin@example.com", "role": "viewer"}));
    assert_err(r, StatusCode::BAD_REQUEST, "invalid_email", "mixed-script e-mail");
    assert!(!server.log_tail(1000).contains("request failed"), "no 500s");
}

#[test]
fn user_add_without_a_running_server() {
    let mut server = Server::start(opts());
    server.stop();
    let (ok, out) = user_add(&server, "offline@example.com", true, PASSWORD);
    assert!(ok, "user add with the server stopped: {out}");
    let (ok, out) = user_add(&server, "Offline@Example.com", false, PASSWORD);
    assert!(!ok && out.contains("already exists"), "{out}");
    server.restart();
    let mut b = Browser::new(server.api());
    b.login("offline@example.com", PASSWORD);
    let (_, me) = b.get("/api/v1/auth/me");
    assert_eq!(me["instance_owner"], json!(true));
    // With a user present, the restart offered no setup link.
    let log = server.log_tail(400);
    let last_start = log.rsplit("=== start").next().unwrap_or("");
    assert!(!last_start.contains("setup?token="), "{last_start}");
}
