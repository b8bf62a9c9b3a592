//! A lean HTTP/1.1 keep-alive connection for the beacon load generator.
//!
//! The beacon benchmark runs the load generator on the same two cores as the server. With reqwest
//! the generator spent ≈ 22 µs of CPU per request — as much as the server spent answering it — so
//! the figure measured the pair, not the server. Browsers send beacons from other machines; `wrk`
//! and `h2load` keep their own cost to a write and a read per request, and so does this: the
//! request is written whole with one `write`, the answer parsed in place with `httparse`. One
//! request is in flight per connection at a time (no pipelining), as with a browser.

use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, Error)]
pub enum Http1Error {
    #[error("only http://host:port addresses are supported, not {0:?}")]
    UnsupportedAddress(String),
    #[error("connecting to {address}: {source}")]
    Connect { address: String, source: std::io::Error },
    #[error("sending the request: {0}")]
    Write(std::io::Error),
    #[error("reading the answer: {0}")]
    Read(std::io::Error),
    #[error("the server closed the connection before answering in full")]
    ClosedEarly,
    #[error("the answer's head is not valid HTTP/1.1: {0}")]
    BadHead(httparse::Error),
    #[error("the answer's head is larger than {0} bytes")]
    HeadTooLarge(usize),
    #[error("the answer uses transfer-encoding {0:?}; only content-length bodies are supported")]
    UnsupportedTransferEncoding(String),
}

/// What the benchmark needs from an answer.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }

    /// `Retry-After` in seconds, else one second.
    pub fn retry_after(&self) -> Duration {
        self.header("retry-after")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map_or(Duration::from_secs(1), Duration::from_secs_f64)
    }
}

const MAX_HEAD: usize = 16 * 1024;

/// One keep-alive connection; reconnects when the server closes it.
pub struct Connection {
    address: String,
    host_header: String,
    stream: Option<TcpStream>,
    request: Vec<u8>,
    read: Vec<u8>,
}

impl Connection {
    /// `base` is `http://host:port`, as the benchmark's server handle gives it.
    pub fn new(base: &str) -> Result<Self, Http1Error> {
        let authority = base
            .strip_prefix("http://")
            .map(|a| a.trim_end_matches('/'))
            .filter(|a| !a.is_empty() && !a.contains('/'))
            .ok_or_else(|| Http1Error::UnsupportedAddress(base.to_string()))?;
        Ok(Connection {
            address: authority.to_string(),
            host_header: authority.to_string(),
            stream: None,
            request: Vec::with_capacity(2048),
            read: Vec::with_capacity(4096),
        })
    }

    /// Sends `POST path` with the given headers and body and reads the whole answer.
    pub async fn post(&mut self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Answer, Http1Error> {
        self.request.clear();
        self.request.extend_from_slice(b"POST ");
        self.request.extend_from_slice(path.as_bytes());
        self.request.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        self.request.extend_from_slice(self.host_header.as_bytes());
        for (name, value) in headers {
            self.request.extend_from_slice(b"\r\n");
            self.request.extend_from_slice(name.as_bytes());
            self.request.extend_from_slice(b": ");
            self.request.extend_from_slice(value.as_bytes());
        }
        self.request.extend_from_slice(format!("\r\ncontent-length: {}\r\n\r\n", body.len()).as_bytes());
        self.request.extend_from_slice(body);

        // A kept-alive connection the server has since closed fails on first use; one fresh
        // connection is then tried before the error counts.
        let reused = self.stream.is_some();
        match self.exchange().await {
            Err(e) if reused && is_stale(&e) => {
                self.stream = None;
                self.exchange().await
            }
            other => other,
        }
    }

    async fn exchange(&mut self) -> Result<Answer, Http1Error> {
        let result = self.exchange_once().await;
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    async fn exchange_once(&mut self) -> Result<Answer, Http1Error> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(&self.address)
                .await
                .map_err(|source| Http1Error::Connect { address: self.address.clone(), source })?;
            stream.set_nodelay(true).map_err(|source| Http1Error::Connect { address: self.address.clone(), source })?;
            self.stream = Some(stream);
        }
        let Some(stream) = self.stream.as_mut() else { return Err(Http1Error::ClosedEarly) };
        stream.write_all(&self.request).await.map_err(Http1Error::Write)?;

        self.read.clear();
        let (status, headers, head_len) = loop {
            if self.read.len() >= MAX_HEAD {
                return Err(Http1Error::HeadTooLarge(MAX_HEAD));
            }
            let before = self.read.len();
            self.read.resize(before + 4096, 0);
            let n = stream.read(&mut self.read[before..]).await.map_err(Http1Error::Read)?;
            self.read.truncate(before + n);
            if n == 0 {
                return Err(Http1Error::ClosedEarly);
            }
            let mut header_slots = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut header_slots);
            if let httparse::Status::Complete(len) = response.parse(&self.read).map_err(Http1Error::BadHead)? {
                let headers: Vec<(String, Vec<u8>)> =
                    response.headers.iter().map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec())).collect();
                break (response.code.unwrap_or(0), headers, len);
            }
        };
        let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice());
        if let Some(te) = header("transfer-encoding") {
            return Err(Http1Error::UnsupportedTransferEncoding(String::from_utf8_lossy(te).into_owned()));
        }
        let length = header("content-length")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let close = header("connection").is_some_and(|v| v.eq_ignore_ascii_case(b"close"));
        while self.read.len() < head_len + length {
            let before = self.read.len();
            self.read.resize(head_len + length, 0);
            let n = stream.read(&mut self.read[before..]).await.map_err(Http1Error::Read)?;
            self.read.truncate(before + n);
            if n == 0 {
                return Err(Http1Error::ClosedEarly);
            }
        }
        let body = self.read[head_len..head_len + length].to_vec();
        if close {
            self.stream = None;
        }
        Ok(Answer { status, headers, body })
    }
}

fn is_stale(e: &Http1Error) -> bool {
    match e {
        Http1Error::ClosedEarly => true,
        Http1Error::Write(io) | Http1Error::Read(io) => matches!(
            io.kind(),
            std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::ConnectionAborted
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server that answers each request with the given raw bytes, then (optionally) closes.
    async fn serve(answers: Vec<(&'static [u8], bool)>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut answers = answers.into_iter();
            'accept: while let Ok((mut socket, _)) = listener.accept().await {
                let mut seen = Vec::new();
                loop {
                    let mut buf = [0u8; 4096];
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        continue 'accept;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    // Each test request has a body of "hello" and ends with it.
                    if !seen.ends_with(b"hello") {
                        continue;
                    }
                    seen.clear();
                    let Some((answer, close)) = answers.next() else { return };
                    socket.write_all(answer).await.unwrap();
                    if close {
                        continue 'accept;
                    }
                }
            }
        });
        format!("http://{address}")
    }

    #[tokio::test]
    async fn reads_answers_in_turn_on_one_connection() {
        let base = serve(vec![
            (b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\nx-footfall-dropped: 1\r\n\r\nok", false),
            (b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 0.5\r\ncontent-length: 0\r\n\r\n", false),
        ])
        .await;
        let mut c = Connection::new(&base).unwrap();
        let a = c.post("/api/event", &[("content-type", "text/plain")], b"hello").await.unwrap();
        assert_eq!((a.status, a.body.as_slice()), (202, b"ok".as_slice()));
        assert!(a.header("X-Footfall-Dropped").is_some());
        let b = c.post("/api/event", &[], b"hello").await.unwrap();
        assert_eq!(b.status, 429);
        assert_eq!(b.retry_after(), Duration::from_millis(500));
    }

    #[tokio::test]
    async fn reconnects_after_the_server_closes() {
        let base = serve(vec![
            (b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\na", true),
            (b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nb", false),
        ])
        .await;
        let mut c = Connection::new(&base).unwrap();
        assert_eq!(c.post("/", &[], b"hello").await.unwrap().body, b"a");
        assert_eq!(c.post("/", &[], b"hello").await.unwrap().body, b"b");
    }

    #[tokio::test]
    async fn refuses_chunked_answers_and_bad_addresses() {
        let base = serve(vec![(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n", false)]).await;
        let mut c = Connection::new(&base).unwrap();
        assert!(matches!(c.post("/", &[], b"hello").await, Err(Http1Error::UnsupportedTransferEncoding(_))));
        assert!(matches!(Connection::new("https://example.com"), Err(Http1Error::UnsupportedAddress(_))));
    }
}
