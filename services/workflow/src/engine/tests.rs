//! The interpreter, node type by node type, on the shipped definitions and small ones; time is
//! injected.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Value as Json, json};

use super::*;
use crate::definition::{Compiled, load};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap()
}

fn shipped(name: &str) -> Compiled {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../workflows")
        .join(format!("{name}.yaml"));
    load(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn inline(source: &str) -> Compiled {
    load(source).unwrap_or_else(|e| panic!("{e:#?}"))
}

fn vars(value: Json) -> serde_json::Map<String, Json> {
    value.as_object().unwrap().clone()
}

fn user(id: &str, roles: &[&str]) -> Actor {
    Actor {
        id: id.to_owned(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        admin: false,
    }
}

/// An instance under test with its definition and the effects so far.
struct Case {
    compiled: Compiled,
    instance: Instance,
    effects: Vec<Effect>,
    now: DateTime<Utc>,
}

impl Case {
    fn start(compiled: Compiled, initiator: &str, variables: Json) -> Self {
        let (instance, effects) = start(
            &compiled,
            Start {
                id: Uuid::now_v7(),
                business_key: "CHG0001".to_owned(),
                initiator: initiator.to_owned(),
                variables: vars(variables),
            },
            t0(),
            &NoDirectory,
        )
        .unwrap();
        Self {
            compiled,
            instance,
            effects,
            now: t0(),
        }
    }

    fn open(&self, node: &str) -> Vec<Task> {
        self.instance
            .tasks
            .iter()
            .filter(|t| t.node == node)
            .cloned()
            .collect()
    }

    fn task(&self, node: &str) -> Task {
        let open = self.open(node);
        assert_eq!(open.len(), 1, "open tasks at {node}: {open:#?}");
        open.into_iter().next().unwrap()
    }

    fn try_complete(
        &mut self,
        task: &Task,
        actor: &Actor,
        outcome: &str,
        fields: Json,
    ) -> Result<Vec<Effect>, EngineError> {
        let effects = complete(
            &self.compiled,
            &mut self.instance,
            task.id,
            actor,
            outcome,
            None,
            vars(fields),
            self.now,
            &NoDirectory,
        )?;
        self.effects.extend(effects.clone());
        Ok(effects)
    }

    fn complete(&mut self, node: &str, actor: &Actor, outcome: &str, fields: Json) {
        let task = self
            .open(node)
            .into_iter()
            .find(|t| may_work(t, actor))
            .unwrap_or_else(|| panic!("{} has no open task at {node}", actor.id));
        self.try_complete(&task, actor, outcome, fields).unwrap();
    }

    /// Advances the clock to `at` and fires every timer due by then, in order.
    fn advance(&mut self, by: Duration) {
        self.now += by;
        loop {
            let mut due: Vec<&Timer> = self
                .instance
                .timers
                .iter()
                .filter(|t| t.due_at <= self.now)
                .collect();
            due.sort_by_key(|t| (t.due_at, t.id));
            let Some(id) = due.first().map(|t| t.id) else {
                break;
            };
            let effects = fire(
                &self.compiled,
                &mut self.instance,
                id,
                self.now,
                &NoDirectory,
            )
            .unwrap();
            self.effects.extend(effects);
        }
    }

    fn commands(&self) -> Vec<(String, String, Json, u32)> {
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::Command {
                    command,
                    correlation_id,
                    input,
                    attempt,
                    ..
                } => Some((
                    command.clone(),
                    correlation_id.clone(),
                    input.clone(),
                    *attempt,
                )),
                _ => None,
            })
            .collect()
    }

    fn reply(&mut self, result: Result<Json, String>) {
        let (_, correlation, _, _) = self.commands().pop().unwrap();
        let effects = reply(
            &self.compiled,
            &mut self.instance,
            &correlation,
            result,
            self.now,
            &NoDirectory,
        )
        .unwrap();
        self.effects.extend(effects);
    }
}

fn cab(members: &[&str]) -> Case {
    Case::start(
        shipped("change-advisory-board"),
        "rita",
        json!({"change": {"title": "Upgrade the database"}, "requester": "rita", "cab_members": members}),
    )
}

#[test]
fn a_low_risk_change_is_approved_by_the_change_manager_and_scheduled() {
    let mut case = cab(&["ann", "ben", "cat"]);
    assert_eq!(case.effects.first(), Some(&Effect::Started));
    let triage = case.task("triage");
    assert_eq!(triage.candidates.roles, ["change-manager"]);
    assert_eq!(triage.forbidden, ["rita"]);
    assert_eq!(triage.due_at, Some(t0() + Duration::days(1)));
    let manager = user("max", &["change-manager"]);
    case.complete("triage", &manager, "assessed", json!({"risk": "low"}));
    case.complete("manager_approval", &manager, "approved", json!({}));
    let commands = case.commands();
    assert_eq!(commands.len(), 1);
    assert_eq!(commands[0].0, "control.change.schedule");
    assert_eq!(commands[0].2, json!({"change_id": "CHG0001"}));
    assert_eq!(case.instance.status, Status::Running);
    case.reply(Ok(json!({"window": "Saturday"})));
    assert_eq!(case.instance.status, Status::Completed);
    assert_eq!(case.instance.outcome.as_deref(), Some("approved"));
    assert!(case.instance.tokens.is_empty() && case.instance.timers.is_empty());
    assert_eq!(
        case.instance.variables["schedule"],
        json!({"window": "Saturday"})
    );
    assert_eq!(case.instance.variables["triage"]["risk"], json!("low"));
}

#[test]
fn the_cab_approves_with_two_votes_and_the_third_task_is_withdrawn() {
    let mut case = cab(&["ann", "ben", "cat"]);
    case.complete(
        "triage",
        &user("max", &["change-manager"]),
        "assessed",
        json!({"risk": "high"}),
    );
    assert_eq!(case.open("cab").len(), 3);
    case.complete("cab", &user("ann", &[]), "approved", json!({}));
    assert_eq!(case.open("cab").len(), 2);
    case.complete("cab", &user("cat", &[]), "approved", json!({}));
    assert!(case.open("cab").is_empty());
    assert!(case.effects.iter().any(|e| matches!(e, Effect::TaskWithdrawn { task, .. } if task.assignee.as_deref() == Some("ben"))));
    assert_eq!(case.instance.variables["cab"]["approved"], json!(2));
    assert_eq!(case.commands().len(), 1);
}

#[test]
fn any_cab_rejection_vetoes_the_change() {
    let mut case = cab(&["ann", "ben", "cat"]);
    case.complete(
        "triage",
        &user("max", &["change-manager"]),
        "assessed",
        json!({"risk": "medium"}),
    );
    case.complete("cab", &user("ann", &[]), "approved", json!({}));
    case.complete("cab", &user("ben", &[]), "rejected", json!({}));
    assert_eq!(case.instance.status, Status::Completed);
    assert_eq!(case.instance.outcome.as_deref(), Some("rejected"));
    assert!(case.commands().is_empty());
    assert!(case.instance.tasks.is_empty());
}

#[test]
fn the_requester_can_never_decide_their_own_change() {
    // Rita raised the change, holds the change-manager role and sits on the CAB.
    let mut case = cab(&["rita", "ann", "ben"]);
    let rita = user("rita", &["change-manager"]);
    let triage = case.task("triage");
    let refused = case.try_complete(&triage, &rita, "assessed", json!({"risk": "high"}));
    assert!(
        matches!(refused, Err(EngineError::Segregation(ref m)) if m.contains("segregation")),
        "{refused:?}"
    );
    // Not by delegation either, nor as an admin.
    let max = user("max", &["change-manager"]);
    let delegated = assign(&mut case.instance, triage.id, &max, Some("rita"));
    assert!(
        matches!(delegated, Err(EngineError::Segregation(_))),
        "{delegated:?}"
    );
    let admin = Actor {
        admin: true,
        ..rita.clone()
    };
    assert!(matches!(
        case.try_complete(&triage, &admin, "assessed", json!({"risk": "high"})),
        Err(EngineError::Segregation(_))
    ));
    case.complete("triage", &max, "assessed", json!({"risk": "high"}));
    // The CAB gets no task for her.
    let cab: Vec<Option<String>> = case.open("cab").into_iter().map(|t| t.assignee).collect();
    assert_eq!(cab, [Some("ann".to_owned()), Some("ben".to_owned())]);
}

#[test]
fn one_person_counts_once_in_a_quorum() {
    let mut case = cab(&["ann", "ben", "cat"]);
    case.complete(
        "triage",
        &user("max", &["change-manager"]),
        "assessed",
        json!({"risk": "high"}),
    );
    let ann = user("ann", &[]);
    case.complete("cab", &ann, "approved", json!({}));
    // Ben delegates his vote to Ann: she may hold the task but not vote twice.
    let bens = case
        .open("cab")
        .into_iter()
        .find(|t| t.assignee.as_deref() == Some("ben"))
        .unwrap();
    assign(&mut case.instance, bens.id, &user("ben", &[]), Some("ann")).unwrap();
    let twice = case.try_complete(&bens, &ann, "approved", json!({}));
    assert!(
        matches!(twice, Err(EngineError::Forbidden(ref m)) if m.contains("counts once")),
        "{twice:?}"
    );
    assert_eq!(case.instance.variables["cab"]["approved"], json!(1));
}

#[test]
fn only_the_assignee_or_a_candidate_may_complete() {
    let mut case = cab(&["ann", "ben"]);
    let triage = case.task("triage");
    let outsider = user("otto", &["agent"]);
    assert!(matches!(
        case.try_complete(&triage, &outsider, "assessed", json!({"risk": "low"})),
        Err(EngineError::Forbidden(_))
    ));
    // A candidate claims it; then another candidate may no longer complete it.
    let max = user("max", &["change-manager"]);
    assign(&mut case.instance, triage.id, &max, None).unwrap();
    let triage = case.task("triage");
    assert_eq!(triage.assignee.as_deref(), Some("max"));
    let mia = user("mia", &["change-manager"]);
    assert!(matches!(
        case.try_complete(&triage, &mia, "assessed", json!({"risk": "low"})),
        Err(EngineError::Forbidden(_))
    ));
    assert!(matches!(
        assign(&mut case.instance, triage.id, &mia, None),
        Err(EngineError::Forbidden(_))
    ));
}

#[test]
fn outcomes_and_form_fields_are_checked_naming_the_field() {
    let mut case = cab(&["ann", "ben"]);
    let triage = case.task("triage");
    let max = user("max", &["change-manager"]);
    let cases = [
        ("assessed", json!({}), "fields.risk", "is required"),
        (
            "assessed",
            json!({"risk": "huge"}),
            "fields.risk",
            "must be one of low, medium, high",
        ),
        (
            "assessed",
            json!({"risk": 3}),
            "fields.risk",
            "must be string",
        ),
        (
            "assessed",
            json!({"risk": "low", "x": 1}),
            "fields.x",
            "is not a field of this form",
        ),
        (
            "approved",
            json!({"risk": "low"}),
            "outcome",
            "must be one of assessed",
        ),
    ];
    for (outcome, fields, field, reason) in cases {
        let error = case
            .try_complete(&triage, &max, outcome, fields)
            .unwrap_err();
        assert_eq!(
            error,
            EngineError::Invalid {
                field: field.to_owned(),
                reason: reason.to_owned()
            }
        );
    }
    assert_eq!(case.instance.tasks.len(), 1, "nothing changed");
}

#[test]
fn start_variables_are_checked() {
    let compiled = shipped("change-advisory-board");
    let error = start(
        &compiled,
        Start {
            id: Uuid::now_v7(),
            business_key: "CHG1".to_owned(),
            initiator: "x".to_owned(),
            variables: vars(json!({"change": {}, "requester": "r", "cab_members": "ann"})),
        },
        t0(),
        &NoDirectory,
    )
    .unwrap_err();
    assert_eq!(
        error,
        EngineError::Invalid {
            field: "variables.cab_members".to_owned(),
            reason: "must be string_list".to_owned()
        }
    );
}

#[test]
fn the_cab_is_reminded_after_a_day_and_the_change_manager_added_after_two() {
    let mut case = cab(&["ann", "ben", "cat"]);
    case.complete(
        "triage",
        &user("max", &["change-manager"]),
        "assessed",
        json!({"risk": "high"}),
    );
    case.advance(Duration::hours(23));
    assert!(
        !case
            .effects
            .iter()
            .any(|e| matches!(e, Effect::TaskReminded { .. }))
    );
    case.advance(Duration::hours(1));
    let reminded = case
        .effects
        .iter()
        .filter(|e| matches!(e, Effect::TaskReminded { .. }))
        .count();
    assert_eq!(reminded, 3);
    case.advance(Duration::days(1));
    let escalated = case
        .effects
        .iter()
        .filter(|e| matches!(e, Effect::TaskEscalated { .. }))
        .count();
    assert_eq!(escalated, 3);
    // The change manager may now decide in the place of the board member.
    let mia = user("mia", &["change-manager"]);
    assert!(case.open("cab").iter().all(|t| may_work(t, &mia)));
    // Each timer fired once.
    case.advance(Duration::days(5));
    let reminded = case
        .effects
        .iter()
        .filter(|e| matches!(e, Effect::TaskReminded { .. }))
        .count();
    assert_eq!(reminded, 3);
}

#[test]
fn an_interrupting_timer_hands_an_unanswered_emergency_change_to_the_change_manager() {
    let mut case = Case::start(
        shipped("emergency-change"),
        "eve",
        json!({"change": {}, "requester": "eve", "ecab_members": ["ann", "ben"]}),
    );
    assert_eq!(case.open("ecab").len(), 2);
    case.advance(Duration::hours(4));
    assert!(case.open("ecab").is_empty());
    let manager = user("max", &["change-manager"]);
    case.complete("manager_decides", &manager, "approved", json!({}));
    assert_eq!(
        case.commands()[0].2,
        json!({"change_id": "CHG0001", "emergency": true})
    );
    case.reply(Ok(json!({})));
    case.complete(
        "retrospective",
        &manager,
        "reviewed",
        json!({"findings": "ok", "improvement_needed": false}),
    );
    assert_eq!(case.instance.outcome.as_deref(), Some("approved"));
    assert_eq!(case.instance.status, Status::Completed);
}

#[test]
fn one_emergency_cab_member_decides() {
    let mut case = Case::start(
        shipped("emergency-change"),
        "eve",
        json!({"change": {}, "requester": "eve", "ecab_members": ["ann", "ben"]}),
    );
    case.complete("ecab", &user("ben", &[]), "approved", json!({}));
    assert!(case.open("ecab").is_empty());
    assert_eq!(case.commands().len(), 1);
}

const RETRYING: &str = "\
id: retrying
name: Retrying
nodes:
  - id: start
    type: start
    next: call
  - id: call
    type: service_task
    command: control.thing.do
    reply: control.thing.done
    retry: { attempts: 3, timeout: PT1M, backoff: PT10S }
    next: done
  - id: done
    type: end
";

#[test]
fn a_service_task_retries_with_backoff_then_raises_an_incident_an_operator_retries() {
    let mut case = Case::start(inline(RETRYING), "sys", json!({}));
    assert_eq!(case.commands().len(), 1);
    case.reply(Err("busy".to_owned()));
    // Backoff 10 s before the second attempt, 20 s before the third.
    case.advance(Duration::seconds(9));
    assert_eq!(case.commands().len(), 1);
    case.advance(Duration::seconds(1));
    assert_eq!(case.commands().len(), 2);
    // No reply within a minute counts as a failure.
    case.advance(Duration::minutes(1));
    case.advance(Duration::seconds(20));
    let attempts: Vec<u32> = case.commands().iter().map(|c| c.3).collect();
    assert_eq!(attempts, [1, 2, 3]);
    case.reply(Err("still busy".to_owned()));
    let incident = case.effects.iter().find_map(|e| match e {
        Effect::Incident { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    assert_eq!(
        incident.as_deref(),
        Some("control.thing.do failed after 3 attempts: still busy")
    );
    assert!(case.instance.timers.is_empty());
    let effects = retry(
        &case.compiled,
        &mut case.instance,
        "olga",
        case.now,
        &NoDirectory,
    )
    .unwrap();
    case.effects.extend(effects);
    assert_eq!(case.commands().last().unwrap().3, 1);
    case.reply(Ok(json!({})));
    assert_eq!(case.instance.status, Status::Completed);
    // A late reply to an old attempt finds nothing.
    assert!(
        reply(
            &case.compiled,
            &mut case.instance,
            "x:1:1",
            Ok(json!({})),
            case.now,
            &NoDirectory
        )
        .is_err()
    );
}

const PARALLEL: &str = "\
id: parallel
name: Parallel
nodes:
  - id: start
    type: start
    next: fork
  - id: fork
    type: parallel_gateway
    next: [a, b, votes]
  - id: a
    type: user_task
    assignee: { user: ann }
    next: join
  - id: b
    type: user_task
    assignee: { user: ben }
    outcomes: [yes, no]
    next: join
  - id: votes
    type: user_task
    outcomes: [approved, rejected]
    multi_instance:
      over: '[\"v1\", \"v2\", \"v3\"]'
      completion: 'approved >= 2'
    next: join
  - id: join
    type: parallel_gateway
    next: [done]
  - id: done
    type: end
    outcome: finished
";

fn permutations(items: &[usize]) -> Vec<Vec<usize>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut out = Vec::new();
    for (i, &first) in items.iter().enumerate() {
        let mut rest = items.to_vec();
        rest.remove(i);
        for mut tail in permutations(&rest) {
            tail.insert(0, first);
            out.push(tail);
        }
    }
    out
}

#[test]
fn every_completion_order_of_parallel_and_multi_instance_branches_reaches_the_same_result() {
    // Five completions: ann, ben, and three voters of whom two approving suffice.
    let steps: [(&str, &str, &str); 5] = [
        ("a", "ann", "done"),
        ("b", "ben", "yes"),
        ("votes", "v1", "approved"),
        ("votes", "v2", "rejected"),
        ("votes", "v3", "approved"),
    ];
    let mut finals = Vec::new();
    for order in permutations(&[0, 1, 2, 3, 4]) {
        let mut case = Case::start(inline(PARALLEL), "sys", json!({}));
        for &i in &order {
            let (node, who, outcome) = steps[i];
            let actor = user(who, &[]);
            if let Some(task) = case.open(node).into_iter().find(|t| may_work(t, &actor)) {
                case.try_complete(&task, &actor, outcome, json!({}))
                    .unwrap();
            }
        }
        assert_eq!(case.instance.status, Status::Completed, "order {order:?}");
        assert!(case.instance.joins.is_empty() && case.instance.tasks.is_empty());
        let votes = &case.instance.variables["votes"];
        finals.push((
            case.instance.outcome.clone(),
            votes["approved"].clone(),
            case.instance.variables["b"]["outcome"].clone(),
        ));
    }
    assert_eq!(finals.len(), 120);
    assert!(
        finals
            .iter()
            .all(|f| f == &(Some("finished".to_owned()), json!(2), json!("yes"))),
        "{finals:?}"
    );
}

const SEQUENTIAL: &str = "\
id: sequential
name: Sequential
variables:
  signers: { type: string_list, required: true }
nodes:
  - id: start
    type: start
    next: sign
  - id: sign
    type: user_task
    outcomes: [signed]
    multi_instance:
      over: signers
      mode: sequential
    next: done
  - id: done
    type: end
";

#[test]
fn a_sequential_multi_instance_task_goes_to_one_person_after_the_other() {
    let mut case = Case::start(
        inline(SEQUENTIAL),
        "sys",
        json!({"signers": ["x", "y", "x", "z"]}),
    );
    for who in ["x", "y", "z"] {
        let task = case.task("sign");
        assert_eq!(task.assignee.as_deref(), Some(who));
        case.complete("sign", &user(who, &[]), "signed", json!({}));
    }
    assert_eq!(case.instance.status, Status::Completed);
    assert_eq!(case.instance.variables["sign"]["total"], json!(3));
}

const WAITING: &str = "\
id: waiting
name: Waiting
nodes:
  - id: start
    type: start
    next: race
  - id: race
    type: event_gateway
    branches:
      - message: { event: control.change.implemented }
        next: pause
      - timer: P1D
        next: late
  - id: pause
    type: timer
    duration: PT1H
    next: confirm
  - id: confirm
    type: message
    event: control.change.closed
    next: ok
  - id: ok
    type: end
    outcome: on_time
  - id: late
    type: end
    outcome: late
";

#[test]
fn an_event_gateway_takes_the_first_event_and_messages_correlate_by_subject() {
    let mut case = Case::start(inline(WAITING), "sys", json!({}));
    let compiled = case.compiled.clone();
    // Another change's event does nothing.
    assert!(
        message(
            &compiled,
            &mut case.instance,
            "control.change.implemented",
            "CHG0002",
            json!({}),
            case.now,
            &NoDirectory
        )
        .is_err()
    );
    message(
        &compiled,
        &mut case.instance,
        "control.change.implemented",
        "CHG0001",
        json!({"by": "ops"}),
        case.now,
        &NoDirectory,
    )
    .unwrap();
    assert_eq!(
        case.instance.timers.len(),
        1,
        "the gateway's timer is gone, the pause's is set"
    );
    case.advance(Duration::days(2));
    assert_eq!(case.instance.status, Status::Running);
    message(
        &compiled,
        &mut case.instance,
        "control.change.closed",
        "CHG0001",
        json!({}),
        case.now,
        &NoDirectory,
    )
    .unwrap();
    assert_eq!(case.instance.outcome.as_deref(), Some("on_time"));
    assert_eq!(case.instance.variables["race"], json!({"by": "ops"}));

    let mut late = Case::start(inline(WAITING), "sys", json!({}));
    late.advance(Duration::days(1));
    assert_eq!(late.instance.outcome.as_deref(), Some("late"));
    assert!(
        message(
            &compiled,
            &mut late.instance,
            "control.change.implemented",
            "CHG0001",
            json!({}),
            late.now,
            &NoDirectory
        )
        .is_err()
    );
}

const CALLING: &str = "\
id: calling
name: Calling
variables:
  doc: { type: string, required: true }
nodes:
  - id: start
    type: start
    next: approval
  - id: approval
    type: call_activity
    definition: document-approval
    variables:
      author: doc
    next: check
  - id: check
    type: exclusive_gateway
    branches:
      - when: 'approval.outcome == \"approved\"'
        next: yes
    default: no
  - id: yes
    type: end
    outcome: approved
  - id: no
    type: end
    outcome: refused
";

#[test]
fn a_call_activity_starts_a_child_and_waits_for_its_outcome() {
    let mut case = Case::start(inline(CALLING), "sys", json!({"doc": "dora"}));
    let (token, variables) = case
        .effects
        .iter()
        .find_map(|e| match e {
            Effect::StartChild {
                token,
                definition,
                variables,
            } if definition == "document-approval" => Some((*token, variables.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(variables, vars(json!({"author": "dora"})));
    let child = Uuid::now_v7();
    child_started(&mut case.instance, token, child);
    let compiled = case.compiled.clone();
    child_completed(
        &compiled,
        &mut case.instance,
        child,
        Some("approved".to_owned()),
        vars(json!({})),
        case.now,
        &NoDirectory,
    )
    .unwrap();
    assert_eq!(case.instance.outcome.as_deref(), Some("approved"));
}

#[test]
fn a_gateway_condition_that_fails_raises_an_incident() {
    let source = "id: broken\nname: Broken\nvariables:\n  n: { type: object }\nnodes:\n  - id: start\n    type: start\n    next: g\n  - id: g\n    type: exclusive_gateway\n    branches:\n      - when: 'n.size > 1'\n        next: e\n    default: e\n  - id: e\n    type: end\n";
    let case = Case::start(inline(source), "sys", json!({}));
    assert_eq!(case.instance.status, Status::Running);
    assert!(
        case.effects
            .iter()
            .any(|e| matches!(e, Effect::Incident { node, .. } if node == "g"))
    );
    assert!(case.instance.tokens[0].incident.is_some());
}

/// Two deciders race on the last task: the first decision ends the instance, and the second
/// hears that the task is closed, as it would had the instance gone on.
#[test]
fn a_decision_on_a_task_whose_instance_its_closing_ended_is_a_closed_task() {
    let source = "id: one\nname: One\nnodes:\n  - id: start\n    type: start\n    next: ok\n  - id: ok\n    type: user_task\n    name: Agree\n    assignee: { role: cab }\n    outcomes: [yes]\n    next: e\n  - id: e\n    type: end\n";
    let mut case = Case::start(inline(source), "sys", json!({}));
    let task = case.task("ok");
    case.try_complete(&task, &user("ann", &["cab"]), "yes", json!({}))
        .unwrap();
    assert_eq!(case.instance.status, Status::Completed);
    assert_eq!(
        case.try_complete(&task, &user("ben", &["cab"]), "yes", json!({})),
        Err(EngineError::NoTask(task.id))
    );
}

#[test]
fn a_cancelled_instance_withdraws_its_tasks_and_refuses_more_work() {
    let mut case = cab(&["ann", "ben"]);
    let triage = case.task("triage");
    let effects = cancel(&mut case.instance, "olga", "withdrawn by the requester").unwrap();
    assert!(matches!(&effects[0], Effect::TaskWithdrawn { task, .. } if task.id == triage.id));
    assert_eq!(case.instance.status, Status::Cancelled);
    assert_eq!(
        case.try_complete(
            &triage,
            &user("max", &["change-manager"]),
            "assessed",
            json!({"risk": "low"})
        ),
        // The task went with the instance: it is closed (`task_closed`, "withdrawn").
        Err(EngineError::NoTask(triage.id))
    );
}

#[test]
fn a_supplier_review_returned_at_sign_off_goes_back_to_review() {
    let mut case = Case::start(
        shipped("supplier-review"),
        "sys",
        json!({"supplier": {"name": "Acme"}, "contract_owner": "carl"}),
    );
    case.complete(
        "scorecard",
        &user("sue", &["service-owner"]),
        "submitted",
        json!({"quality": 4, "delivery": 3, "responsiveness": 5}),
    );
    let manager = user("sam", &["supplier-manager"]);
    case.complete(
        "review",
        &manager,
        "needs_improvement",
        json!({"assessment": "late deliveries"}),
    );
    case.complete("sign_off", &user("carl", &[]), "returned", json!({}));
    case.complete(
        "review",
        &manager,
        "needs_improvement",
        json!({"assessment": "late deliveries, twice"}),
    );
    case.complete("sign_off", &user("carl", &[]), "signed_off", json!({}));
    case.complete(
        "follow_up",
        &manager,
        "agreed",
        json!({"actions": "weekly call", "due_date": "2026-12-31"}),
    );
    assert_eq!(
        case.instance.outcome.as_deref(),
        Some("improvement_planned")
    );
}

#[test]
fn the_author_cannot_review_or_approve_their_own_document_but_revises_it() {
    let mut case = Case::start(
        shipped("document-approval"),
        "dora",
        json!({"document": {}, "author": "dora", "reviewers": ["dora", "rob", "ria"], "approver": "al"}),
    );
    assert_eq!(case.open("review").len(), 2);
    case.complete(
        "review",
        &user("rob", &[]),
        "changes_requested",
        json!({"remarks": "typo"}),
    );
    case.complete(
        "revise",
        &user("dora", &[]),
        "revised",
        json!({"change_summary": "fixed"}),
    );
    case.complete("review", &user("rob", &[]), "accepted", json!({}));
    case.complete("review", &user("ria", &[]), "accepted", json!({}));
    case.complete("approve", &user("al", &[]), "approved", json!({}));
    assert_eq!(case.commands()[0].0, "governance.document.issue");
    case.reply(Ok(json!({})));
    assert_eq!(case.instance.outcome.as_deref(), Some("approved"));
}

#[test]
fn a_standard_change_is_approved_at_once() {
    let mut case = Case::start(
        shipped("standard-change"),
        "sys",
        json!({"change": {}, "template": "restart-pod"}),
    );
    assert_eq!(
        case.commands()[0].2,
        json!({"change_id": "CHG0001", "template": "restart-pod"})
    );
    case.reply(Ok(json!({})));
    assert_eq!(case.instance.outcome.as_deref(), Some("approved"));
}

#[test]
fn a_retried_service_task_starts_afresh_without_doubling_its_timers() {
    let source = RETRYING.replace(
        "    retry: { attempts: 3, timeout: PT1M, backoff: PT10S }\n",
        "    retry: { attempts: 1, timeout: PT1M, backoff: PT10S }\n    boundary:\n      - id: late\n        after: PT1H\n        interrupting: true\n        next: done\n",
    );
    let mut case = Case::start(inline(&source), "sys", json!({}));
    case.reply(Err("down".to_owned()));
    assert!(case.instance.tokens[0].incident.is_some());
    let boundary = |case: &Case| {
        case.instance
            .timers
            .iter()
            .filter(|t| matches!(t.kind, TimerKind::Boundary(_)))
            .count()
    };
    assert_eq!(boundary(&case), 1);
    let effects = retry(
        &case.compiled,
        &mut case.instance,
        "olga",
        case.now,
        &NoDirectory,
    )
    .unwrap();
    case.effects.extend(effects);
    assert_eq!(boundary(&case), 1);
    assert_eq!(case.commands().len(), 2);
}
