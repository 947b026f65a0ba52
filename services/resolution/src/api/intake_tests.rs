//! Alert intake on both backends: Alertmanager's payloads (firing, resolved, grouped, duplicate,
//! malformed), the generic event, the token and the signature.

use std::sync::Arc;

use actix_web::dev::Service as _;
use actix_web::http::StatusCode;
use actix_web::{App, test as atest, web};
use meridian_chassis::outbox::Waker;
use meridian_chassis::testing::{BACKENDS, Backend, TestDb};
use serde_json::{Value, json};

use crate::Resolution;

const TOKEN: &str = "intake-token-0123456789";
const SECRET: &str = "intake-hmac-secret";

fn service(db: &TestDb, resolve_on_resolved: bool) -> Resolution {
    #[derive(serde::Deserialize)]
    struct Root {
        resolution: crate::ResolutionConfig,
    }
    let layer = format!(
        "resolution:\n  intake:\n    token: {TOKEN}\n    hmac_secret: {SECRET}\n    resolve_on_resolved: {resolve_on_resolved}\n    rules:\n      - {{ match: {{ alertname: MailQueueHigh }}, service: email, assignment_group: messaging }}\n"
    );
    let root: Root =
        meridian_chassis::config::load_from(&[crate::config::DEFAULTS, &layer], None, vec![])
            .unwrap();
    Resolution::new(
        db.db.clone(),
        Arc::new(meridian_chassis::SystemClock),
        root.resolution,
        Waker::default(),
    )
}

async fn post(
    svc: &Resolution,
    path: &str,
    body: &[u8],
    auth: Option<(&str, String)>,
) -> (StatusCode, Value) {
    let app = atest::init_service(App::new().configure(crate::configure(svc.clone()))).await;
    let mut req = atest::TestRequest::post()
        .uri(path)
        .insert_header(("content-type", "application/json"))
        .set_payload(body.to_vec());
    if let Some(header) = auth {
        req = req.insert_header(header);
    }
    let response = app.call(req.to_request()).await.unwrap();
    let status = response.status();
    let bytes = atest::read_body(response).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn bearer() -> Option<(&'static str, String)> {
    Some(("authorization", format!("Bearer {TOKEN}")))
}

async fn incident(svc: &Resolution, number: &str) -> crate::domain::incident::Incident {
    let number = number.to_owned();
    svc.db
        .run(move |conn| -> Result<_, meridian_chassis::db::DbError> {
            use crate::store::incidents;
            let all = incidents::list(
                conn,
                &incidents::Filter::default(),
                incidents::Sort::CreatedAsc,
                None,
                100,
            )?;
            Ok(all.into_iter().find(|i| i.number == number).unwrap())
        })
        .await
        .unwrap()
}

fn payload(status: &str, fingerprint: &str, name: &str) -> Vec<u8> {
    json!({"version": "4", "status": status, "receiver": "meridian", "groupKey": "{}:{}", "commonLabels": {"env": "prod"},
           "alerts": [{"status": status, "fingerprint": fingerprint, "startsAt": "2026-11-26T10:00:00Z",
                       "labels": {"alertname": name, "instance": "mx1", "severity": "critical"},
                       "annotations": {"summary": "Mail queue above 10k", "description": "The outbound queue grows"},
                       "generatorURL": "http://prometheus/graph?g0.expr=queue"}]})
    .to_string()
    .into_bytes()
}

#[actix_web::test]
async fn firing_alerts_open_one_incident_per_fingerprint_and_resolved_ones_add_a_note() {
    for backend in BACKENDS {
        let db = TestDb::new(backend, crate::store::MIGRATIONS).await;
        let svc = service(&db, false);
        let (status, body) = post(
            &svc,
            "/v1/intake/alertmanager",
            &payload("firing", "fp1", "MailQueueHigh"),
            bearer(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["alerts"][0]["outcome"], "opened");
        let number = body["alerts"][0]["incident"].as_str().unwrap().to_owned();
        let opened = incident(&svc, &number).await;
        assert_eq!(
            (
                opened.service.as_deref(),
                opened.assignment_group.as_deref()
            ),
            (Some("email"), Some("messaging"))
        );
        assert_eq!(
            (opened.priority.get(), opened.title.as_str()),
            (1, "Mail queue above 10k")
        );
        assert_eq!(opened.configuration_items, ["mx1"]);
        assert!(opened.description.contains("http://prometheus/graph"));
        // The same alert again (Alertmanager repeats): the same incident.
        let (_, again) = post(
            &svc,
            "/v1/intake/alertmanager",
            &payload("firing", "fp1", "MailQueueHigh"),
            bearer(),
        )
        .await;
        assert_eq!(
            (
                again["alerts"][0]["outcome"].as_str(),
                again["alerts"][0]["incident"].as_str()
            ),
            (Some("deduplicated"), Some(number.as_str()))
        );
        // Resolved: a note, the incident stays open (resolve_on_resolved is off).
        let (_, resolved) = post(
            &svc,
            "/v1/intake/alertmanager",
            &payload("resolved", "fp1", "MailQueueHigh"),
            bearer(),
        )
        .await;
        assert_eq!(resolved["alerts"][0]["outcome"], "noted");
        assert!(incident(&svc, &number).await.state.is_open());
        let (_, twice) = post(
            &svc,
            "/v1/intake/alertmanager",
            &payload("resolved", "fp1", "MailQueueHigh"),
            bearer(),
        )
        .await;
        assert_eq!(twice["alerts"][0]["outcome"], "ignored", "noted once");
        // A grouped notification: two alerts, a new incident for the new one.
        let grouped = json!({"version": "4", "status": "firing", "alerts": [
            {"status": "firing", "fingerprint": "fp1", "labels": {"alertname": "MailQueueHigh", "instance": "mx1"}},
            {"status": "firing", "fingerprint": "fp2", "labels": {"alertname": "DiskFull", "instance": "db1", "service": "payroll", "severity": "warning"}}
        ]});
        let (_, body) = post(
            &svc,
            "/v1/intake/alertmanager",
            grouped.to_string().as_bytes(),
            bearer(),
        )
        .await;
        let outcomes: Vec<&str> = body["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a["outcome"].as_str())
            .collect();
        assert_eq!(outcomes, ["deduplicated", "opened"]);
        let disk = incident(&svc, body["alerts"][1]["incident"].as_str().unwrap()).await;
        assert_eq!(
            (disk.service.as_deref(), disk.priority.get()),
            (Some("payroll"), 3)
        );
        // A resolved alert nobody saw firing: ignored.
        let (_, unknown) = post(
            &svc,
            "/v1/intake/alertmanager",
            &payload("resolved", "fp9", "Other"),
            bearer(),
        )
        .await;
        assert_eq!(unknown["alerts"][0]["outcome"], "ignored");
    }
}

#[actix_web::test]
async fn with_resolve_on_resolved_the_incident_resolves_and_a_new_firing_reopens_it() {
    let db = TestDb::new(Backend::Sqlite, crate::store::MIGRATIONS).await;
    let svc = service(&db, true);
    let (_, opened) = post(
        &svc,
        "/v1/intake/alertmanager",
        &payload("firing", "fp1", "MailQueueHigh"),
        bearer(),
    )
    .await;
    let number = opened["alerts"][0]["incident"].as_str().unwrap().to_owned();
    let (_, resolved) = post(
        &svc,
        "/v1/intake/alertmanager",
        &payload("resolved", "fp1", "MailQueueHigh"),
        bearer(),
    )
    .await;
    assert_eq!(resolved["alerts"][0]["outcome"], "resolved");
    assert_eq!(incident(&svc, &number).await.state.as_str(), "resolved");
    let (_, again) = post(
        &svc,
        "/v1/intake/alertmanager",
        &payload("firing", "fp1", "MailQueueHigh"),
        bearer(),
    )
    .await;
    assert_eq!(
        (
            again["alerts"][0]["outcome"].as_str(),
            again["alerts"][0]["incident"].as_str()
        ),
        (Some("reopened"), Some(number.as_str()))
    );
    assert!(incident(&svc, &number).await.state.is_open());
}

#[actix_web::test]
async fn the_intake_needs_its_token_or_signature_and_names_the_field_at_fault() {
    let db = TestDb::new(Backend::Sqlite, crate::store::MIGRATIONS).await;
    let svc = service(&db, false);
    let body = payload("firing", "fp1", "MailQueueHigh");
    let (status, _) = post(&svc, "/v1/intake/alertmanager", &body, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = post(
        &svc,
        "/v1/intake/alertmanager",
        &body,
        Some(("authorization", "Bearer wrong".to_owned())),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The HMAC signature of the body.
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let (status, _) = post(
        &svc,
        "/v1/intake/alertmanager",
        &body,
        Some(("x-meridian-signature", format!("sha256={hex}"))),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = post(
        &svc,
        "/v1/intake/alertmanager",
        b"{\"alerts\":[]}",
        Some(("x-meridian-signature", format!("sha256={hex}"))),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the signature is of another body"
    );
    for (bad, field) in [
        (
            json!({"alerts": [{"status": "burning", "labels": {"alertname": "X"}}]}),
            "alerts[0].status",
        ),
        (json!({"version": "4"}), "alerts"),
        (
            json!({"alerts": [{"status": "firing", "labels": {"instance": "x"}}]}),
            "alerts[0].labels.alertname",
        ),
    ] {
        let (status, problem) = post(
            &svc,
            "/v1/intake/alertmanager",
            bad.to_string().as_bytes(),
            bearer(),
        )
        .await;
        assert_eq!(
            (status, problem["invalid-params"][0]["name"].as_str()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{problem}"
        );
    }
    let (status, problem) = post(&svc, "/v1/intake/alertmanager", b"not json", bearer()).await;
    assert_eq!(
        (status, problem["invalid-params"][0]["name"].as_str()),
        (StatusCode::BAD_REQUEST, Some("body"))
    );
    // The generic event.
    let event = json!({"source": "nagios", "key": "mx1-smtp", "status": "firing", "title": "SMTP down on mx1", "severity": "critical", "service": "email"});
    let (status, body) = post(
        &svc,
        "/v1/intake/events",
        event.to_string().as_bytes(),
        bearer(),
    )
    .await;
    assert_eq!(
        (status, body["alerts"][0]["outcome"].as_str()),
        (StatusCode::OK, Some("opened")),
        "{body}"
    );
    let (_, again) = post(
        &svc,
        "/v1/intake/events",
        event.to_string().as_bytes(),
        bearer(),
    )
    .await;
    assert_eq!(again["alerts"][0]["outcome"], "deduplicated");
    let (status, problem) = post(
        &svc,
        "/v1/intake/events",
        json!({"source": "nagios", "key": "k", "status": "firing"})
            .to_string()
            .as_bytes(),
        bearer(),
    )
    .await;
    assert_eq!(
        (status, problem["invalid-params"][0]["name"].as_str()),
        (StatusCode::BAD_REQUEST, Some("title"))
    );
}

#[actix_web::test]
async fn without_a_token_or_secret_configured_the_intake_is_closed() {
    let db = TestDb::new(Backend::Sqlite, crate::store::MIGRATIONS).await;
    #[derive(serde::Deserialize)]
    struct Root {
        resolution: crate::ResolutionConfig,
    }
    let root: Root =
        meridian_chassis::config::load_from(&[crate::config::DEFAULTS], None, vec![]).unwrap();
    let svc = Resolution::new(
        db.db.clone(),
        Arc::new(meridian_chassis::SystemClock),
        root.resolution,
        Waker::default(),
    );
    let (status, problem) = post(
        &svc,
        "/v1/intake/alertmanager",
        &payload("firing", "fp", "X"),
        Some(("authorization", "Bearer ".to_owned())),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let _ = web::Data::new(());
}
