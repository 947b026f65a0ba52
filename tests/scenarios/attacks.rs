//! Attacks tried, each class against the real services (control, workflow and the notifier over
//! RabbitMQ, production-mode JWT verification for the token attacks), counted into a report
//! (`$MERIDIAN_REPORTS/attacks.json`) that `make test` summarises: every class is tried, none may
//! be accepted. A class that is never refused for the right reason fails here, and so does a
//! harness that cannot tell: each class first shows that the legitimate request works.

use std::time::Duration;

use actix_web::dev::Service as _;
use actix_web::http::{Method, StatusCode};
use actix_web::{App, test as atest, web};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use meridian_chassis::auth::Authenticator;
use meridian_chassis::testing::{
    AUDIENCE, ISSUER, OTHER_ORG_RSA_PRIVATE, RSA_PRIVATE, RSA_PUBLIC, TestKeys,
};
use serde_json::{Value, json};

use crate::changes::{Cluster, MAX, RITA, emailed_link, setup};
use crate::support::{eventually, rabbit};

/// One class of attack: how many attempts, how many were let through.
#[derive(Debug, serde::Serialize)]
struct Class {
    class: &'static str,
    tried: usize,
    accepted: usize,
    how: Vec<String>,
}

#[derive(Debug, Default)]
struct Report(Vec<Class>);

impl Report {
    /// Records a class: each attempt's name and whether it was let through.
    fn class(&mut self, class: &'static str, attempts: Vec<(String, bool)>) {
        let accepted: Vec<String> = attempts
            .iter()
            .filter(|(_, through)| *through)
            .map(|(name, _)| name.clone())
            .collect();
        self.0.push(Class {
            class,
            tried: attempts.len(),
            accepted: accepted.len(),
            how: accepted,
        });
    }

    fn write(&self) {
        let dir = std::env::var_os("MERIDIAN_REPORTS").map_or_else(
            || std::env::temp_dir().join("meridian-reports"),
            std::path::PathBuf::from,
        );
        std::fs::create_dir_all(&dir).unwrap();
        let body = json!({
            "classes": self.0.len(),
            "attempts": self.0.iter().map(|c| c.tried).sum::<usize>(),
            "accepted": self.0.iter().map(|c| c.accepted).sum::<usize>(),
            "detail": self.0,
        });
        std::fs::write(
            dir.join("attacks.json"),
            serde_json::to_string_pretty(&body).unwrap(),
        )
        .unwrap();
    }
}

fn now() -> i64 {
    meridian_chassis::Clock::now(&meridian_chassis::SystemClock).timestamp()
}

fn claims(sub: &str, roles: &[&str]) -> Value {
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now(), "nbf": now() - 5, "exp": now() + 600,
        "realm_access": {"roles": roles}})
}

/// A dev token of rita, the requester.
fn rita_token(cluster: &Cluster) -> String {
    cluster
        .auth
        .mint_dev(
            "rita",
            &["change-manager".to_owned()],
            meridian_chassis::Clock::now(&meridian_chassis::SystemClock),
            chrono::Duration::minutes(5),
        )
        .unwrap()
}

fn rsa_signed(header: Header, claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// Signed by another organisation's identity provider, under the key id of ours (`rsa-1`).
fn other_org_signed(claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some("rsa-1".to_owned());
    let key = EncodingKey::from_rsa_pem(OTHER_ORG_RSA_PRIVATE.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// GET `path` with `token` on an app that verifies tokens as production does (the JWKS).
async fn with_token(
    auth: &Authenticator,
    cluster: &Cluster,
    path: &str,
    token: &str,
) -> StatusCode {
    let app = atest::init_service(
        App::new()
            .app_data(web::Data::new(auth.clone()))
            .configure(|cfg| meridian_chassis::http::configure(cfg, 256 * 1024))
            .configure(meridian_control::configure(cluster.control.clone())),
    )
    .await;
    let req = atest::TestRequest::get()
        .uri(path)
        .insert_header(("Authorization", format!("Bearer {token}")))
        .to_request();
    app.call(req).await.unwrap().status()
}

async fn token_attacks(report: &mut Report, cluster: &Cluster) {
    let keys = TestKeys::new();
    let dir = std::env::temp_dir().join(format!("meridian-attacks-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let auth = Authenticator::new(&keys.auth_config(&dir.join("jwks.json"))).unwrap();
    let sink = meridian_chassis::sinks::HttpSink::start().await;
    let good = claims("ann", &["agent"]);
    let valid = keys.sign(Algorithm::RS256, "at+jwt", &good);
    assert_eq!(
        with_token(&auth, cluster, "/v1/changes", &valid).await,
        StatusCode::OK,
        "a valid token works"
    );

    let b64 = |v: &Value| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = good.clone();
        f(&mut c);
        keys.sign(Algorithm::RS256, "at+jwt", &c)
    };
    let header = |f: &dyn Fn(&mut Header)| {
        let mut h = Header::new(Algorithm::RS256);
        h.typ = Some("at+jwt".to_owned());
        h.kid = Some("rsa-1".to_owned());
        f(&mut h);
        rsa_signed(h, &good)
    };
    let confusion = {
        let mut h = Header::new(Algorithm::HS256);
        h.typ = Some("at+jwt".to_owned());
        h.kid = Some("rsa-1".to_owned());
        jsonwebtoken::encode(&h, &good, &EncodingKey::from_secret(RSA_PUBLIC.as_bytes())).unwrap()
    };
    let tokens: Vec<(String, String)> = vec![
        (
            "alg none".into(),
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "typ": "at+jwt"})),
                b64(&good)
            ),
        ),
        ("alg none, signature kept".into(), {
            let sig = valid.rsplit('.').next().unwrap();
            format!(
                "{}.{}.{sig}",
                b64(&json!({"alg": "none", "typ": "at+jwt", "kid": "rsa-1"})),
                b64(&good)
            )
        }),
        (
            "key confusion: HS256 keyed with the RSA public key".into(),
            confusion,
        ),
        (
            "no iss".into(),
            with(&|c| {
                c.as_object_mut().unwrap().remove("iss");
            }),
        ),
        (
            "wrong iss".into(),
            with(&|c| c["iss"] = json!("https://evil.test")),
        ),
        (
            "no aud".into(),
            with(&|c| {
                c.as_object_mut().unwrap().remove("aud");
            }),
        ),
        (
            "wrong aud".into(),
            with(&|c| c["aud"] = json!("another-app")),
        ),
        ("expired".into(), with(&|c| c["exp"] = json!(now() - 600))),
        (
            "nbf in the future".into(),
            with(&|c| c["nbf"] = json!(now() + 600)),
        ),
        (
            "no exp".into(),
            with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
        ),
        (
            "typ JWT (an ID token)".into(),
            keys.sign(Algorithm::RS256, "JWT", &good),
        ),
        (
            "unknown kid".into(),
            header(&|h| h.kid = Some("rsa-9".to_owned())),
        ),
        (
            "hostile kid: a path".into(),
            header(&|h| h.kid = Some("../../../../etc/passwd".to_owned())),
        ),
        (
            "hostile kid: SQL".into(),
            header(&|h| h.kid = Some("' OR '1'='1".to_owned())),
        ),
        (
            "jku to an attacker's keys".into(),
            header(&|h| {
                h.kid = Some("attacker".to_owned());
                h.jku = Some(sink.url("/jwks.json"));
            }),
        ),
        (
            "x5u to an attacker's certificate".into(),
            header(&|h| {
                h.kid = Some("attacker".to_owned());
                h.x5u = Some(sink.url("/cert.pem"));
            }),
        ),
        ("payload altered after signing".into(), {
            let mut parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
            parts[1] = b64(&claims("ann", &["admin"]));
            parts.join(".")
        }),
        // Another organisation's identity provider, with its own key under the same key id:
        // its token for its own Meridian, and the same key claiming to be ours.
        ("another organisation's token".into(), {
            let mut c = good.clone();
            c["iss"] = json!("https://idp.other-org.test");
            other_org_signed(&c)
        }),
        (
            "another organisation's key claiming our issuer".into(),
            other_org_signed(&good),
        ),
        ("garbage".into(), "not.a.token".to_owned()),
    ];
    let mut attempts = Vec::new();
    for (name, token) in tokens {
        let status = with_token(&auth, cluster, "/v1/changes", &token).await;
        attempts.push((name, status != StatusCode::UNAUTHORIZED));
    }
    attempts.push((
        "jku/x5u fetched by the server".into(),
        !sink.received().is_empty(),
    ));
    report.class("forged or misused tokens", attempts);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attacks_are_refused() {
    let (config, _names) = setup();
    let (bus, _) = rabbit(&config);
    let smtp = meridian_chassis::sinks::SmtpSink::start().await;
    let cluster = Cluster::start(&bus, &config.queue_prefix, Some(smtp.port)).await;
    let mut report = Report::default();
    token_attacks(&mut report, &cluster).await;

    // The requester approving her own change: by the task API, and by someone else's link.
    let id = cluster.submit("normal").await;
    let triage = cluster.task(&id, "triage", MAX, false).await;
    let (status, _) = cluster
        .complete(
            &triage,
            RITA,
            json!({"outcome": "assessed", "fields": {"risk": "low"}}),
        )
        .await;
    let max_link = emailed_link(&smtp, "max@example.org", &id).await;
    let stolen = {
        let app = cluster.app().await;
        let token = rita_token(&cluster);
        let page = app
            .call(
                atest::TestRequest::get()
                    .uri(&max_link)
                    .insert_header(("Authorization", format!("Bearer {token}")))
                    .to_request(),
            )
            .await
            .unwrap();
        page.status()
    };
    report.class(
        "the requester approves her own change",
        vec![
            ("through the task API".into(), status.is_success()),
            (
                "with the change manager's link, signed in as herself".into(),
                stolen.is_success(),
            ),
            (
                "mailed a link to her own change".into(),
                smtp.received()
                    .iter()
                    .any(|m| m.to.iter().any(|t| t == "rita@example.org")),
            ),
        ],
    );

    // Link prefetch decides nothing; the link decides once; a replay is refused.
    let (status, _) = cluster.link_page(&max_link).await;
    assert_eq!(status, StatusCode::OK, "the link works");
    let task_path = format!("/v1/tasks/{}", triage["id"].as_str().unwrap());
    let (_, after_get) = cluster.call(Method::GET, &task_path, MAX, None).await;
    let first = cluster
        .confirm_link(&max_link, "assessed", &[("risk", "high")])
        .await;
    assert_eq!(first, StatusCode::ACCEPTED, "the link decides once");
    eventually(Duration::from_secs(20), || async {
        let (_, html) = cluster.link_page(&max_link).await;
        html.contains("was recorded as the decision").then_some(())
    })
    .await
    .expect("the decision is recorded");
    let replayed = {
        let app = cluster.app().await;
        let form = [
            ("outcome", "assessed"),
            ("csrf", "x"),
            ("field.risk", "low"),
        ];
        app.call(
            atest::TestRequest::post()
                .uri(&max_link)
                .cookie(actix_web::cookie::Cookie::new("meridian_csrf", "x"))
                .insert_header(("content-type", "application/x-www-form-urlencoded"))
                .set_payload(serde_urlencoded::to_string(form).unwrap())
                .to_request(),
        )
        .await
        .unwrap()
        .status()
    };
    report.class(
        "action links replayed or prefetched",
        vec![
            (
                "a GET (a mail scanner) decides".into(),
                after_get["state"] != "open",
            ),
            ("the used link decides again".into(), replayed.is_success()),
        ],
    );

    // One approver counted twice; a vote on someone else's task; a role without the right.
    let ann = ("ann", &[][..]);
    let vote = cluster.task(&id, "cab", ann, true).await;
    let (status, body) = cluster
        .complete(&vote, ann, json!({"outcome": "approved"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (again, _) = cluster
        .complete(&vote, ann, json!({"outcome": "approved"}))
        .await;
    let ben_vote = cluster.task(&id, "cab", ("ben", &[]), true).await;
    let (foreign, _) = cluster
        .complete(&ben_vote, ann, json!({"outcome": "approved"}))
        .await;
    let (agent, _) = cluster
        .complete(
            &ben_vote,
            ("eve", &["agent"]),
            json!({"outcome": "approved"}),
        )
        .await;
    let instance = ben_vote["instance_id"].as_str().unwrap().to_owned();
    let (cancel, _) = cluster
        .call(
            Method::POST,
            &format!("/v1/instances/{instance}/cancel"),
            MAX,
            Some(json!({"reason": "skip the board"})),
        )
        .await;
    report.class(
        "approvals counted twice or by the wrong person",
        vec![
            ("the same member votes twice".into(), again.is_success()),
            (
                "a member votes on another's task".into(),
                foreign.is_success(),
            ),
            ("an agent votes".into(), agent.is_success()),
            (
                "a change manager cancels the board's workflow (an administrator's override)"
                    .into(),
                cancel.is_success(),
            ),
        ],
    );

    // Mass assignment: state and decision fields are not the caller's to set.
    let mut attempts = Vec::new();
    for (name, field, value) in [
        ("state approved", "state", json!("approved")),
        (
            "decided by",
            "decision",
            json!({"outcome": "approved", "decided_by": ["ann"]}),
        ),
        (
            "a chosen id",
            "id",
            json!("00000000-0000-0000-0000-000000000001"),
        ),
        ("a chosen requester", "requested_by", json!("ann")),
    ] {
        let mut body = json!({"title": "Sneaky", "reason": "r", "category": "normal"});
        body[field] = value;
        let (status, _) = cluster
            .call(Method::POST, "/v1/changes", RITA, Some(body))
            .await;
        attempts.push((name.to_owned(), status.is_success()));
    }
    report.class("mass assignment", attempts);

    // SSRF through webhook URLs.
    let integrator = ("ivan", &["integrator"][..]);
    let mut attempts = Vec::new();
    for url in [
        "http://127.0.0.1:8080/v1/changes",
        "http://localhost/admin",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/",
        "http://192.168.1.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://100.64.0.1/",
        "file:///etc/passwd",
    ] {
        let (status, _) = cluster
            .call(
                Method::POST,
                "/v1/webhooks",
                integrator,
                Some(json!({"url": url, "event_types": ["control.#"]})),
            )
            .await;
        attempts.push((url.to_owned(), status.is_success()));
    }
    let (status, body) = cluster
        .call(
            Method::POST,
            "/v1/webhooks",
            integrator,
            Some(
                json!({"url": "https://hooks.example.com/meridian", "event_types": ["control.#"]}),
            ),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "a public URL is accepted: {body}"
    );
    report.class("SSRF through webhook URLs", attempts);

    // Oversized bodies and page sizes.
    let app = atest::init_service(
        App::new()
            .app_data(web::Data::new(cluster.auth.clone()))
            .configure(|cfg| meridian_chassis::http::configure(cfg, 256 * 1024))
            .configure(meridian_control::configure(cluster.control.clone())),
    )
    .await;
    let token = rita_token(&cluster);
    let huge = json!({"title": "x".repeat(2 * 1024 * 1024), "reason": "r", "category": "normal"})
        .to_string();
    let oversized = app
        .call(
            atest::TestRequest::post()
                .uri("/v1/changes")
                .insert_header(("Authorization", format!("Bearer {token}")))
                .insert_header(("content-type", "application/json"))
                .set_payload(huge)
                .to_request(),
        )
        .await
        .unwrap()
        .status();
    let mut attempts = vec![(
        "a 2 MiB body".to_owned(),
        oversized != StatusCode::PAYLOAD_TOO_LARGE,
    )];
    for path in [
        "/v1/changes?limit=1000000",
        "/v1/changes?limit=-1",
        "/v1/tasks?limit=100000",
        "/v1/notifications?limit=100000",
    ] {
        let (status, _) = cluster.call(Method::GET, path, RITA, None).await;
        attempts.push((path.to_owned(), status != StatusCode::BAD_REQUEST));
    }
    report.class("oversized bodies and page sizes", attempts);

    // Brute force of link tokens: wrong guesses are held back.
    let app = cluster.app().await;
    let mut limited = false;
    let mut found = false;
    for _ in 0..25 {
        let guess = format!("/v1/actions/{}", uuid::Uuid::now_v7().simple());
        let status = app
            .call(
                atest::TestRequest::get()
                    .uri(&format!("{guess}{}", uuid::Uuid::now_v7().simple()))
                    .peer_addr("10.9.8.7:4000".parse().unwrap())
                    .to_request(),
            )
            .await
            .unwrap()
            .status();
        limited |= status == StatusCode::TOO_MANY_REQUESTS;
        found |= status.is_success();
    }
    report.class(
        "brute force of link tokens",
        vec![
            ("a guessed token opens a decision".into(), found),
            (
                "25 wrong guesses a minute are not held back".into(),
                !limited,
            ),
        ],
    );

    report.write();
    let accepted: Vec<&Class> = report.0.iter().filter(|c| c.accepted > 0).collect();
    assert!(accepted.is_empty(), "attacks accepted: {accepted:#?}");
}
