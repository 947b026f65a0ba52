//! `make bench`: the in-memory interpreter on the change advisory board definition, on one
//! core (this thread): start, risk assessment, three CAB votes in parallel (the quorum of two
//! closes the third), the gateway, the scheduling command and its reply, the end. Also the
//! stored state of one instance, in bytes, at its largest (three open votes) and at the end.
//! Figures go to the file named by the first argument (or stdout).
#![expect(clippy::unwrap_used, reason = "a benchmark fails loudly")]

use std::io::Write;
use std::time::Instant;

use chrono::{DateTime, Utc};
use meridian_workflow::definition::load;
use meridian_workflow::engine::{self, Actor, Effect, Instance, NoDirectory, Start};
use serde_json::json;
use uuid::Uuid;

fn actor(id: &str, roles: &[&str]) -> Actor {
    Actor {
        id: id.to_owned(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        admin: false,
    }
}

/// One CAB instance from start to end, with `votes` approvals; returns its largest and final
/// state sizes.
fn run_one(
    compiled: &meridian_workflow::definition::Compiled,
    now: DateTime<Utc>,
    people: &[Actor; 4],
    votes: usize,
    measure: bool,
) -> (usize, usize) {
    let variables = json!({"change": {"id": "CHG0001234", "title": "Upgrade PostgreSQL to 17", "risk_hint": "medium"}, "requester": "rita", "cab_members": ["ann", "ben", "cat"]});
    let (mut instance, _) = engine::start(
        compiled,
        Start {
            id: Uuid::now_v7(),
            business_key: "CHG0001234".to_owned(),
            initiator: "rita".to_owned(),
            variables: variables.as_object().unwrap().clone(),
        },
        now,
        &NoDirectory,
    )
    .unwrap();
    let complete =
        |instance: &mut Instance, who: &Actor, outcome: &str, fields: serde_json::Value| {
            let task = instance
                .tasks
                .iter()
                .find(|t| engine::may_work(t, who))
                .map(|t| t.id)
                .unwrap();
            engine::complete(
                compiled,
                instance,
                task,
                who,
                outcome,
                None,
                fields.as_object().unwrap().clone(),
                now,
                &NoDirectory,
            )
            .unwrap()
        };
    let [manager, ann, ben, cat] = people;
    complete(&mut instance, manager, "assessed", json!({"risk": "high"}));
    let largest = if measure {
        serde_json::to_vec(&instance).unwrap().len()
    } else {
        0
    };
    let mut effects = complete(&mut instance, ann, "approved", json!({}));
    for voter in [ben, cat].into_iter().take(votes - 1) {
        effects = complete(&mut instance, voter, "approved", json!({}));
    }
    let correlation = effects
        .iter()
        .find_map(|e| match e {
            Effect::Command { correlation_id, .. } => Some(correlation_id.clone()),
            _ => None,
        })
        .unwrap();
    engine::reply(
        compiled,
        &mut instance,
        &correlation,
        Ok(json!({})),
        now,
        &NoDirectory,
    )
    .unwrap();
    assert_eq!(instance.outcome.as_deref(), Some("approved"));
    let last = if measure {
        serde_json::to_vec(&instance).unwrap().len()
    } else {
        0
    };
    (largest, last)
}

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows");
    let source = std::fs::read_to_string(root.join("change-advisory-board.yaml")).unwrap();
    let compiled = load(&source).unwrap();
    let now = meridian_chassis::clock::Clock::now(&meridian_chassis::SystemClock);
    let people = [
        actor("max", &["change-manager"]),
        actor("ann", &[]),
        actor("ben", &[]),
        actor("cat", &[]),
    ];
    let (largest, last) = run_one(&compiled, now, &people, 2, true);
    // The same definition with a quorum of all three: every member votes, as SpiffWorkflow
    // must (scripts/compare).
    let all_votes = load(&source.replace("approved >= 2'", "approved >= 3'")).unwrap();
    let measure = |compiled: &meridian_workflow::definition::Compiled, votes: usize| {
        for _ in 0..2_000 {
            run_one(compiled, now, &people, votes, false);
        }
        let runs = 30_000;
        let started = Instant::now();
        for _ in 0..runs {
            run_one(compiled, now, &people, votes, false);
        }
        f64::from(runs) / started.elapsed().as_secs_f64()
    };
    let per_second = measure(&compiled, 2);
    let three_votes = measure(&all_votes, 3);
    let report = format!(
        "# Workflow interpreter benchmark ({})\n\n\
         The change advisory board definition in memory on one thread: start, assessment, three\n\
         CAB votes in parallel (two approve, the third is withdrawn), gateway, scheduling command\n\
         and reply, end. Release build.\n\n\
         | figure | value |\n|---|---|\n\
         | instances per second (one core) | {per_second:.0} |\n\
         | microseconds per instance | {:.1} |\n\
         | instances per second, every member voting (three votes) | {three_votes:.0} |\n\
         | state of one instance, largest (three open votes), JSON | {largest} bytes |\n\
         | state of one instance, completed, JSON | {last} bytes |\n",
        now.format("%Y-%m-%dT%H:%MZ"),
        1e6 / per_second,
    );
    if let Some(path) = std::env::args().skip(1).find(|a| !a.starts_with("--")) {
        std::fs::File::create(path)
            .unwrap()
            .write_all(report.as_bytes())
            .unwrap();
    }
    print!("{report}");
}
