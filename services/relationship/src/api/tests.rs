//! API tests of the relationship service, on both backends.

use actix_web::http::{Method, StatusCode};
use chrono::Duration;
use meridian_proto::Message;
use serde_json::{Value, json};

use super::test_support::{ADA, RITA, SAM, on_both_backends};

fn names(problem: &Value) -> Vec<&str> {
    problem["invalid-params"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["name"].as_str()).collect())
        .unwrap_or_default()
}

async fn customer(h: &super::test_support::Harness) -> Value {
    h.service("email").await;
    let (status, body) = h
        .call(RITA, Method::POST, "/v1/customers", Some(json!({"id": "acme", "name": "Acme Ltd", "account_manager": "rita", "services": ["email"], "review_interval_days": 90})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = h
        .call(RITA, Method::POST, "/v1/parties", Some(json!({"customer": "acme", "kind": "contact", "name": "Carol", "email": "carol@acme.example", "user_id": "carol"})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

on_both_backends!(
    customers_are_reviewed_at_their_interval_and_review_actions_tracked_to_closure,
    |h| {
        // A service the catalogue does not offer is refused, named.
        let (status, problem) = h
        .call(RITA, Method::POST, "/v1/customers", Some(json!({"id": "acme", "name": "Acme", "account_manager": "rita", "services": ["nope"]})))
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
        assert_eq!(names(&problem), ["services[0]"]);
        customer(&h).await;
        let (status, problem) = h
            .call(
                RITA,
                Method::POST,
                "/v1/customers",
                Some(json!({"id": "acme", "name": "Acme", "account_manager": "rita"})),
            )
            .await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (StatusCode::CONFLICT, Some("customer_exists"))
        );
        let (status, _) = h
            .call(
                ADA,
                Method::POST,
                "/v1/customers",
                Some(json!({"id": "other", "name": "Other", "account_manager": "ada"})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);

        // Never reviewed: due 90 days after it was recorded, overdue after that.
        let (_, acme) = h.call(ADA, Method::GET, "/v1/customers/acme", None).await;
        assert_eq!(
            (
                acme["next_review_due"].as_str(),
                acme["review_overdue"].as_bool()
            ),
            (Some("2027-01-31"), Some(false))
        );
        assert_eq!(acme["parties"][0]["name"], "Carol");
        h.advance(Duration::days(91));
        let (_, overdue) = h
            .call(ADA, Method::GET, "/v1/customers?review_overdue=true", None)
            .await;
        assert_eq!(overdue.as_array().unwrap().len(), 1, "{overdue}");

        // The review is planned with the figures of each service; service-level cannot be reached
        // here, and the review says so instead of failing.
        let (status, review) = h
        .call(RITA, Method::POST, "/v1/service-reviews", Some(json!({"customer": "acme", "scheduled_for": "2027-02-03T10:00:00Z", "agenda": ["SLA attainment", "Complaints"]})))
        .await;
        assert_eq!(status, StatusCode::CREATED, "{review}");
        assert_eq!(review["performance"][0]["service"], "email");
        assert!(
            review["performance"][0]["unavailable"].is_string(),
            "{review}"
        );
        assert_eq!(
            (review["period_from"].as_str(), review["period_to"].as_str()),
            (Some("2026-11-03"), Some("2027-02-01"))
        );
        let id = review["id"].as_str().unwrap().to_owned();
        let (status, problem) = h
            .call(
                RITA,
                Method::POST,
                &format!("/v1/service-reviews/{id}/hold"),
                Some(json!({"attendees": [], "minutes": ""})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(names(&problem), ["attendees", "minutes"]);
        let (status, held) = h
        .call(RITA, Method::POST, &format!("/v1/service-reviews/{id}/hold"), Some(json!({
            "attendees": ["rita", "Carol (Acme)"], "minutes": "Attainment 99.1%, two complaints.",
            "decisions": ["Add a weekend on-call"], "actions": [{"description": "Staff the weekend rota", "owner": "olga", "due_on": "2027-03-01"}]})))
        .await;
        assert_eq!(status, StatusCode::OK, "{held}");
        assert_eq!(
            (
                held["state"].as_str(),
                held["actions"].as_array().unwrap().len()
            ),
            (Some("held"), 1)
        );
        let (status, again) = h
            .call(
                RITA,
                Method::POST,
                &format!("/v1/service-reviews/{id}/hold"),
                Some(json!({"attendees": ["rita"], "minutes": "again"})),
            )
            .await;
        assert_eq!(
            (status, again["code"].as_str()),
            (StatusCode::CONFLICT, Some("service_review_not_planned"))
        );
        let (_, acme) = h.call(ADA, Method::GET, "/v1/customers/acme", None).await;
        assert_eq!(acme["review_overdue"], false, "{acme}");

        // The action is closed by its owner (or a manager), once.
        let action = held["actions"][0]["id"].as_str().unwrap().to_owned();
        let (_, mine) = h
            .call(
                ("olga", &["agent"]),
                Method::GET,
                "/v1/follow-up-actions?owner=me&state=open",
                None,
            )
            .await;
        assert_eq!(mine.as_array().unwrap().len(), 1, "{mine}");
        let close = format!("/v1/follow-up-actions/{action}/close");
        let (status, _) = h
            .call(ADA, Method::POST, &close, Some(json!({"outcome": "done"})))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, done) = h
            .call(
                ("olga", &["agent"]),
                Method::POST,
                &close,
                Some(json!({"outcome": "Rota staffed from March"})),
            )
            .await;
        assert_eq!(
            (status, done["state"].as_str(), done["closed_by"].as_str()),
            (StatusCode::OK, Some("done"), Some("olga"))
        );
        let (status, problem) = h
            .call(
                RITA,
                Method::POST,
                &close,
                Some(json!({"outcome": "again"})),
            )
            .await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (StatusCode::CONFLICT, Some("follow_up_action_closed"))
        );
    }
);

on_both_backends!(
    a_complaint_not_resolved_in_time_is_escalated_level_by_level,
    |h| {
        customer(&h).await;
        let (status, problem) = h
        .call(ADA, Method::POST, "/v1/complaints", Some(json!({"customer": "nobody", "raised_by": "Carol", "summary": "", "description": "x"})))
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(names(&problem), ["summary"]);
        let (status, problem) = h
        .call(ADA, Method::POST, "/v1/complaints", Some(json!({"customer": "nobody", "raised_by": "Carol", "summary": "Slow", "description": "x"})))
        .await;
        assert_eq!(
            (status, names(&problem)),
            (StatusCode::BAD_REQUEST, vec!["customer"])
        );
        let (status, complaint) = h
        .call(ADA, Method::POST, "/v1/complaints", Some(json!({"customer": "acme", "service": "email", "raised_by": "Carol", "summary": "Mail outages every Monday", "description": "Third week running."})))
        .await;
        assert_eq!(status, StatusCode::CREATED, "{complaint}");
        assert_eq!(
            (complaint["number"].as_str(), complaint["state"].as_str()),
            (Some("CMP0001001"), Some("recorded"))
        );
        assert_eq!(h.outbox("relationship.complaint.recorded").await.len(), 1);
        let path = format!("/v1/complaints/{}", complaint["number"].as_str().unwrap());

        // It cannot be closed before it is investigated and acted on.
        let (status, problem) = h
            .call(
                RITA,
                Method::POST,
                &format!("{path}/close"),
                Some(json!({"notes": "sorted"})),
            )
            .await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (
                StatusCode::CONFLICT,
                Some("complaint_transition_not_allowed")
            )
        );
        assert_eq!(
            problem["allowed-actions"],
            json!(["investigate", "escalate"])
        );

        // Not closed within five days: escalated to the relationship manager, a day later to the
        // service manager, then no further.
        let tick = crate::scheduler::tick(&h.svc).await.unwrap();
        assert_eq!(tick.escalated, 0);
        h.advance(Duration::hours(121));
        assert_eq!(crate::scheduler::tick(&h.svc).await.unwrap().escalated, 1);
        assert_eq!(
            crate::scheduler::tick(&h.svc).await.unwrap().escalated,
            0,
            "once per level"
        );
        h.advance(Duration::hours(25));
        assert_eq!(crate::scheduler::tick(&h.svc).await.unwrap().escalated, 1);
        h.advance(Duration::hours(25));
        assert_eq!(crate::scheduler::tick(&h.svc).await.unwrap().escalated, 0);
        let escalations = h.outbox("relationship.complaint.escalated").await;
        let to: Vec<(i32, String)> = escalations
            .iter()
            .map(|e| {
                let m = meridian_proto::relationship::v1::ComplaintChanged::decode(
                    e.payload.as_slice(),
                )
                .unwrap();
                (m.escalation_level, m.recipient)
            })
            .collect();
        assert_eq!(
            to,
            [
                (1, "relationship-manager".to_owned()),
                (2, "service-manager".to_owned())
            ]
        );
        let (_, escalated) = h
            .call(ADA, Method::GET, "/v1/complaints?escalated=true", None)
            .await;
        assert_eq!(escalated.as_array().unwrap().len(), 1);

        // Investigated, acted on, closed: each step on its record. Someone else may not.
        let (status, _) = h
            .call(
                ADA,
                Method::POST,
                &format!("{path}/investigate"),
                Some(json!({"notes": "x"})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, body) = h.call(RITA, Method::POST, &format!("{path}/investigate"), Some(json!({"owner": "olga", "notes": "Backups saturate the mail store on Mondays."}))).await;
        assert_eq!(
            (status, body["owner"].as_str()),
            (StatusCode::OK, Some("olga")),
            "{body}"
        );
        let olga = ("olga", &["agent"][..]);
        let (status, _) = h
            .call(
                olga,
                Method::POST,
                &format!("{path}/act"),
                Some(json!({"notes": "Backups moved to Sunday night."})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, closed) = h
            .call(
                olga,
                Method::POST,
                &format!("{path}/close"),
                Some(json!({"notes": "Customer confirmed no outage this Monday."})),
            )
            .await;
        assert_eq!(
            (status, closed["state"].as_str()),
            (StatusCode::OK, Some("closed")),
            "{closed}"
        );
        let actions: Vec<&str> = closed["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(
            actions,
            [
                "recorded",
                "escalated",
                "escalated",
                "escalation_exhausted",
                "investigate",
                "act",
                "close"
            ]
        );
        assert_eq!(h.outbox("relationship.complaint.closed").await.len(), 1);
        let (status, problem) = h
            .call(
                RITA,
                Method::POST,
                &format!("{path}/escalate"),
                Some(json!({"notes": "x"})),
            )
            .await;
        assert_eq!(
            (status, problem["allowed-actions"].clone()),
            (StatusCode::CONFLICT, json!(["reopen"]))
        );
        let (status, _) = h
            .call(
                RITA,
                Method::POST,
                &format!("{path}/nope"),
                Some(json!({"notes": "x"})),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
);

fn closed_incident(id: &str, caller: &str) -> Vec<u8> {
    meridian_proto::resolution::v1::IncidentClosed {
        incident: Some(meridian_proto::resolution::v1::Incident {
            id: id.to_owned(),
            number: format!("INC{id}"),
            caller: caller.to_owned(),
            service: "email".to_owned(),
            ..Default::default()
        }),
    }
    .encode_to_vec()
}

fn token_of(envelope: &meridian_chassis::bus::Envelope) -> (String, String) {
    let sent =
        meridian_proto::relationship::v1::SurveySent::decode(envelope.payload.as_slice()).unwrap();
    let token = sent.link.rsplit('/').next().unwrap().to_owned();
    assert!(
        sent.link
            .starts_with("https://meridian.example.org/v1/surveys/respond/"),
        "{}",
        sent.link
    );
    (token, sent.recipient)
}

on_both_backends!(a_survey_link_answers_once_and_expires, |h| {
    customer(&h).await;
    h.deliver(
        "resolution.incident.closed",
        "i1",
        closed_incident("i1", "carol"),
    )
    .await;
    // The same ticket closing again (reopened and closed) gets no second survey; a system
    // caller gets none.
    h.deliver(
        "resolution.incident.closed",
        "i1",
        closed_incident("i1", "carol"),
    )
    .await;
    h.deliver(
        "resolution.incident.closed",
        "i2",
        closed_incident("i2", "system:control"),
    )
    .await;
    let sent = h.outbox("relationship.survey.sent").await;
    assert_eq!(sent.len(), 1);
    let (token, recipient) = token_of(&sent[0]);
    assert_eq!(recipient, "carol");
    let path = format!("/v1/surveys/respond/{token}");

    // Opening the page (a mail scanner prefetching it) records nothing.
    let (status, page) = h.raw(None, Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&page).contains("INCi1"));
    let (status, _) = h
        .raw(
            None,
            Method::POST,
            &path,
            Some(("application/x-www-form-urlencoded", "score=9".to_owned())),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = h
        .raw(
            None,
            Method::POST,
            &path,
            Some((
                "application/x-www-form-urlencoded",
                "score=4&comment=quick+fix".to_owned(),
            )),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, again) = h
        .raw(
            None,
            Method::POST,
            &path,
            Some(("application/json", r#"{"score": 1}"#.to_owned())),
        )
        .await;
    let again: Value = serde_json::from_slice(&again).unwrap();
    assert_eq!(
        (status, again["code"].as_str()),
        (StatusCode::CONFLICT, Some("survey_already_answered"))
    );
    let recorded = h.outbox("relationship.satisfaction.recorded").await;
    assert_eq!(recorded.len(), 1);
    let score = meridian_proto::relationship::v1::SatisfactionRecorded::decode(
        recorded[0].payload.as_slice(),
    )
    .unwrap();
    assert_eq!(
        (
            score.score,
            score.service.as_str(),
            score.customer.as_str(),
            score.ticket_id.as_str()
        ),
        (4, "email", "acme", "i1")
    );

    // A forged or altered link opens nothing.
    let forged = format!("{}x", &token[..token.len() - 1]);
    for bad in [forged.as_str(), "not-a-token", "0.0.0"] {
        let (status, body) = h
            .raw(
                None,
                Method::POST,
                &format!("/v1/surveys/respond/{bad}"),
                Some(("application/json", r#"{"score": 5}"#.to_owned())),
            )
            .await;
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("survey_link_invalid")),
            "{bad}"
        );
    }

    // A link past its fourteen days has expired.
    h.deliver(
        "resolution.incident.closed",
        "i3",
        closed_incident("i3", "carol"),
    )
    .await;
    let sent = h.outbox("relationship.survey.sent").await;
    let (late, _) = token_of(&sent[1]);
    h.advance(Duration::days(15));
    let (status, page) = h
        .raw(
            None,
            Method::GET,
            &format!("/v1/surveys/respond/{late}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::GONE);
    assert!(String::from_utf8_lossy(&page).contains("closed"));

    // Scores per service and customer, with the response rate.
    let (status, scores) = h
        .call(
            ADA,
            Method::GET,
            "/v1/satisfaction?from=2026-10-01T00:00:00Z",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{scores}");
    assert_eq!(
        (
            scores["surveys_sent"].as_i64(),
            scores["responses"].as_u64(),
            scores["response_rate"].as_f64()
        ),
        (Some(2), Some(1), Some(50.0))
    );
    assert_eq!(scores["groups"][0]["average"].as_f64(), Some(4.0));
    assert_eq!(
        (
            scores["groups"][0]["service"].as_str(),
            scores["groups"][0]["customer"].as_str()
        ),
        (Some("email"), Some("acme"))
    );

    // A periodic survey goes to each contact.
    let (status, body) = h
        .call(RITA, Method::POST, "/v1/customers/acme/surveys", None)
        .await;
    assert_eq!((status, body["sent"].as_u64()), (StatusCode::OK, Some(1)));
});

async fn supplier_and_contract(h: &super::test_support::Harness, ends_on: &str) -> Value {
    h.service("email").await;
    let (status, body) = h
        .call(SAM, Method::POST, "/v1/suppliers", Some(json!({"id": "cloudco", "name": "CloudCo", "kind": "external", "manager": "sam",
            "operates": [{"kind": "service_component", "name": "Mail hosting", "service": "email", "controls": "Monthly service report"}]})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, contract) = h
        .call(SAM, Method::POST, "/v1/contracts", Some(json!({"supplier": "cloudco", "kind": "contract", "title": "Mail hosting", "scope": "Hosted mailboxes",
            "services": ["email"], "targets": [{"metric": "availability", "target": 99.9, "unit": "%", "comparison": "at_least"},
            {"metric": "response_hours", "target": 4, "unit": "hours", "comparison": "at_most"}],
            "starts_on": "2026-01-01", "ends_on": ends_on, "notice_days": 90, "value": 120000, "currency": "EUR", "owner": "olga", "review_interval_days": 180})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{contract}");
    contract
}

on_both_backends!(
    a_contract_raises_its_expiry_ahead_of_its_notice_period,
    |h| {
        // Today is 2026-11-02; the contract ends 2027-04-01 with 90 days' notice (by 2027-01-01),
        // announced 30 days before that: from 2026-12-02.
        let contract = supplier_and_contract(&h, "2027-04-01").await;
        assert_eq!(contract["notice_by"], "2027-01-01");
        let id = contract["id"].as_str().unwrap().to_owned();
        assert_eq!(crate::scheduler::tick(&h.svc).await.unwrap().expiring, 0);
        h.advance(Duration::days(29));
        assert_eq!(crate::scheduler::tick(&h.svc).await.unwrap().expiring, 0);
        h.advance(Duration::days(1));
        assert_eq!(crate::scheduler::tick(&h.svc).await.unwrap().expiring, 1);
        assert_eq!(
            crate::scheduler::tick(&h.svc).await.unwrap().expiring,
            0,
            "announced once"
        );
        let events = h.outbox("relationship.contract.expiring").await;
        let notice =
            meridian_proto::relationship::v1::ContractExpiry::decode(events[0].payload.as_slice())
                .unwrap();
        assert_eq!(
            (
                notice.recipient.as_str(),
                notice.notice_by.as_str(),
                notice.days_left
            ),
            ("olga", "2027-01-01", 120)
        );
        let (_, soon) = h
            .call(
                ADA,
                Method::GET,
                "/v1/contracts?expiring_within_days=150",
                None,
            )
            .await;
        assert_eq!(soon.as_array().unwrap().len(), 1);

        // Past its end it expires; nothing is measured against an expired contract.
        h.advance(Duration::days(121));
        let tick = crate::scheduler::tick(&h.svc).await.unwrap();
        assert_eq!(tick.expired, 1);
        assert_eq!(h.outbox("relationship.contract.expired").await.len(), 1);
        let measure = json!({"metric": "availability", "value": 99.95, "period_from": "2027-03-01", "period_to": "2027-03-31"});
        let (status, problem) = h
            .call(
                SAM,
                Method::POST,
                &format!("/v1/contracts/{id}/measurements"),
                Some(measure.clone()),
            )
            .await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (StatusCode::CONFLICT, Some("contract_not_active"))
        );

        // Renewed, it is active again and will be announced again.
        let (status, renewed) = h
            .call(
                SAM,
                Method::POST,
                &format!("/v1/contracts/{id}/renew"),
                Some(json!({"ends_on": "2028-04-01", "notes": "Two more years"})),
            )
            .await;
        assert_eq!(
            (
                status,
                renewed["state"].as_str(),
                renewed["expiry_notified"].as_bool()
            ),
            (StatusCode::OK, Some("active"), Some(false)),
            "{renewed}"
        );
        let (status, _) = h
            .call(
                SAM,
                Method::POST,
                &format!("/v1/contracts/{id}/measurements"),
                Some(measure),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
);

fn completed(review: &str) -> Vec<u8> {
    meridian_proto::workflow::v1::InstanceCompleted {
        instance_id: "wf-1".to_owned(),
        definition: "supplier-review".to_owned(),
        business_key: review.to_owned(),
        outcome: "improvement_planned".to_owned(),
        variables_json: json!({
            "scorecard": {"quality": 3, "delivery": 4, "responsiveness": 2, "outcome": "submitted", "by": "olivia"},
            "review": {"assessment": "Response times slipped in March.", "outcome": "needs_improvement", "by": "sam"},
            "sign_off": {"outcome": "signed_off", "by": "olga"},
            "follow_up": {"actions": "- Weekly response report\n- Escalation contact named", "due_date": "2027-01-15", "outcome": "agreed", "by": "sam"},
        })
        .to_string(),
    }
    .encode_to_vec()
}

on_both_backends!(
    a_supplier_review_assembles_its_scorecard_and_keeps_its_record,
    |h| {
        let contract = supplier_and_contract(&h, "2028-01-01").await;
        let id = contract["id"].as_str().unwrap().to_owned();
        let measurements = format!("/v1/contracts/{id}/measurements");
        let (status, problem) = h.call(SAM, Method::POST, &measurements, Some(json!({"metric": "uptime", "value": 1, "period_from": "2026-10-01", "period_to": "2026-10-31"}))).await;
        assert_eq!(
            (status, names(&problem)),
            (StatusCode::BAD_REQUEST, vec!["metric"])
        );
        for (metric, value) in [
            ("availability", 99.95),
            ("availability", 99.2),
            ("response_hours", 6.0),
        ] {
            let (status, m) = h.call(SAM, Method::POST, &measurements, Some(json!({"metric": metric, "value": value, "period_from": "2026-10-01", "period_to": "2026-10-31"}))).await;
            assert_eq!(status, StatusCode::CREATED, "{m}");
        }
        let (_, disputed) = h.call(SAM, Method::POST, "/v1/disputes", Some(json!({"contract": contract["number"], "summary": "Credit for the October outage", "details": "Refused so far."}))).await;
        assert_eq!(disputed["number"], "DSP0001001");

        // Started by hand; the scorecard counts the measurements meeting each target.
        let (status, review) = h
            .call(
                SAM,
                Method::POST,
                &format!("/v1/contracts/{id}/reviews"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{review}");
        assert_eq!(
            (
                review["scorecard"][0]["measurements"].as_i64(),
                review["scorecard"][0]["met"].as_i64()
            ),
            (Some(2), Some(1))
        );
        assert_eq!(review["scorecard"][1]["met"].as_i64(), Some(0));
        let (status, problem) = h
            .call(
                SAM,
                Method::POST,
                &format!("/v1/contracts/{id}/reviews"),
                None,
            )
            .await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (StatusCode::CONFLICT, Some("supplier_review_in_progress"))
        );
        let due = h.outbox("relationship.supplier.review_due").await;
        let event =
            meridian_proto::relationship::v1::SupplierReviewDue::decode(due[0].payload.as_slice())
                .unwrap();
        assert_eq!(
            (
                event.contract_owner.as_str(),
                event.open_disputes,
                event.scorecard.len()
            ),
            ("olga", 1, 2)
        );
        // The workflow engine reads the event as JSON: the trigger's business key and variables.
        let data = meridian_proto::decode_json("relationship.supplier.review_due", &due[0].payload)
            .unwrap()
            .unwrap();
        assert_eq!(data["review_id"], review["id"]);

        // The workflow completes: ratings, assessment, sign-off and follow-up actions recorded.
        let review_id = review["id"].as_str().unwrap().to_owned();
        h.deliver(
            "workflow.instance.completed",
            &review_id,
            completed(&review_id),
        )
        .await;
        let (status, record) = h
            .call(
                ADA,
                Method::GET,
                &format!("/v1/supplier-reviews/{review_id}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            (
                record["state"].as_str(),
                record["outcome"].as_str(),
                record["signed_off_by"].as_str()
            ),
            (Some("completed"), Some("improvement_planned"), Some("olga")),
            "{record}"
        );
        assert_eq!(record["ratings"]["responsiveness"], 2);
        let actions: Vec<&str> = record["follow_up_actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["description"].as_str().unwrap())
            .collect();
        assert_eq!(
            actions,
            ["Weekly response report", "Escalation contact named"]
        );
        assert_eq!(record["follow_up_actions"][0]["due_on"], "2027-01-15");
        assert_eq!(
            h.outbox("relationship.supplier.review_completed")
                .await
                .len(),
            1
        );

        // The scheduler starts the next review when it falls due (180 days after the last one
        // started), once; the one after is due 180 days later.
        h.advance(Duration::days(181));
        assert_eq!(crate::scheduler::tick(&h.svc).await.unwrap().reviews, 1);
        assert_eq!(crate::scheduler::tick(&h.svc).await.unwrap().reviews, 0);
        let (_, contract) = h
            .call(ADA, Method::GET, &format!("/v1/contracts/{id}"), None)
            .await;
        assert_eq!(contract["next_review_due"], "2027-10-29", "{contract}");
    }
);

on_both_backends!(bad_supplier_input_is_refused_and_named, |h| {
    h.service("email").await;
    let (status, problem) = h
        .call(SAM, Method::POST, "/v1/suppliers", Some(json!({"id": "Bad Id", "name": "", "kind": "customer", "manager": "sam", "operates": [{"kind": "team", "name": "x"}]})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        names(&problem),
        ["id", "name", "customer", "operates[0].kind"]
    );
    let (status, _) = h
        .call(SAM, Method::POST, "/v1/suppliers", Some(json!({"id": "infra", "name": "Infrastructure team", "kind": "internal", "manager": "sam"})))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let contract = json!({"supplier": "infra", "kind": "contract", "title": "Hosting", "scope": "VMs", "starts_on": "2026-01-01", "ends_on": "2025-01-01", "owner": "olga",
        "targets": [{"metric": "availability", "target": 99.9, "comparison": "more"}], "value": 10, "currency": "euro"});
    let (status, problem) = h
        .call(SAM, Method::POST, "/v1/contracts", Some(contract.clone()))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        names(&problem),
        ["ends_on", "currency", "targets[0].comparison"]
    );
    let mut fixed = contract;
    fixed["ends_on"] = json!("2027-01-01");
    fixed["currency"] = json!("EUR");
    fixed["targets"][0]["comparison"] = json!("at_least");
    let (status, problem) = h
        .call(SAM, Method::POST, "/v1/contracts", Some(fixed.clone()))
        .await;
    assert_eq!(
        (status, names(&problem)),
        (StatusCode::BAD_REQUEST, vec!["kind"]),
        "an internal supplier is under an agreement"
    );
    fixed["kind"] = json!("internal_agreement");
    fixed["services"] = json!(["nope"]);
    let (status, problem) = h
        .call(SAM, Method::POST, "/v1/contracts", Some(fixed))
        .await;
    assert_eq!(
        (status, names(&problem)),
        (StatusCode::BAD_REQUEST, vec!["services[0]"])
    );
    for (path, field) in [
        ("/v1/contracts?limit=0", "limit"),
        ("/v1/contracts?state=open", "state"),
        ("/v1/suppliers?colour=red", "colour"),
    ] {
        let (status, problem) = h.call(ADA, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert!(problem.to_string().contains(field), "{path}: {problem}");
    }
    let (status, problem) = h
        .call(ADA, Method::GET, "/v1/contracts/CON9999999", None)
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("contract_not_found"))
    );
    let (status, _) = h
        .call(
            ADA,
            Method::POST,
            "/v1/disputes",
            Some(json!({"contract": "x", "summary": "s", "details": "d"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = h.raw(None, Method::GET, "/v1/suppliers", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
});

on_both_backends!(guessing_survey_links_is_held_back, |h| {
    customer(&h).await;
    h.deliver(
        "resolution.incident.closed",
        "i9",
        closed_incident("i9", "carol"),
    )
    .await;
    let sent = h.outbox("relationship.survey.sent").await;
    let (token, _) = token_of(&sent[0]);
    for i in 0..20 {
        let (status, _) = h
            .raw(
                None,
                Method::GET,
                &format!(
                    "/v1/surveys/respond/{}.1.{i}",
                    uuid::Uuid::now_v7().simple()
                ),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (status, body) = h
        .raw(
            None,
            Method::POST,
            &format!("/v1/surveys/respond/{token}"),
            Some(("application/json", r#"{"score": 5}"#.to_owned())),
        )
        .await;
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_attempts"))
    );
    assert!(
        h.outbox("relationship.satisfaction.recorded")
            .await
            .is_empty(),
        "nothing recorded"
    );
});
