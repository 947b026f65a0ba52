//! `meridian audit verify` and `meridian evidence report` as processes, against a governance
//! database on PostgreSQL: an intact ledger passes; a deleted entry, and a cut tail against the
//! exported checkpoints, fail naming the first bad sequence number.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::process::Command;
use std::sync::Arc;

use diesel::prelude::*;
use meridian_chassis::testing::{Backend, TestDb};
use meridian_proto::Message;

const KEY: &str = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";

fn meridian(db: &TestDb, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(args)
        .env("MERIDIAN__DATABASE__URL", &db.url)
        .env("MERIDIAN__GOVERNANCE__LEDGER__SIGNING_KEY", KEY)
        .env("MERIDIAN__TELEMETRY__LOG_LEVEL", "warn")
        .env("MERIDIAN__AUTH__MODE", "dev")
        .env(
            "MERIDIAN__AUTH__SECRET",
            "a-dev-secret-of-at-least-thirty-two-bytes",
        )
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_verifier_names_the_first_bad_sequence_number() {
    let db = TestDb::new(Backend::Postgres, meridian_governance::store::MIGRATIONS).await;
    #[derive(serde::Deserialize)]
    struct Root {
        governance: meridian_governance::GovernanceConfig,
    }
    let layer = format!("governance:\n  ledger:\n    signing_key: \"{KEY}\"\n");
    let root: Root = meridian_chassis::config::load_from(
        &[meridian_governance::config::DEFAULTS, &layer],
        None,
        vec![],
    )
    .unwrap();
    let governance = meridian_governance::Governance::new(
        db.db.clone(),
        Arc::new(meridian_chassis::SystemClock),
        root.governance,
        meridian_chassis::outbox::Waker::default(),
    )
    .unwrap();
    for i in 0..5 {
        let incident = meridian_proto::resolution::v1::IncidentCreated {
            incident: Some(meridian_proto::resolution::v1::Incident {
                number: format!("INC{i}"),
                ..Default::default()
            }),
        };
        let envelope = meridian_chassis::bus::Envelope {
            id: uuid::Uuid::now_v7(),
            event_type: "resolution.incident.created".to_owned(),
            source: "/meridian/resolution".to_owned(),
            subject: format!("i{i}"),
            time: meridian_chassis::Clock::now(&meridian_chassis::SystemClock),
            correlation_id: None,
            causation_id: None,
            actor: Some("alice".to_owned()),
            payload: incident.encode_to_vec(),
        };
        meridian_governance::events::apply(&governance, envelope)
            .await
            .unwrap();
    }
    let tick = meridian_governance::scheduler::tick(&governance)
        .await
        .unwrap();
    assert_eq!(tick.map(|c| c.seq), Some(5));
    let checkpoints = governance
        .db
        .run(|conn| {
            meridian_governance::ledger::checkpoints(conn)
                .map_err(meridian_chassis::db::DbError::from)
        })
        .await
        .unwrap();
    let export = meridian_governance::api::evidence::export(&governance, checkpoints);
    let dir = std::env::temp_dir().join(format!("meridian-audit-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("checkpoints.json");
    std::fs::write(&file, export.to_string()).unwrap();
    let file = file.to_str().unwrap().to_owned();

    let (ok, out) = meridian(&db, &["audit", "verify", "--checkpoints", &file]);
    assert!(
        ok && out.contains("ledger intact") && out.contains("5 entries"),
        "{out}"
    );
    let (ok, out) = meridian(&db, &["evidence", "report", "--format", "html"]);
    assert!(
        ok && out.contains("8.6.1") && out.contains("Certification readiness"),
        "{out}"
    );

    // The tail is cut and the database's own checkpoints removed: the export still sees it.
    governance
        .db
        .run(|conn| {
            use meridian_governance::store::schema::{gov_checkpoints, gov_ledger};
            diesel::delete(gov_ledger::table.filter(gov_ledger::seq.eq(5))).execute(conn)?;
            diesel::delete(gov_checkpoints::table).execute(conn)?;
            Ok::<_, meridian_chassis::db::DbError>(())
        })
        .await
        .unwrap();
    let (ok, out) = meridian(&db, &["audit", "verify", "--checkpoints", &file]);
    assert!(!ok && out.contains("first bad sequence number: 5"), "{out}");
    // An entry in the middle is deleted.
    governance
        .db
        .run(|conn| {
            use meridian_governance::store::schema::gov_ledger;
            diesel::delete(gov_ledger::table.filter(gov_ledger::seq.eq(2))).execute(conn)?;
            Ok::<_, meridian_chassis::db::DbError>(())
        })
        .await
        .unwrap();
    let (ok, out) = meridian(&db, &["audit", "verify"]);
    assert!(!ok && out.contains("first bad sequence number: 2"), "{out}");
    let _ = std::fs::remove_dir_all(dir);
}
