//! What the process-level suites (load, faults) share: services started as real processes, one
//! HTTP/1.1 request at a time, dev tokens, and the reports folder.
#![allow(dead_code, reason = "each suite uses its own part")]
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use meridian_chassis::config::BusConfig;
use secrecy::ExposeSecret;
use serde_json::Value;

/// The dev-mode token secret of every process started here.
pub const SECRET: &str = "load-secret-load-secret-load-secret-0123";

/// Where the reports go (`MERIDIAN_REPORTS`), made.
pub fn reports() -> std::path::PathBuf {
    let dir = std::env::var_os("MERIDIAN_REPORTS").map_or_else(
        || std::env::temp_dir().join("meridian-reports"),
        std::path::PathBuf::from,
    );
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// How to start one service: enough to start it again after it was killed.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The service.
    pub service: String,
    /// Its database.
    pub db_url: String,
    /// Its bus.
    pub bus: BusConfig,
    /// More environment (after the defaults, so it overrides them).
    pub extra: Vec<(String, String)>,
}

/// A running service process, killed when dropped.
pub struct Server {
    /// How it was started.
    pub spec: Spec,
    /// The process.
    pub child: Child,
    /// `host:port` it listens on.
    pub address: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Peak resident memory, KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0)
    }

    /// Sends `signal` (`KILL`, `STOP`, `CONT`) to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal}");
    }

    /// Kills the process with SIGKILL and starts it again on the same address.
    pub fn kill_and_restart(&mut self) {
        self.signal("KILL");
        let _ = self.child.wait();
        let mut spec = self.spec.clone();
        spec.extra
            .push(("MERIDIAN__HTTP__BIND".to_owned(), self.address.clone()));
        // The address is free again once the old process is gone; give the kernel a moment.
        for attempt in 0..20 {
            if let Some(again) = try_start(&spec) {
                *self = again;
                return;
            }
            std::thread::sleep(Duration::from_millis(100 * (attempt + 1)));
        }
        panic!("{} did not start again", spec.service);
    }
}

/// Starts `service` against `db_url` and `bus` (dev tokens, the repository's workflows) and waits
/// until it listens.
pub fn start(service: &str, db_url: &str, bus: &BusConfig, extra: &[(&str, &str)]) -> Server {
    let spec = Spec {
        service: service.to_owned(),
        db_url: db_url.to_owned(),
        bus: bus.clone(),
        extra: extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    };
    try_start(&spec).unwrap_or_else(|| panic!("{service} did not start"))
}

fn try_start(spec: &Spec) -> Option<Server> {
    let workflows = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows");
    let bus = &spec.bus;
    let mut command = Command::new(env!("CARGO_BIN_EXE_meridian"));
    command
        .args(["serve", "--service", &spec.service, "--migrate"])
        .env("MERIDIAN__HTTP__BIND", "127.0.0.1:0")
        .env("MERIDIAN__HTTP__WORKERS", "2")
        .env("MERIDIAN__DATABASE__URL", &spec.db_url)
        .env("MERIDIAN__DATABASE__POOL_SIZE", "8")
        .env("MERIDIAN__BUS__URL", bus.url.expose_secret())
        .env("MERIDIAN__BUS__EXCHANGE", &bus.exchange)
        .env(
            "MERIDIAN__BUS__DEAD_LETTER_EXCHANGE",
            &bus.dead_letter_exchange,
        )
        .env("MERIDIAN__BUS__QUEUE_PREFIX", &bus.queue_prefix)
        .env("MERIDIAN__AUTH__MODE", "dev")
        .env("MERIDIAN__AUTH__SECRET", SECRET)
        .env("MERIDIAN__TELEMETRY__LOG_LEVEL", "warn")
        .env("MERIDIAN__WORKFLOW__DEFINITIONS_DIR", workflows)
        .env("MERIDIAN__CONTROL__CAB_MEMBERS", "ann,ben,cat");
    for (k, v) in &spec.extra {
        command.env(k, v);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let address = loop {
        let Some(Ok(line)) = lines.next() else {
            // It ended before listening (its address taken, say).
            let _ = child.kill();
            let _ = child.wait();
            return None;
        };
        if let Some((_, address)) = line.split_once("listening on http://") {
            break address.trim().to_owned();
        }
    };
    // The server's log (its stdout) goes on to the reports folder, for the cause of any 5xx.
    let log = reports().join(format!("{}-{}.log", spec.service, child.id()));
    std::thread::spawn(move || {
        if let Ok(mut file) = std::fs::File::create(log) {
            for line in lines.map_while(Result::ok) {
                let _ = writeln!(file, "{line}");
            }
        }
    });
    Some(Server {
        spec: spec.clone(),
        child,
        address,
    })
}

/// One HTTP/1.1 request: the status, the body and the lower-cased head (`None`: no answer
/// within `timeout`).
pub fn http_within(
    timeout: Duration,
    address: &str,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> Option<(u16, Value, String)> {
    let mut stream = TcpStream::connect_timeout(&address.parse().ok()?, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.get(9..12)?.parse().ok()?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    Some((
        status,
        serde_json::from_str(body).unwrap_or(Value::Null),
        head.to_ascii_lowercase(),
    ))
}

/// [`http_within`] 30 seconds.
pub fn http(
    address: &str,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> Option<(u16, Value, String)> {
    http_within(Duration::from_secs(30), address, method, path, token, body)
}

/// A dev token of `sub` with `roles`, for two hours.
pub fn token(sub: &str, roles: &[&str]) -> String {
    let auth = meridian_chassis::auth::Authenticator::new(&meridian_chassis::config::AuthConfig {
        secret: secrecy::SecretString::from(SECRET.to_owned()),
        ..meridian_chassis::testing::dev_auth_config()
    })
    .unwrap();
    let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
    auth.mint_dev(
        sub,
        &roles,
        meridian_chassis::Clock::now(&meridian_chassis::SystemClock),
        chrono::Duration::hours(2),
    )
    .unwrap()
}
