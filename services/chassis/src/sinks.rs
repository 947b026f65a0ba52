//! Receivers for tests of what Meridian sends out (behind the `testing` feature): a small SMTP
//! server and a small HTTP server, each on a free loopback port, keeping what they receive and
//! answering as the test tells them (to inject failures).
#![expect(clippy::expect_used, reason = "test helpers fail the test loudly")]

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// A message an SMTP client handed over.
#[derive(Debug, Clone)]
pub struct Mail {
    /// `MAIL FROM`.
    pub from: String,
    /// `RCPT TO`s.
    pub to: Vec<String>,
    /// The message as sent (headers and body, dot-unstuffed).
    pub data: String,
}

impl Mail {
    /// The message with quoted-printable soft breaks and `=3D` undone, enough to read the
    /// plain-text part and its addresses.
    pub fn text(&self) -> String {
        self.data
            .replace("=\r\n", "")
            .replace("=3D", "=")
            .replace("=E2=80=94", "—")
    }

    /// Every address in the text that starts with `prefix`, up to the next space or quote.
    pub fn links(&self, prefix: &str) -> Vec<String> {
        let text = self.text();
        let mut out = Vec::new();
        let mut rest = text.as_str();
        while let Some(at) = rest.find(prefix) {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| c.is_whitespace() || c == '"' || c == '<' || c == '&')
                .unwrap_or(tail.len());
            out.push(tail[..end].to_owned());
            rest = &tail[end..];
        }
        out.sort();
        out.dedup();
        out
    }
}

struct Shared<T> {
    received: Mutex<Vec<T>>,
    arrived: Notify,
    /// The reply to the next commands instead of success (e.g. `451 4.3.0 try later`, or an
    /// HTTP status), while set.
    failure: Mutex<Option<String>>,
}

impl<T> Default for Shared<T> {
    fn default() -> Self {
        Self {
            received: Mutex::new(Vec::new()),
            arrived: Notify::new(),
            failure: Mutex::new(None),
        }
    }
}

impl<T: Clone> Shared<T> {
    fn push(&self, item: T) {
        self.received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(item);
        self.arrived.notify_waiters();
    }

    fn all(&self) -> Vec<T> {
        self.received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn wait(&self, count: usize, within: Duration) -> Vec<T> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.arrived.notified();
            let all = self.all();
            if all.len() >= count {
                return all;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.all();
            }
        }
    }
}

/// An SMTP server on a loopback port, speaking enough of RFC 5321 for a real client (EHLO,
/// MAIL, RCPT, DATA with dot-stuffing, RSET, NOOP, QUIT), without TLS or authentication.
#[derive(Clone)]
pub struct SmtpSink {
    /// Its port.
    pub port: u16,
    shared: Arc<Shared<Mail>>,
}

impl SmtpSink {
    /// Starts one.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let shared: Arc<Shared<Mail>> = Arc::default();
        let state = shared.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let _ = session(socket, &state).await;
                });
            }
        });
        Self { port, shared }
    }

    /// Makes `MAIL FROM` answer `reply` (e.g. `451 4.3.0 try later`) until cleared with `None`.
    pub fn fail_with(&self, reply: Option<&str>) {
        *self
            .shared
            .failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = reply.map(str::to_owned);
    }

    /// What arrived so far.
    pub fn received(&self) -> Vec<Mail> {
        self.shared.all()
    }

    /// Waits until `count` messages arrived (or `within` passed); what arrived.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<Mail> {
        self.shared.wait(count, within).await
    }
}

async fn session(socket: tokio::net::TcpStream, state: &Shared<Mail>) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink.test ESMTP ready\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let upper = command.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") {
            "250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8".to_owned()
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
            "250 ok".to_owned()
        } else if upper.starts_with("RSET") {
            (from, to) = (String::new(), Vec::new());
            "250 ok".to_owned()
        } else if upper.starts_with("MAIL FROM:") {
            if let Some(failure) = state.failure() {
                failure
            } else {
                from = command[10..].trim().trim_matches(['<', '>']).to_owned();
                "250 ok".to_owned()
            }
        } else if upper.starts_with("RCPT TO:") {
            to.push(command[8..].trim().trim_matches(['<', '>']).to_owned());
            "250 ok".to_owned()
        } else if upper == "DATA" {
            write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            state.push(Mail {
                from: std::mem::take(&mut from),
                to: std::mem::take(&mut to),
                data,
            });
            "250 queued".to_owned()
        } else if upper.starts_with("QUIT") {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            "502 command not implemented".to_owned()
        };
        write.write_all(format!("{reply}\r\n").as_bytes()).await?;
    }
}

/// A request an HTTP client made.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method.
    pub method: String,
    /// The path.
    pub path: String,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// An HTTP/1.1 server on a loopback port that answers every request `200` (or the status set
/// with [`HttpSink::fail_with`]) and keeps it.
#[derive(Clone)]
pub struct HttpSink {
    /// Its port.
    pub port: u16,
    shared: Arc<Shared<Request>>,
}

impl HttpSink {
    /// Starts one.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let shared: Arc<Shared<Request>> = Arc::default();
        let state = shared.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let _ = exchange(socket, &state).await;
                });
            }
        });
        Self { port, shared }
    }

    /// Its address for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Answers `status` (e.g. `500`) until cleared with `None`; the request is kept either way.
    pub fn fail_with(&self, status: Option<u16>) {
        *self
            .shared
            .failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = status.map(|s| s.to_string());
    }

    /// What arrived so far.
    pub fn received(&self) -> Vec<Request> {
        self.shared.all()
    }

    /// Waits until `count` requests arrived (or `within` passed); what arrived.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<Request> {
        self.shared.wait(count, within).await
    }
}

async fn exchange(socket: tokio::net::TcpStream, state: &Shared<Request>) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut reader = BufReader::new(read);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
        if let Some((name, value)) = line.trim_end().split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    let status = state.failure().unwrap_or_else(|| "200".to_owned());
    state.push(Request {
        method,
        path,
        headers,
        body,
    });
    write
        .write_all(
            format!("HTTP/1.1 {status} Sink\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                .as_bytes(),
        )
        .await?;
    write.shutdown().await
}
