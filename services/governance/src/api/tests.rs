//! API tests of the governance service, on both backends: each record's lifecycle and refused
//! inputs, auditor independence, the ledger's tamper cases, the evidence report.

use actix_web::http::{Method, StatusCode};
use diesel::prelude::*;
use meridian_proto::Message;
use serde_json::{Value, json};

use super::test_support::{ADA, DORA, Harness, IAN, MIA, on_both_backends};
use crate::store::schema::{gov_ledger, gov_ledger_head};

fn names(problem: &Value) -> Vec<&str> {
    problem["invalid-params"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["name"].as_str()).collect())
        .unwrap_or_default()
}

fn incident_created(number: &str) -> Vec<u8> {
    meridian_proto::resolution::v1::IncidentCreated {
        incident: Some(meridian_proto::resolution::v1::Incident {
            id: number.to_owned(),
            number: number.to_owned(),
            ..Default::default()
        }),
    }
    .encode_to_vec()
}

/// Fills the ledger with `n` events and signs a checkpoint after the last; the export.
async fn ledger_of(h: &Harness, n: usize) -> Vec<crate::ledger::CheckpointRow> {
    for i in 0..n {
        h.deliver(
            "resolution.incident.created",
            incident_created(&format!("INC{i}")),
        )
        .await;
    }
    let (status, export) = h
        .call(MIA, Method::POST, "/v1/ledger/checkpoints", None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{export}");
    let (_, export) = h
        .call(IAN, Method::GET, "/v1/ledger/checkpoints", None)
        .await;
    serde_json::from_value(export["checkpoints"].clone()).unwrap()
}

async fn verdict(h: &Harness, extra: Vec<crate::ledger::CheckpointRow>) -> crate::ledger::Verdict {
    let key = h.svc.key.verifying_key();
    h.svc
        .db
        .run(move |conn| {
            crate::ledger::verify(conn, key, &extra).map_err(meridian_chassis::db::DbError::from)
        })
        .await
        .unwrap()
}

async fn tamper(
    h: &Harness,
    f: impl FnOnce(&mut meridian_chassis::db::AnyConnection) -> QueryResult<()> + Send + 'static,
) {
    h.svc
        .db
        .run(move |conn| f(conn).map_err(meridian_chassis::db::DbError::from))
        .await
        .unwrap();
}

on_both_backends!(
    the_ledger_keeps_every_event_once_in_a_gap_free_signed_chain,
    |h| {
        let exported = ledger_of(&h, 6).await;
        assert_eq!(
            exported.last().map(|c| c.seq),
            Some(6),
            "each event once, redeliveries not again"
        );
        let (status, page) = h
            .call(
                IAN,
                Method::GET,
                "/v1/ledger?type=resolution.incident.*&limit=4",
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page["items"].as_array().unwrap().len(), 4);
        assert_eq!(
            (page["items"][0]["seq"].as_i64(), page["next"].as_i64()),
            (Some(1), Some(4))
        );
        assert_eq!(page["items"][0]["data"]["incident"]["number"], "INC0");
        let (status, verdict) = h.call(IAN, Method::GET, "/v1/ledger/verify", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            (
                verdict["entries"].as_i64(),
                verdict["first_bad_seq"].clone()
            ),
            (Some(6), Value::Null)
        );
        let (status, _) = h.call(ADA, Method::GET, "/v1/ledger", None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (_, key) = h
            .call(ADA, Method::GET, "/v1/ledger/public-key", None)
            .await;
        assert!(crate::ledger::parse_public_key(key["public_key"].as_str().unwrap()).is_ok());
    }
);

on_both_backends!(a_changed_entry_is_caught_at_its_sequence_number, |h| {
    ledger_of(&h, 6).await;
    tamper(&h, |conn| {
        diesel::update(gov_ledger::table.find(3))
            .set(gov_ledger::data.eq("{\"incident\":{\"number\":\"FORGED\"}}"))
            .execute(conn)
            .map(|_| ())
    })
    .await;
    let v = verdict(&h, Vec::new()).await;
    assert_eq!(v.first_bad_seq, Some(3), "{v:?}");
    assert!(v.problem.unwrap().contains("does not match its hash"));
});

on_both_backends!(a_deleted_entry_is_caught_at_the_gap, |h| {
    ledger_of(&h, 6).await;
    tamper(&h, |conn| {
        diesel::delete(gov_ledger::table.find(4))
            .execute(conn)
            .map(|_| ())
    })
    .await;
    let v = verdict(&h, Vec::new()).await;
    assert_eq!(v.first_bad_seq, Some(4), "{v:?}");
    assert!(v.problem.unwrap().contains("missing"));
});

on_both_backends!(two_swapped_entries_are_caught_at_the_first, |h| {
    ledger_of(&h, 6).await;
    tamper(&h, |conn| {
        let a: crate::ledger::EntryRow = gov_ledger::table
            .find(2)
            .select(crate::ledger::EntryRow::as_select())
            .first(conn)?;
        let b: crate::ledger::EntryRow = gov_ledger::table
            .find(5)
            .select(crate::ledger::EntryRow::as_select())
            .first(conn)?;
        diesel::delete(gov_ledger::table.filter(gov_ledger::seq.eq_any([2, 5]))).execute(conn)?;
        let swapped = [
            crate::ledger::EntryRow { seq: 2, ..b },
            crate::ledger::EntryRow { seq: 5, ..a },
        ];
        for row in swapped {
            diesel::insert_into(gov_ledger::table)
                .values(row)
                .execute(conn)?;
        }
        Ok(())
    })
    .await;
    let v = verdict(&h, Vec::new()).await;
    assert_eq!(v.first_bad_seq, Some(2), "{v:?}");
});

on_both_backends!(a_cut_tail_is_caught_by_the_exported_checkpoint, |h| {
    let exported = ledger_of(&h, 8).await;
    // The intruder cuts entries 7 and 8, moves the head back and removes the checkpoints held in
    // the database; the copy kept outside still vouches for entry 8.
    tamper(&h, |conn| {
        diesel::delete(gov_ledger::table.filter(gov_ledger::seq.gt(6))).execute(conn)?;
        let hash: String = gov_ledger::table
            .find(6)
            .select(gov_ledger::hash)
            .first(conn)?;
        diesel::update(gov_ledger_head::table.find(1))
            .set((gov_ledger_head::seq.eq(6), gov_ledger_head::hash.eq(hash)))
            .execute(conn)?;
        diesel::delete(crate::store::schema::gov_checkpoints::table).execute(conn)?;
        Ok(())
    })
    .await;
    assert!(
        verdict(&h, Vec::new()).await.intact(),
        "without the export the cut cannot be seen"
    );
    let v = verdict(&h, exported).await;
    assert_eq!(v.first_bad_seq, Some(7), "{v:?}");
    assert!(v.problem.unwrap().contains("tail was cut"));
});

on_both_backends!(
    a_rewritten_ledger_with_recomputed_hashes_is_caught_by_its_signatures,
    |h| {
        ledger_of(&h, 6).await;
        // The intruder rewrites entry 4 and recomputes every hash from there, so the chain links;
        // without the key the signatures cannot follow.
        tamper(&h, |conn| {
            let rows: Vec<crate::ledger::EntryRow> = gov_ledger::table
                .order(gov_ledger::seq)
                .select(crate::ledger::EntryRow::as_select())
                .load(conn)?;
            let mut prev = crate::ledger::GENESIS.to_owned();
            for mut row in rows {
                if row.seq == 4 {
                    row.actor = "someone-else".to_owned();
                }
                row.prev_hash = prev.clone();
                row.hash = crate::ledger::entry_hash(&row);
                prev = row.hash.clone();
                diesel::update(gov_ledger::table.find(row.seq))
                    .set((
                        gov_ledger::actor.eq(&row.actor),
                        gov_ledger::prev_hash.eq(&row.prev_hash),
                        gov_ledger::hash.eq(&row.hash),
                    ))
                    .execute(conn)?;
            }
            Ok(())
        })
        .await;
        let v = verdict(&h, Vec::new()).await;
        assert_eq!(v.first_bad_seq, Some(4), "{v:?}");
        assert!(v.problem.unwrap().contains("not signed"));
    }
);

on_both_backends!(
    a_document_is_approved_through_its_workflow_and_issued_versions_stay_read_only,
    |h| {
        let (status, problem) = h
        .call(DORA, Method::POST, "/v1/documents", Some(json!({"reference": "POL 1", "title": "", "kind": "memo", "clauses": ["5.2", "11"], "owner": "mia", "body": "x"})))
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            names(&problem),
            ["reference", "title", "kind", "clauses[1]"]
        );
        let (status, doc) = h
        .call(DORA, Method::POST, "/v1/documents", Some(json!({"reference": "POL-001", "title": "Service management policy", "kind": "policy", "clauses": ["5.2"], "owner": "mia", "body": "We commit to…"})))
        .await;
        assert_eq!(status, StatusCode::CREATED, "{doc}");
        let (status, problem) = h
        .call(DORA, Method::POST, "/v1/documents", Some(json!({"reference": "POL-001", "title": "Again", "kind": "policy", "owner": "mia", "body": "x"})))
        .await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (StatusCode::CONFLICT, Some("document_exists"))
        );
        // The author reviews and approves nothing of their own.
        let submit = "/v1/documents/POL-001/versions/1/submit";
        let (status, problem) = h
            .call(
                DORA,
                Method::POST,
                submit,
                Some(json!({"reviewers": ["rex", "dora"], "approver": "dora"})),
            )
            .await;
        assert_eq!(
            (status, names(&problem)),
            (StatusCode::BAD_REQUEST, vec!["reviewers[1]", "approver"])
        );
        let (status, version) = h
            .call(
                DORA,
                Method::POST,
                submit,
                Some(json!({"reviewers": ["rex"], "approver": "tom"})),
            )
            .await;
        assert_eq!(
            (status, version["status"].as_str()),
            (StatusCode::OK, Some("in_review")),
            "{version}"
        );
        let submitted = h.outbox("governance.document.submitted").await;
        let data =
            meridian_proto::decode_json("governance.document.submitted", &submitted[0].payload)
                .unwrap()
                .unwrap();
        assert_eq!(
            (
                data["id"].clone(),
                data["reviewers"].clone(),
                data["author"].as_str()
            ),
            (version["id"].clone(), json!(["rex"]), Some("dora"))
        );
        let (status, problem) = h
            .call(
                DORA,
                Method::PUT,
                "/v1/documents/POL-001/versions/1",
                Some(json!({"body": "changed", "change_summary": "sneaky"})),
            )
            .await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (StatusCode::CONFLICT, Some("document_version_not_draft"))
        );

        // The workflow approves: its service task issues the version, and the reply goes back.
        let command = meridian_proto::workflow::v1::Command {
            correlation_id: "corr-1".to_owned(),
            command: "governance.document.issue".to_owned(),
            instance_id: "wf".to_owned(),
            business_key: version["id"].as_str().unwrap().to_owned(),
            input_json: json!({"document_id": version["id"]}).to_string(),
            attempt: 1,
        };
        h.deliver("governance.document.issue", command.encode_to_vec())
            .await;
        let replies = h.outbox("governance.document.issued").await;
        assert_eq!(replies.len(), 1, "one reply, the redelivery had no effect");
        let reply =
            meridian_proto::workflow::v1::CommandReply::decode(replies[0].payload.as_slice())
                .unwrap();
        assert!(reply.ok && reply.correlation_id == "corr-1", "{reply:?}");
        let (_, doc) = h
            .call(ADA, Method::GET, "/v1/documents/POL-001", None)
            .await;
        assert_eq!(
            (doc["status"].as_str(), doc["current_version"].as_i64()),
            (Some("approved"), Some(1)),
            "{doc}"
        );

        // Version 2 is rejected (a draft again), then approved: version 1 is superseded.
        let (status, _) = h
            .call(
                DORA,
                Method::POST,
                "/v1/documents/POL-001/versions",
                Some(json!({"body": "We commit, v2", "change_summary": "Scope widened"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, problem) = h
            .call(
                DORA,
                Method::POST,
                "/v1/documents/POL-001/versions",
                Some(json!({"body": "v3", "change_summary": "x"})),
            )
            .await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (StatusCode::CONFLICT, Some("document_version_not_draft"))
        );
        let (_, v2) = h
            .call(
                DORA,
                Method::POST,
                "/v1/documents/POL-001/versions/2/submit",
                Some(json!({"reviewers": ["rex"], "approver": "tom"})),
            )
            .await;
        let rejected = meridian_proto::workflow::v1::InstanceCompleted {
            instance_id: "wf2".to_owned(),
            definition: "document-approval".to_owned(),
            business_key: v2["id"].as_str().unwrap().to_owned(),
            outcome: "rejected".to_owned(),
            variables_json: "{}".to_owned(),
        };
        h.deliver("workflow.instance.completed", rejected.encode_to_vec())
            .await;
        let (_, v2) = h
            .call(ADA, Method::GET, "/v1/documents/POL-001/versions/2", None)
            .await;
        assert_eq!(
            (v2["status"].as_str(), v2["instance_outcome"].as_str()),
            (Some("draft"), Some("rejected"))
        );
        h.call(
            DORA,
            Method::POST,
            "/v1/documents/POL-001/versions/2/submit",
            Some(json!({"reviewers": ["rex"], "approver": "tom"})),
        )
        .await;
        let again = meridian_proto::workflow::v1::Command {
            correlation_id: "corr-2".to_owned(),
            business_key: v2["id"].as_str().unwrap().to_owned(),
            input_json: "{}".to_owned(),
            ..command
        };
        h.deliver("governance.document.issue", again.encode_to_vec())
            .await;
        let (_, doc) = h
            .call(ADA, Method::GET, "/v1/documents/POL-001", None)
            .await;
        let states: Vec<&str> = doc["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["status"].as_str().unwrap())
            .collect();
        assert_eq!(
            (doc["current_version"].as_i64(), states),
            (Some(2), vec!["approved", "superseded"])
        );

        // A year on, it is overdue for review; a restricted document is hidden from others.
        h.advance(chrono::Duration::days(366));
        let (_, overdue) = h
            .call(ADA, Method::GET, "/v1/documents?review_overdue=true", None)
            .await;
        assert_eq!(overdue.as_array().unwrap().len(), 1);
        h.call(DORA, Method::POST, "/v1/documents", Some(json!({"reference": "SEC-9", "title": "Key ceremony", "kind": "procedure", "clauses": ["8.7.3"], "owner": "sam", "access_roles": ["security"], "body": "…"}))).await;
        let (status, _) = h.call(ADA, Method::GET, "/v1/documents/SEC-9", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = h
            .call(
                ("sue", &["security"]),
                Method::GET,
                "/v1/documents/SEC-9",
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
);

async fn planned_audit(h: &Harness) -> Value {
    let (status, audit) = h
        .call(IAN, Method::POST, "/v1/audits", Some(json!({"title": "Incident management", "criteria": "ISO/IEC 20000-1, PRC-861",
            "clauses": ["8.6.1", "8.6.3"], "area": "Service desk", "area_members": ["olga", "dave"], "lead_auditor": "ian", "planned_for": "2026-11-10"})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{audit}");
    audit
}

on_both_backends!(
    an_internal_audit_is_led_by_an_independent_auditor_and_its_nonconformities_are_corrected,
    |h| {
        let (status, problem) = h
        .call(IAN, Method::POST, "/v1/audits", Some(json!({"title": "Desk", "criteria": "x", "clauses": ["8.6.1"], "area": "Service desk",
            "area_members": ["olga", "ian"], "lead_auditor": "ian", "planned_for": "2026-11-10"})))
        .await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (StatusCode::CONFLICT, Some("auditor_not_independent")),
            "{problem}"
        );
        let (status, problem) = h
        .call(IAN, Method::POST, "/v1/audits", Some(json!({"title": "Desk", "criteria": "x", "clauses": ["8.6.1"], "area": "Service desk",
            "area_members": ["olga"], "lead_auditor": "ian", "auditors": ["olga"], "planned_for": "2026-11-10"})))
        .await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (StatusCode::CONFLICT, Some("auditor_not_independent"))
        );
        let (status, problem) = h
        .call(IAN, Method::POST, "/v1/audits", Some(json!({"title": "", "criteria": "x", "clauses": ["12.1"], "area": "a", "area_members": [], "lead_auditor": "ian", "planned_for": "2026-11-10"})))
        .await;
        assert_eq!(
            (status, names(&problem)),
            (
                StatusCode::BAD_REQUEST,
                vec!["title", "clauses[0]", "area_members"]
            )
        );
        let audit = planned_audit(&h).await;
        let number = audit["number"].as_str().unwrap().to_owned();
        assert_eq!(audit["checklist"].as_array().unwrap().len(), 2);
        let (status, problem) = h.call(IAN, Method::POST, &format!("/v1/audits/{number}/findings"), Some(json!({"clause": "8.6.1", "kind": "minor", "description": "d", "evidence": "e"}))).await;
        assert_eq!(
            (status, problem["allowed-actions"].clone()),
            (StatusCode::CONFLICT, json!(["start"]))
        );
        let (status, _) = h
            .call(
                ("ivy", &["auditor"]),
                Method::POST,
                &format!("/v1/audits/{number}/start"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "only its auditors run it");
        let (status, _) = h
            .call(
                IAN,
                Method::POST,
                &format!("/v1/audits/{number}/start"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, finding) = h
        .call(IAN, Method::POST, &format!("/v1/audits/{number}/findings"), Some(json!({"clause": "8.6.1", "kind": "minor",
            "description": "Three incidents closed without the caller's confirmation", "evidence": "INC1001, INC1004, INC1010"})))
        .await;
        assert_eq!(status, StatusCode::CREATED, "{finding}");
        assert!(finding["nonconformity_id"].is_string());
        let (status, problem) = h.call(IAN, Method::POST, &format!("/v1/audits/{number}/findings"), Some(json!({"clause": "5.2", "kind": "observation", "description": "d", "evidence": "e"}))).await;
        assert_eq!(
            (status, names(&problem)),
            (StatusCode::BAD_REQUEST, vec!["clause"]),
            "outside its scope"
        );
        let (status, problem) = h
            .call(
                IAN,
                Method::POST,
                &format!("/v1/audits/{number}/complete"),
                Some(json!({"report": "Mostly conforms."})),
            )
            .await;
        assert_eq!(
            (status, names(&problem)),
            (
                StatusCode::BAD_REQUEST,
                vec!["checklist.8.6.1", "checklist.8.6.3"]
            )
        );
        let answers = json!([{"clause": "8.6.1", "result": "nonconform", "notes": "see finding"}, {"clause": "8.6.3", "result": "conform"}]);
        let (status, _) = h
            .call(
                IAN,
                Method::PUT,
                &format!("/v1/audits/{number}/checklist"),
                Some(answers),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, done) = h
            .call(
                IAN,
                Method::POST,
                &format!("/v1/audits/{number}/complete"),
                Some(json!({"report": "One minor nonconformity."})),
            )
            .await;
        assert_eq!(
            (status, done["state"].as_str()),
            (StatusCode::OK, Some("completed")),
            "{done}"
        );
        assert_eq!(h.outbox("governance.audit.completed").await.len(), 1);
        let (_, programme) = h
            .call(ADA, Method::GET, "/v1/audit-programme?year=2026", None)
            .await;
        let coverage = programme["coverage"].as_array().unwrap();
        let status_of =
            |c: &str| coverage.iter().find(|x| x["clause"] == c).unwrap()["status"].clone();
        assert_eq!(
            (status_of("8.6.1"), status_of("9.3")),
            (json!("audited"), json!("not_covered"))
        );

        // The nonconformity: reacted to, analysed, corrected, then reviewed; not effective the
        // first time, so analysed again.
        let (_, ncs) = h
            .call(ADA, Method::GET, "/v1/nonconformities?source=audit", None)
            .await;
        let nc = ncs[0]["number"].as_str().unwrap().to_owned();
        let path = |a: &str| format!("/v1/nonconformities/{nc}/{a}");
        let (status, problem) = h
            .call(
                MIA,
                Method::POST,
                &path("correct"),
                Some(json!({"notes": "x", "action_owner": "olga", "action_due": "2026-12-01"})),
            )
            .await;
        assert_eq!(
            (status, problem["allowed-actions"].clone()),
            (StatusCode::CONFLICT, json!(["react"]))
        );
        h.call(
            MIA,
            Method::POST,
            &path("react"),
            Some(json!({"notes": "Callers asked to confirm the three", "action_owner": "olga"})),
        )
        .await;
        let olga = ("olga", &["agent"][..]);
        let (status, _) = h
            .call(
                olga,
                Method::POST,
                &path("analyse"),
                Some(json!({"notes": "Auto-close after 3 days skips confirmation"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "the action's owner acts on it");
        let (status, problem) = h
            .call(
                MIA,
                Method::POST,
                &path("correct"),
                Some(json!({"notes": "Auto-close asks first"})),
            )
            .await;
        assert_eq!(
            (status, names(&problem)),
            (StatusCode::BAD_REQUEST, vec!["action_owner", "action_due"])
        );
        h.call(MIA, Method::POST, &path("correct"), Some(json!({"notes": "Auto-close asks first", "action_owner": "olga", "action_due": "2026-12-01"}))).await;
        let (_, again) = h
            .call(
                MIA,
                Method::POST,
                &path("review"),
                Some(json!({"notes": "Two more found", "effective": false})),
            )
            .await;
        assert_eq!(again["state"], "reacted");
        h.call(
            MIA,
            Method::POST,
            &path("analyse"),
            Some(json!({"notes": "Also the mobile app closes tickets"})),
        )
        .await;
        h.call(MIA, Method::POST, &path("correct"), Some(json!({"notes": "App fixed too", "action_owner": "olga", "action_due": "2026-12-15"}))).await;
        let (_, closed) = h
            .call(
                MIA,
                Method::POST,
                &path("review"),
                Some(json!({"notes": "None since", "effective": true})),
            )
            .await;
        assert_eq!(
            (closed["state"].as_str(), closed["effective"].as_bool()),
            (Some("closed"), Some(true)),
            "{closed}"
        );
        let (status, _) = h
            .call(
                ADA,
                Method::POST,
                &path("react"),
                Some(json!({"notes": "x"})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
);

on_both_backends!(
    breaches_and_escalated_complaints_become_nonconformities_once,
    |h| {
        let breach = meridian_proto::service_level::v1::SlaClockEvent {
            clock_id: "clock-1".to_owned(),
            number: "INC0001001".to_owned(),
            agreement_name: "Gold".to_owned(),
            agreement_kind: "sla".to_owned(),
            metric: "resolution".to_owned(),
            service: "email".to_owned(),
            priority: 1,
            ..Default::default()
        };
        h.deliver("service_level.sla.breached", breach.encode_to_vec())
            .await;
        let complaint = meridian_proto::relationship::v1::ComplaintChanged {
            id: "c1".to_owned(),
            number: "CMP0001001".to_owned(),
            customer: "acme".to_owned(),
            summary: "Slow".to_owned(),
            ..Default::default()
        };
        h.deliver(
            "relationship.complaint.escalated",
            complaint.encode_to_vec(),
        )
        .await;
        // Escalated again: still one nonconformity for the complaint.
        h.deliver(
            "relationship.complaint.escalated",
            complaint.encode_to_vec(),
        )
        .await;
        let (_, ncs) = h.call(ADA, Method::GET, "/v1/nonconformities", None).await;
        let found: Vec<(&str, &str, &str)> = ncs
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                (
                    n["source"].as_str().unwrap(),
                    n["clause"].as_str().unwrap(),
                    n["severity"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                ("sla_breach", "8.3.3", "major"),
                ("complaint", "8.3.2", "minor")
            ]
        );
        assert!(
            ncs[0]["description"]
                .as_str()
                .unwrap()
                .contains("INC0001001")
        );
        assert_eq!(h.outbox("governance.nonconformity.recorded").await.len(), 2);
    }
);

on_both_backends!(risks_objectives_and_improvements_follow_their_rules, |h| {
    let risk = json!({"kind": "risk", "title": "Mail provider outage", "category": "supplier", "owner": "mia", "likelihood": 4, "impact": 5, "treatment": "accept"});
    let (status, problem) = h
        .call(MIA, Method::POST, "/v1/risks", Some(risk.clone()))
        .await;
    assert_eq!(
        (status, names(&problem)),
        (StatusCode::BAD_REQUEST, vec!["treatment"]),
        "a high risk is not simply accepted"
    );
    let mut treated = risk.clone();
    treated["treatment"] = json!("mitigate");
    let (status, problem) = h
        .call(MIA, Method::POST, "/v1/risks", Some(treated.clone()))
        .await;
    assert_eq!(
        (status, names(&problem)),
        (
            StatusCode::BAD_REQUEST,
            vec!["treatment_plan", "treatment_owner", "treatment_due"]
        )
    );
    treated["treatment_plan"] = json!("Second provider for outbound mail");
    treated["treatment_owner"] = json!("olga");
    treated["treatment_due"] = json!("2027-03-01");
    let (status, created) = h.call(MIA, Method::POST, "/v1/risks", Some(treated)).await;
    assert_eq!(
        (status, created["score"].as_i64(), created["level"].as_str()),
        (StatusCode::CREATED, Some(20), Some("high")),
        "{created}"
    );
    h.advance(chrono::Duration::days(91));
    let (_, overdue) = h
        .call(ADA, Method::GET, "/v1/risks?review_overdue=true", None)
        .await;
    assert_eq!(overdue.as_array().unwrap().len(), 1);
    let (status, reviewed) = h
        .call(
            MIA,
            Method::POST,
            &format!("/v1/risks/{}/review", created["number"].as_str().unwrap()),
            Some(json!({"notes": "Second provider contracted"})),
        )
        .await;
    assert_eq!(
        (status, reviewed["review_overdue"].as_bool()),
        (StatusCode::OK, Some(false))
    );

    let (status, problem) = h.call(MIA, Method::POST, "/v1/objectives", Some(json!({"title": "First-time fix", "measure": "Share of incidents fixed by the desk", "owner": "olga", "baseline": 70, "target": 60, "direction": "at_least", "due_on": "2027-06-30"}))).await;
    assert_eq!(
        (status, names(&problem)),
        (StatusCode::BAD_REQUEST, vec!["target"]),
        "met already"
    );
    let (_, objective) = h.call(MIA, Method::POST, "/v1/objectives", Some(json!({"title": "First-time fix", "measure": "Share of incidents fixed by the desk", "owner": "olga", "baseline": 60, "target": 80, "unit": "%", "direction": "at_least", "due_on": "2027-06-30"}))).await;
    let progress = format!(
        "/v1/objectives/{}/progress",
        objective["id"].as_str().unwrap()
    );
    let (status, _) = h
        .call(ADA, Method::POST, &progress, Some(json!({"value": 70})))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, half) = h
        .call(
            ("olga", &["agent"]),
            Method::POST,
            &progress,
            Some(json!({"value": 70, "note": "Q1"})),
        )
        .await;
    assert_eq!(
        (half["progress_percent"].as_f64(), half["state"].as_str()),
        (Some(50.0), Some("open"))
    );
    let (_, done) = h
        .call(
            ("olga", &["agent"]),
            Method::POST,
            &progress,
            Some(json!({"value": 82})),
        )
        .await;
    assert_eq!(
        (
            done["state"].as_str(),
            done["history"].as_array().unwrap().len()
        ),
        (Some("achieved"), 2)
    );

    let (status, idea) = h.call(ADA, Method::POST, "/v1/improvements", Some(json!({"title": "Chat support", "description": "Offer chat on the portal", "expected": "10% fewer calls"}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let path = |a: &str| format!("/v1/improvements/{}/{a}", idea["number"].as_str().unwrap());
    let (status, problem) = h
        .call(
            MIA,
            Method::POST,
            &path("approve"),
            Some(json!({"notes": "yes"})),
        )
        .await;
    assert_eq!(
        (status, problem["allowed-actions"].clone()),
        (StatusCode::CONFLICT, json!(["evaluate"]))
    );
    let (status, problem) = h
        .call(
            MIA,
            Method::POST,
            &path("evaluate"),
            Some(json!({"benefit": 7})),
        )
        .await;
    assert_eq!(
        (status, names(&problem)),
        (StatusCode::BAD_REQUEST, vec!["benefit", "effort"])
    );
    let (_, evaluated) = h
        .call(
            MIA,
            Method::POST,
            &path("evaluate"),
            Some(json!({"benefit": 4, "effort": 2})),
        )
        .await;
    assert_eq!(evaluated["priority"], 10);
    h.call(
        MIA,
        Method::POST,
        &path("approve"),
        Some(json!({"notes": "Worth it"})),
    )
    .await;
    let (status, planned) = h.call(MIA, Method::POST, &path("plan"), Some(json!({"plan": "Pilot with HR", "owner": "olga", "due_on": "2027-02-01", "objective": objective["id"]}))).await;
    assert_eq!(
        (status, planned["state"].as_str()),
        (StatusCode::OK, Some("planned")),
        "{planned}"
    );
    h.call(
        MIA,
        Method::POST,
        &path("implement"),
        Some(json!({"notes": "Live"})),
    )
    .await;
    let (_, measured) = h
        .call(
            MIA,
            Method::POST,
            &path("measure"),
            Some(json!({"notes": "12% fewer calls"})),
        )
        .await;
    assert_eq!(
        (measured["state"].as_str(), measured["result"].as_str()),
        (Some("measured"), Some("12% fewer calls"))
    );
});

fn score(service: &str, value: i32) -> Vec<u8> {
    meridian_proto::relationship::v1::SatisfactionRecorded {
        response_id: uuid::Uuid::now_v7().to_string(),
        service: service.to_owned(),
        score: value,
        ..Default::default()
    }
    .encode_to_vec()
}

on_both_backends!(
    a_management_review_assembles_its_inputs_and_tracks_its_actions,
    |h| {
        let audit = planned_audit(&h).await;
        let number = audit["number"].as_str().unwrap().to_owned();
        h.call(
            IAN,
            Method::POST,
            &format!("/v1/audits/{number}/start"),
            None,
        )
        .await;
        h.call(IAN, Method::POST, &format!("/v1/audits/{number}/findings"), Some(json!({"clause": "8.6.3", "kind": "major", "description": "No trend analysis", "evidence": "none in 2026"}))).await;
        h.call(IAN, Method::PUT, &format!("/v1/audits/{number}/checklist"), Some(json!([{"clause": "8.6.1", "result": "conform"}, {"clause": "8.6.3", "result": "nonconform"}]))).await;
        h.call(
            IAN,
            Method::POST,
            &format!("/v1/audits/{number}/complete"),
            Some(json!({"report": "r"})),
        )
        .await;
        for s in [4, 5, 3] {
            h.deliver("relationship.satisfaction.recorded", score("email", s))
                .await;
        }
        h.deliver("resolution.incident.created", incident_created("INC7"))
            .await;
        let (status, review) = h
            .call(
                MIA,
                Method::POST,
                "/v1/management-reviews",
                Some(json!({"planned_for": "2026-11-30"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{review}");
        let inputs = &review["inputs"];
        assert_eq!(inputs["audits"][0]["findings"]["major"], 1, "{inputs}");
        assert_eq!(inputs["nonconformities"]["raised"]["audit"], 1);
        assert_eq!(
            (
                inputs["satisfaction"]["responses"].as_i64(),
                inputs["satisfaction"]["average"].as_f64()
            ),
            (Some(3), Some(4.0))
        );
        assert_eq!(inputs["service_performance"]["incidents"], 1);
        let id = review["number"].as_str().unwrap().to_owned();
        let (status, problem) = h
            .call(
                MIA,
                Method::POST,
                &format!("/v1/management-reviews/{id}/hold"),
                Some(json!({"attendees": [], "minutes": "", "decisions": []})),
            )
            .await;
        assert_eq!(
            (status, names(&problem)),
            (
                StatusCode::BAD_REQUEST,
                vec!["attendees", "minutes", "decisions"]
            )
        );
        let (status, held) = h
        .call(MIA, Method::POST, &format!("/v1/management-reviews/{id}/hold"), Some(json!({"attendees": ["ceo", "mia"], "minutes": "Reviewed the year.",
            "decisions": ["Fund problem trend analysis"], "actions": [{"description": "Monthly trend report", "owner": "olga", "due_on": "2027-01-31"}]})))
        .await;
        assert_eq!(
            (status, held["state"].as_str()),
            (StatusCode::OK, Some("held")),
            "{held}"
        );
        assert_eq!(h.outbox("governance.review.held").await.len(), 1);
        let (status, problem) = h
            .call(
                MIA,
                Method::POST,
                &format!("/v1/management-reviews/{id}/inputs"),
                None,
            )
            .await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (StatusCode::CONFLICT, Some("management_review_held"))
        );
        let action = held["actions"][0]["id"].as_str().unwrap().to_owned();
        let (_, mine) = h
            .call(
                ("olga", &["agent"]),
                Method::GET,
                "/v1/review-actions?owner=me&state=open",
                None,
            )
            .await;
        assert_eq!(mine.as_array().unwrap().len(), 1);
        let (status, _) = h
            .call(
                ADA,
                Method::POST,
                &format!("/v1/review-actions/{action}/close"),
                Some(json!({"outcome": "x"})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = h
            .call(
                ("olga", &["agent"]),
                Method::POST,
                &format!("/v1/review-actions/{action}/close"),
                Some(json!({"outcome": "First report sent"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        // The next review sees it among the earlier actions, done.
        let (_, next) = h
            .call(
                MIA,
                Method::POST,
                "/v1/management-reviews",
                Some(json!({"planned_for": "2027-11-30"})),
            )
            .await;
        assert_eq!(next["inputs"]["previous_actions"]["done"], 1);
    }
);

on_both_backends!(
    the_evidence_report_shows_met_stale_and_missing_clauses,
    |h| {
        h.call(MIA, Method::PUT, "/v1/scope", Some(json!({"statement": "IT services to all staff", "services": ["email", "payroll"], "locations": ["Paris"]}))).await;
        h.call(MIA, Method::PUT, "/v1/sms-roles/sms-owner", Some(json!({"name": "SMS owner", "responsibilities": "Runs the SMS", "holders": ["mia"]}))).await;
        h.deliver("resolution.incident.created", incident_created("INC1"))
            .await;
        let (status, report) = h
            .call(
                ADA,
                Method::GET,
                "/v1/evidence?from=2026-01-01T00:00:00Z&to=2026-12-01T00:00:00Z",
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{report}");
        let status_of = |r: &Value, c: &str| {
            r["clauses"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["clause"] == c)
                .unwrap()["status"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(status_of(&report, "4.3"), "met");
        assert_eq!(status_of(&report, "5.3"), "met");
        assert_eq!(status_of(&report, "8.6.1"), "met");
        assert_eq!(status_of(&report, "9.3"), "missing");
        assert_eq!(status_of(&report, "5.2"), "missing");
        assert!(
            report["gaps"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g == "9.2")
        );
        let incidents = report["clauses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["clause"] == "8.6.1")
            .unwrap();
        assert_eq!(incidents["evidence"][0]["count"], 1);
        assert!(
            incidents["evidence"][0]["link"]
                .as_str()
                .unwrap()
                .starts_with("/v1/ledger?type=resolution.incident.*")
        );
        // The next year, the incident is old evidence, the scope older than a year stale too.
        let (_, later) = h
            .call(
                ADA,
                Method::GET,
                "/v1/evidence?from=2027-11-01T00:00:00Z&to=2027-12-01T00:00:00Z",
                None,
            )
            .await;
        assert_eq!(
            (status_of(&later, "8.6.1"), status_of(&later, "4.3")),
            ("stale".to_owned(), "stale".to_owned())
        );
        let (status, page) = h
            .raw(ADA, Method::GET, "/v1/evidence?format=html", None)
            .await;
        let page = String::from_utf8(page).unwrap();
        assert_eq!(status, StatusCode::OK);
        assert!(
            page.contains("8.5.1.3") && page.contains("Certification readiness: not yet"),
            "{page}"
        );
        let (_, readiness) = h
            .call(ADA, Method::GET, "/v1/evidence/readiness", None)
            .await;
        assert_eq!(readiness["ready"], false);
        assert_eq!(readiness["checks"][0]["ok"], true, "the scope is defined");
        let (status, problem) = h
            .call(ADA, Method::GET, "/v1/evidence?format=pdf", None)
            .await;
        assert_eq!(
            (status, names(&problem)),
            (StatusCode::BAD_REQUEST, vec!["format"])
        );
    }
);
