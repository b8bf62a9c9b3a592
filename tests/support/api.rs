//! HTTP helpers over Footfall's interface.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::util::value_i64;

pub const ERROR_CODE_UNAUTHORIZED: &str = "unauthorized";
pub const ERROR_CODE_FORBIDDEN: &str = "forbidden";

/// A cheap, cloneable, thread-safe handle on one server process.
#[derive(Clone, Debug)]
pub struct Api {
    base: String,
    admin_token: String,
    client: Client,
}

/// The body of a 200 from `POST /api/v1/events`.
#[derive(Clone, Debug, PartialEq)]
pub struct IngestOutcome {
    pub accepted: u64,
    /// `(index, error message)` of every rejected event.
    pub rejected: Vec<(u64, String)>,
}

impl IngestOutcome {
    pub fn from_body(body: &Value) -> Self {
        let accepted =
            u64::try_from(value_i64(&body["accepted"])).unwrap_or_else(|_| panic!("negative `accepted` in {body}"));
        let rejected = match &body["rejected"] {
            Value::Null => Vec::new(),
            Value::Array(items) => items
                .iter()
                .map(|r| {
                    let index =
                        u64::try_from(value_i64(&r["index"])).unwrap_or_else(|_| panic!("negative index in {r}"));
                    let error = r["error"].as_str().unwrap_or_default().to_string();
                    (index, error)
                })
                .collect(),
            other => panic!("`rejected` is not an array: {other}"),
        };
        Self { accepted, rejected }
    }

    pub fn rejected_indices(&self) -> Vec<u64> {
        self.rejected.iter().map(|(i, _)| *i).collect()
    }
}

/// An HTTP response read off a raw socket by [`Api::post_raw`].
#[derive(Clone, Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Parses `head` (status line + headers, without the blank line).
    fn parse_head(head: &[u8]) -> std::io::Result<(u16, Vec<(String, String)>)> {
        let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
        let text = std::str::from_utf8(head).map_err(|_| bad("non-UTF-8 response head"))?;
        let mut lines = text.split("\r\n");
        let status_line = lines.next().ok_or_else(|| bad("empty response"))?;
        let status =
            status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad("bad status line"))?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Ok((status, headers))
    }
}

/// Decodes a chunked body (best effort: stops at the first malformed chunk).
fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = find(data, b"\r\n") {
        let size = std::str::from_utf8(&data[..line_end])
            .ok()
            .and_then(|l| usize::from_str_radix(l.split(';').next().unwrap_or("").trim(), 16).ok());
        let Some(size) = size else { break };
        let start = line_end + 2;
        if size == 0 || data.len() < start + size {
            break;
        }
        out.extend_from_slice(&data[start..start + size]);
        data = data.get(start + size + 2..).unwrap_or(&[]);
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads a response body as JSON, panicking with the raw text if it is not.
pub fn json_body(resp: Response) -> Value {
    let status = resp.status();
    let text = resp.text().expect("read the response body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("response ({status}) is not JSON ({e}): {text:.2000}"))
}

/// Asserts the documented error shape `{"error":{"code":"…","message":"…"}}`
/// (and the code, when given).
pub fn assert_error_body(body: &Value, code: Option<&str>) {
    let err = &body["error"];
    let got_code = err["code"].as_str().unwrap_or_else(|| panic!("error body lacks a string error.code: {body}"));
    assert!(!got_code.is_empty(), "empty error.code: {body}");
    assert!(err["message"].is_string(), "error body lacks a string error.message: {body}");
    if let Some(code) = code {
        assert_eq!(got_code, code, "unexpected error code in {body}");
    }
}

impl Api {
    pub fn new(base: String, admin_token: String) -> Self {
        let client = Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("build the HTTP client");
        Self { base, admin_token, client }
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The admin token.
    pub fn admin(&self) -> &str {
        &self.admin_token
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.client.get(self.url(path))
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.client.post(self.url(path))
    }

    /// Status of `GET /healthz`.
    pub fn healthz(&self) -> StatusCode {
        self.get("/healthz").send().expect("GET /healthz: the server did not answer").status()
    }

    /// Panics unless `/healthz` answers 200.
    pub fn assert_healthy(&self) {
        assert_eq!(self.healthz(), StatusCode::OK, "GET /healthz");
    }

    /// `POST /api/v1/projects` (timezone UTC) → asserts 201, returns the body.
    pub fn create_project(&self, id: &str, domain: &str) -> Value {
        let resp = self
            .post("/api/v1/projects")
            .bearer_auth(&self.admin_token)
            .json(&json!({"id": id, "domain": domain, "timezone": "UTC"}))
            .send()
            .expect("POST /api/v1/projects");
        let status = resp.status();
        let body = json_body(resp);
        assert_eq!(status, StatusCode::CREATED, "create project {id}: unexpected status, body {body}");
        body
    }

    /// `POST /api/v1/projects/{id}/keys` → asserts 201, returns the token.
    pub fn create_key(&self, project: &str, scope: &str) -> String {
        let resp = self
            .post(&format!("/api/v1/projects/{project}/keys"))
            .bearer_auth(&self.admin_token)
            .json(&json!({"scope": scope}))
            .send()
            .expect("POST /api/v1/projects/{id}/keys");
        let status = resp.status();
        let body = json_body(resp);
        assert_eq!(status, StatusCode::CREATED, "create {scope} key for {project}: unexpected status, body {body}");
        body["token"].as_str().unwrap_or_else(|| panic!("no string `token` in {body}")).to_string()
    }

    /// `POST /api/v1/events` with a JSON array; the transport error is
    /// returned (used while the server gets killed).
    pub fn try_ingest(&self, token: &str, events: &[Value]) -> reqwest::Result<Response> {
        self.post("/api/v1/events").bearer_auth(token).json(&events).send()
    }

    /// `POST /api/v1/events` with a JSON array.
    pub fn ingest(&self, token: &str, events: &[Value]) -> Response {
        self.try_ingest(token, events).expect("POST /api/v1/events: the server did not answer")
    }

    /// `POST /api/v1/events` with NDJSON (`application/x-ndjson`).
    pub fn ingest_ndjson(&self, token: &str, events: &[Value]) -> Response {
        let mut body = String::new();
        for e in events {
            body.push_str(&e.to_string());
            body.push('\n');
        }
        self.post("/api/v1/events")
            .bearer_auth(token)
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .expect("POST /api/v1/events (NDJSON): the server did not answer")
    }

    /// `POST /api/v1/events` with raw bytes and a content type.
    pub fn ingest_raw(&self, token: &str, content_type: &str, body: Vec<u8>) -> Response {
        self.post("/api/v1/events")
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .expect("POST /api/v1/events (raw): the server did not answer")
    }

    /// Asserts 200 and parses the outcome.
    pub fn ingest_outcome(&self, token: &str, events: &[Value]) -> IngestOutcome {
        let resp = self.ingest(token, events);
        let status = resp.status();
        let body = json_body(resp);
        assert_eq!(status, StatusCode::OK, "ingest: unexpected status, body {body}");
        IngestOutcome::from_body(&body)
    }

    /// Asserts 200 with every event accepted.
    pub fn ingest_ok(&self, token: &str, events: &[Value]) {
        let outcome = self.ingest_outcome(token, events);
        assert_eq!(
            outcome,
            IngestOutcome { accepted: events.len() as u64, rejected: Vec::new() },
            "ingest: expected every event accepted"
        );
    }

    /// `POST /api/v1/sql` with `{"sql", "format"}`.
    pub fn sql_request(&self, token: &str, sql: &str, format: &str) -> Response {
        self.post("/api/v1/sql")
            .bearer_auth(token)
            .json(&json!({"sql": sql, "format": format}))
            .send()
            .expect("POST /api/v1/sql: the server did not answer")
    }

    /// Runs a query (JSON format), asserts 200, returns the rows and the
    /// `x-footfall-files-scanned` header.
    pub fn sql_with_files(&self, token: &str, sql: &str) -> (Vec<Value>, Option<u64>) {
        let resp = self.sql_request(token, sql, "json");
        let status = resp.status();
        let files = resp.headers().get("x-footfall-files-scanned").map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .unwrap_or_else(|| panic!("bad x-footfall-files-scanned header {v:?}"))
        });
        let body = json_body(resp);
        assert_eq!(status, StatusCode::OK, "query failed: {sql}\nbody: {body}");
        match body {
            Value::Array(rows) => (rows, files),
            other => panic!("query result is not a JSON array: {sql}\nbody: {other}"),
        }
    }

    /// Runs a query (JSON format), asserts 200, returns the rows.
    pub fn sql(&self, token: &str, sql: &str) -> Vec<Value> {
        self.sql_with_files(token, sql).0
    }

    /// Runs a query that returns exactly one row with one column holding an
    /// integer, and returns it.
    pub fn scalar(&self, token: &str, sql: &str) -> i64 {
        let rows = self.sql(token, sql);
        assert_eq!(rows.len(), 1, "expected one row from {sql}, got {rows:?}");
        let obj = rows[0].as_object().unwrap_or_else(|| panic!("row is not an object: {}", rows[0]));
        assert_eq!(obj.len(), 1, "expected one column from {sql}, got {obj:?}");
        let value = obj.values().next().expect("one column");
        value_i64(value)
    }

    /// `SELECT count(*) FROM <table>`.
    pub fn count(&self, token: &str, table: &str) -> i64 {
        self.scalar(token, &format!("SELECT count(*) AS c FROM {table}"))
    }

    /// `POST /api/v1/admin/flush` → asserts 200, returns `files_written`.
    pub fn flush(&self) -> u64 {
        let resp =
            self.post("/api/v1/admin/flush").bearer_auth(&self.admin_token).send().expect("POST /api/v1/admin/flush");
        let status = resp.status();
        let body = json_body(resp);
        assert_eq!(status, StatusCode::OK, "flush: unexpected status, body {body}");
        u64::try_from(value_i64(&body["files_written"])).unwrap_or_else(|_| panic!("negative files_written in {body}"))
    }

    /// `POST` over a raw socket, reading the answer while the body is still
    /// being written. For bodies the server refuses early (413): it may
    /// answer and close before reading them, which an ordinary client can
    /// report as a broken pipe instead of the answer.
    pub fn post_raw(&self, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> std::io::Result<RawResponse> {
        let addr = self.base.strip_prefix("http://").expect("base URL is http://host:port");
        let mut stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut head =
            format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut writer = stream.try_clone()?;
        let write = thread::spawn(move || {
            // Errors are expected once the server has answered and closed.
            let _ = writer.write_all(head.as_bytes());
            let _ = writer.write_all(&body);
        });

        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        let result = loop {
            let complete = find(&buf, b"\r\n\r\n").and_then(|end| {
                let (_, headers) = RawResponse::parse_head(&buf[..end]).ok()?;
                let len: usize =
                    headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok())?;
                (buf.len() >= end + 4 + len).then_some(())
            });
            if complete.is_some() {
                break Ok(());
            }
            match stream.read(&mut chunk) {
                Ok(0) => break Ok(()),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                // Reset after the answer arrived: keep what we have.
                Err(_) if find(&buf, b"\r\n\r\n").is_some() => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        let _ = stream.shutdown(Shutdown::Both);
        let _ = write.join();
        result?;
        let end = find(&buf, b"\r\n\r\n").ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("no complete response head in {} bytes", buf.len()),
            )
        })?;
        let (status, headers) = RawResponse::parse_head(&buf[..end])?;
        let mut body = buf[end + 4..].to_vec();
        let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
        if chunked {
            body = dechunk(&body);
        }
        Ok(RawResponse { status, headers, body })
    }

    /// `POST /api/event` (Plausible) with a JSON body, a User-Agent and an
    /// optional `X-Forwarded-For`.
    pub fn plausible(&self, body: &Value, user_agent: &str, xff: Option<&str>) -> Response {
        let mut req = self
            .post("/api/event")
            .header("user-agent", user_agent)
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(xff) = xff {
            req = req.header("x-forwarded-for", xff);
        }
        req.send().expect("POST /api/event: the server did not answer")
    }
}
