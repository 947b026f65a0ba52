//! Service requests on both backends: items from catalogue events, the form checked, every
//! lifecycle path and refused transition, who may act, and a workflow-driven item's actions
//! refused by REST.

use actix_web::http::{Method, StatusCode};
use meridian_proto::Message;
use meridian_proto::service_level::v1::{ServicePublished, ServiceStatus};
use serde_json::{Value, json};

use crate::api::test_support::{Harness, on_both_backends};

const RITA: (&str, &[&str]) = ("rita", &["requester"]);
const AMY: (&str, &[&str]) = ("amy", &["request-approver"]);
const PAT: (&str, &[&str]) = ("pat", &["agent"]);

/// Publishes the email service (revision `revision`, `status`) with its request items.
async fn publish(h: &Harness, revision: i64, status: ServiceStatus, items: &Value) {
    let envelope = meridian_chassis::bus::Envelope {
        id: uuid::Uuid::now_v7(),
        event_type: "service_level.service.published".to_owned(),
        source: "/meridian/service-level".to_owned(),
        subject: "email".to_owned(),
        time: meridian_chassis::Clock::now(&meridian_chassis::SystemClock),
        correlation_id: None,
        causation_id: None,
        actor: Some("sam".to_owned()),
        payload: ServicePublished {
            id: "email".to_owned(),
            name: "E-mail".to_owned(),
            status: status.into(),
            revision,
            request_items_json: items.to_string(),
            ..Default::default()
        }
        .encode_to_vec(),
    };
    crate::events::consume::apply(&h.svc.db, &meridian_chassis::SystemClock, envelope)
        .await
        .unwrap();
}

fn items() -> Value {
    json!([
        {"id": "new-mailbox", "name": "A new mailbox", "needs_approval": true,
         "fields": {"owner": {"type": "string", "required": true}, "quota_gb": {"type": "integer"}}},
        {"id": "password-reset", "name": "Password reset"},
        {"id": "shared-mailbox", "name": "A shared mailbox", "needs_approval": true,
         "workflow": "request-fulfilment", "fields": {"members": {"type": "string_list"}}},
    ])
}

async fn order(h: &Harness, item: &str, fields: Value) -> Value {
    let (status, body) = h
        .call_as(
            RITA,
            Method::POST,
            "/v1/requests",
            Some(json!({"service": "email", "item": item, "fields": fields})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

async fn act(
    h: &Harness,
    who: (&str, &[&str]),
    request: &Value,
    action: &str,
    body: Value,
) -> (StatusCode, Value) {
    let path = format!("/v1/requests/{}/{action}", request["id"].as_str().unwrap());
    h.call_as(who, Method::POST, &path, Some(body)).await
}

fn names(problem: &Value) -> Vec<String> {
    problem["invalid-params"]
        .as_array()
        .map(|params| {
            params
                .iter()
                .filter_map(|p| p["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

on_both_backends!(
    an_item_needing_approval_is_approved_by_someone_else_then_fulfilled_and_closed,
    |h| {
        publish(&h, 1, ServiceStatus::Live, &items()).await;
        let (_, offered) = h
            .call_as(RITA, Method::GET, "/v1/request-items?service=email", None)
            .await;
        assert_eq!(offered.as_array().map(Vec::len), Some(3), "{offered}");
        let request = order(&h, "new-mailbox", json!({"owner": "rita", "quota_gb": 5})).await;
        assert!(request["number"].as_str().unwrap().starts_with("REQ"));
        assert_eq!(
            (
                request["state"].as_str(),
                request["requested_for"].as_str(),
                request["allowed_actions"].clone()
            ),
            (
                Some("submitted"),
                Some("rita"),
                json!(["approve", "reject", "cancel"])
            )
        );
        // Fulfilment waits for the approval.
        let (status, refused) = act(&h, PAT, &request, "start", json!({})).await;
        assert_eq!(
            (status, refused["code"].as_str()),
            (StatusCode::CONFLICT, Some("request_transition_not_allowed"))
        );
        // The requester cannot approve, even holding the approver role; an agent lacks it.
        let (status, body) = act(
            &h,
            ("rita", &["requester", "request-approver"]),
            &request,
            "approve",
            json!({}),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("segregation_of_duties"))
        );
        let (status, body) = act(&h, PAT, &request, "approve", json!({})).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden"))
        );
        let (status, approved) = act(&h, AMY, &request, "approve", json!({"comment": "ok"})).await;
        assert_eq!(status, StatusCode::OK, "{approved}");
        assert_eq!(
            (approved["state"].as_str(), approved["approved_by"].as_str()),
            (Some("approved"), Some("amy"))
        );
        // Only agents fulfil.
        let (status, _) = act(&h, RITA, &request, "start", json!({})).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, started) = act(&h, PAT, &request, "start", json!({})).await;
        assert_eq!(
            (status, started["state"].as_str()),
            (StatusCode::OK, Some("in_fulfilment"))
        );
        let (status, missing) = act(&h, PAT, &request, "fulfil", json!({})).await;
        assert_eq!(
            (status, names(&missing)),
            (StatusCode::BAD_REQUEST, vec!["notes".to_owned()])
        );
        let (status, fulfilled) = act(
            &h,
            PAT,
            &request,
            "fulfil",
            json!({"notes": "mailbox rita@ created"}),
        )
        .await;
        assert_eq!(
            (
                status,
                fulfilled["state"].as_str(),
                fulfilled["notes"].as_str()
            ),
            (
                StatusCode::OK,
                Some("fulfilled"),
                Some("mailbox rita@ created")
            )
        );
        let (status, _) = act(&h, RITA, &request, "cancel", json!({"comment": "late"})).await;
        assert_eq!(
            status,
            StatusCode::CONFLICT,
            "a delivery cannot be withdrawn"
        );
        // The requester confirms the delivery.
        let (status, closed) = act(&h, RITA, &request, "close", json!({})).await;
        assert_eq!(
            (
                status,
                closed["state"].as_str(),
                closed["allowed_actions"].clone()
            ),
            (StatusCode::OK, Some("closed"), json!([]))
        );
        let kinds: Vec<&str> = closed["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["kind"].as_str())
            .collect();
        assert_eq!(
            kinds,
            [
                "submitted",
                "approved",
                "fulfilment_started",
                "fulfilled",
                "closed"
            ]
        );
        let events = outbox_types(&h).await;
        for event in [
            "submitted",
            "approved",
            "fulfilment_started",
            "fulfilled",
            "closed",
        ] {
            assert!(
                events.contains(&format!("resolution.request.{event}")),
                "{event} in {events:?}"
            );
        }
    }
);

async fn outbox_types(h: &Harness) -> Vec<String> {
    h.outbox()
        .await
        .into_iter()
        .map(|envelope| envelope.event_type)
        .collect()
}

on_both_backends!(
    orders_are_checked_against_the_catalogue_and_the_items_form,
    |h| {
        publish(&h, 1, ServiceStatus::Live, &items()).await;
        let cases = [
            (
                json!({"service": "email", "item": "new-mailbox", "fields": {}}),
                StatusCode::BAD_REQUEST,
                "invalid_body",
                "fields.owner",
            ),
            (
                json!({"service": "email", "item": "new-mailbox", "fields": {"owner": "x", "quota_gb": "lots"}}),
                StatusCode::BAD_REQUEST,
                "invalid_body",
                "fields.quota_gb",
            ),
            (
                json!({"service": "email", "item": "new-mailbox", "fields": {"owner": "x", "colour": "red"}}),
                StatusCode::BAD_REQUEST,
                "invalid_body",
                "fields.colour",
            ),
            (
                json!({"service": "email", "item": "pony", "fields": {}}),
                StatusCode::BAD_REQUEST,
                "request_item_not_found",
                "item",
            ),
            (
                json!({"service": "", "item": "x"}),
                StatusCode::BAD_REQUEST,
                "invalid_body",
                "service",
            ),
        ];
        for (body, status, code, field) in cases {
            let (got, problem) = h
                .call_as(RITA, Method::POST, "/v1/requests", Some(body.clone()))
                .await;
            assert_eq!(
                (got, problem["code"].as_str(), names(&problem)),
                (status, Some(code), vec![field.to_owned()]),
                "{body}"
            );
        }
        // A newer publication withdraws an item; a retired service offers nothing.
        publish(&h, 2, ServiceStatus::Live, &json!([items()[1]])).await;
        let (status, problem) = h
            .call_as(
                RITA,
                Method::POST,
                "/v1/requests",
                Some(json!({"service": "email", "item": "new-mailbox", "fields": {"owner": "x"}})),
            )
            .await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("request_item_not_found"))
        );
        publish(&h, 1, ServiceStatus::Live, &items()).await;
        let (_, offered) = h
            .call_as(RITA, Method::GET, "/v1/request-items", None)
            .await;
        assert_eq!(
            offered.as_array().map(Vec::len),
            Some(1),
            "an older revision changes nothing: {offered}"
        );
        publish(&h, 3, ServiceStatus::Retired, &items()).await;
        let (_, offered) = h
            .call_as(RITA, Method::GET, "/v1/request-items", None)
            .await;
        assert_eq!(offered, json!([]));
        // Nothing was written by the refused orders.
        let (_, all) = h.call_as(PAT, Method::GET, "/v1/requests", None).await;
        assert_eq!(all, json!([]));
    }
);

on_both_backends!(
    requests_are_rejected_or_cancelled_with_a_reason_and_seen_only_by_their_parties,
    |h| {
        publish(&h, 1, ServiceStatus::Live, &items()).await;
        let first = order(&h, "new-mailbox", json!({"owner": "rita"})).await;
        let (status, missing) = act(&h, AMY, &first, "reject", json!({})).await;
        assert_eq!(
            (status, names(&missing)),
            (StatusCode::BAD_REQUEST, vec!["comment".to_owned()])
        );
        let (status, rejected) = act(
            &h,
            AMY,
            &first,
            "reject",
            json!({"comment": "use a shared mailbox"}),
        )
        .await;
        assert_eq!(
            (status, rejected["state"].as_str()),
            (StatusCode::OK, Some("rejected"))
        );
        let (status, _) = act(&h, PAT, &first, "start", json!({})).await;
        assert_eq!(status, StatusCode::CONFLICT, "rejected is final");
        // No approval needed: fulfilment may start at once; the requester withdraws it.
        let second = order(&h, "password-reset", json!({})).await;
        assert_eq!(second["allowed_actions"], json!(["start", "cancel"]));
        let (status, _) = act(&h, AMY, &second, "approve", json!({})).await;
        assert_eq!(status, StatusCode::CONFLICT);
        let (status, cancelled) = act(
            &h,
            RITA,
            &second,
            "cancel",
            json!({"comment": "remembered it"}),
        )
        .await;
        assert_eq!(
            (status, cancelled["state"].as_str()),
            (StatusCode::OK, Some("cancelled"))
        );
        // Someone else's requests are not even visible to another requester.
        let other = ("otto", &["requester"][..]);
        let (_, mine) = h.call_as(other, Method::GET, "/v1/requests", None).await;
        assert_eq!(mine, json!([]));
        let path = format!("/v1/requests/{}", first["number"].as_str().unwrap());
        let (status, body) = h.call_as(other, Method::GET, &path, None).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("request_not_found"))
        );
        let (_, theirs) = h
            .call_as(RITA, Method::GET, "/v1/requests?state=rejected", None)
            .await;
        assert_eq!(theirs.as_array().map(Vec::len), Some(1));
        let (status, body) = h
            .call_as(PAT, Method::GET, "/v1/requests?state=done", None)
            .await;
        assert_eq!(
            (status, names(&body)),
            (StatusCode::BAD_REQUEST, vec!["state".to_owned()])
        );
        for (path, field) in [
            ("/v1/requests?limit=0", "limit"),
            ("/v1/request-items?colour=red", "colour"),
        ] {
            let (status, body) = h.call_as(PAT, Method::GET, path, None).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
            assert!(body.to_string().contains(field), "{path}: {body}");
        }
        let (status, body) = h
            .call_as(
                RITA,
                Method::POST,
                "/v1/requests",
                Some(json!({"service": "email", "item": "password-reset", "priority": 1})),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "unknown fields are refused: {body}"
        );
        let (status, body) = act(&h, PAT, &first, "teleport", json!({})).await;
        assert_eq!(
            (status, names(&body)),
            (StatusCode::BAD_REQUEST, vec!["action".to_owned()])
        );
    }
);

on_both_backends!(
    a_workflow_driven_request_is_approved_and_fulfilled_only_by_its_workflow,
    |h| {
        publish(&h, 1, ServiceStatus::Live, &items()).await;
        let request = order(&h, "shared-mailbox", json!({"members": ["rita", "otto"]})).await;
        assert_eq!(request["workflow"], "request-fulfilment");
        assert_eq!(request["allowed_actions"], json!(["cancel"]));
        let (status, refused) = act(&h, AMY, &request, "approve", json!({})).await;
        assert_eq!(
            (
                status,
                refused["code"].as_str(),
                refused["allowed-actions"].clone()
            ),
            (
                StatusCode::CONFLICT,
                Some("request_transition_not_allowed"),
                json!(["cancel"])
            ),
            "{refused}"
        );
    }
);

/// Sends the workflow's command for `request` and returns the replies in the outbox so far.
async fn command(
    h: &Harness,
    request: &Value,
    correlation: &str,
    input: Value,
) -> Vec<meridian_proto::workflow::v1::CommandReply> {
    let envelope = meridian_chassis::bus::Envelope {
        id: uuid::Uuid::now_v7(),
        event_type: crate::events::commands::TRANSITION.to_owned(),
        source: "/meridian/workflow".to_owned(),
        subject: request["id"].as_str().unwrap().to_owned(),
        time: meridian_chassis::Clock::now(&meridian_chassis::SystemClock),
        correlation_id: Some(correlation.to_owned()),
        causation_id: None,
        actor: Some("system:workflow".to_owned()),
        payload: meridian_proto::workflow::v1::Command {
            correlation_id: correlation.to_owned(),
            command: crate::events::commands::TRANSITION.to_owned(),
            instance_id: uuid::Uuid::now_v7().to_string(),
            business_key: request["id"].as_str().unwrap().to_owned(),
            input_json: input.to_string(),
            attempt: 1,
        }
        .encode_to_vec(),
    };
    for _ in 0..2 {
        // Delivered twice: applied once.
        crate::events::commands::apply(&h.svc, envelope.clone())
            .await
            .unwrap();
    }
    h.outbox()
        .await
        .into_iter()
        .filter(|e| e.event_type == crate::events::commands::TRANSITIONED)
        .map(|e| meridian_proto::workflow::v1::CommandReply::decode(e.payload.as_slice()).unwrap())
        .collect()
}

on_both_backends!(
    the_workflows_commands_move_the_request_once_and_answer_every_time,
    |h| {
        publish(&h, 1, ServiceStatus::Live, &items()).await;
        let request = order(&h, "shared-mailbox", json!({"members": ["otto"]})).await;
        // Fulfilment cannot start before the approval: refused, with the reason.
        let replies = command(&h, &request, "c-1", json!({"action": "start"})).await;
        assert_eq!(replies.len(), 1, "one reply for a command delivered twice");
        assert!(!replies[0].ok);
        assert!(
            replies[0]
                .error
                .starts_with("request_transition_not_allowed"),
            "{}",
            replies[0].error
        );
        let replies = command(
            &h,
            &request,
            "c-2",
            json!({"action": "approve", "actor": "amy", "comment": "fine"}),
        )
        .await;
        assert!(replies[1].ok, "{}", replies[1].error);
        assert_eq!(replies[1].correlation_id, "c-2");
        let output: Value = serde_json::from_str(&replies[1].output_json).unwrap();
        assert_eq!(output["state"], "approved");
        // A retry whose first reply was lost: answered ok, no second change.
        let replies = command(
            &h,
            &request,
            "c-3",
            json!({"action": "approve", "actor": "amy"}),
        )
        .await;
        assert!(replies[2].ok, "{}", replies[2].error);
        let replies = command(&h, &request, "c-4", json!({"action": "fulfil"})).await;
        assert!(!replies[3].ok);
        let replies = command(&h, &request, "c-5", json!({"action": "teleport"})).await;
        assert!(
            replies[4].error.contains("input.action"),
            "{}",
            replies[4].error
        );
        let path = format!("/v1/requests/{}", request["id"].as_str().unwrap());
        let (_, now) = h.call_as(RITA, Method::GET, &path, None).await;
        let kinds: Vec<&str> = now["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["kind"].as_str())
            .collect();
        assert_eq!(kinds, ["submitted", "approved"]);
        assert_eq!(now["approved_by"], "amy");
        // Fulfilment needs its notes.
        command(&h, &request, "c-6", json!({"action": "start"})).await;
        let replies = command(
            &h,
            &request,
            "c-7",
            json!({"action": "fulfil", "actor": "pat"}),
        )
        .await;
        assert!(replies[6].error.contains("notes"), "{}", replies[6].error);
        let mut other = request.clone();
        other["id"] = json!("no-such-request");
        let replies = command(&h, &other, "c-8", json!({"action": "start"})).await;
        assert_eq!(replies[7].error, "no request no-such-request");
    }
);
