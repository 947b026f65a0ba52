//! Loading definitions: the shipped files pass; every kind of mistake is reported where it is.

use super::*;

fn workflows_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows")
}

#[test]
fn every_shipped_definition_loads() {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(workflows_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let source = std::fs::read_to_string(&path).unwrap();
            let compiled =
                load(&source).unwrap_or_else(|errors| panic!("{}: {errors:#?}", path.display()));
            assert_eq!(compiled.version, version_of(&source));
            ids.push(compiled.definition.id);
        }
    }
    ids.sort();
    assert_eq!(
        ids,
        [
            "change-advisory-board",
            "document-approval",
            "emergency-change",
            "major-incident",
            "request-fulfilment",
            "standard-change",
            "supplier-review"
        ]
    );
}

/// A small valid definition to break in one place at a time.
const BASE: &str = "\
id: sample
name: Sample
variables:
  owner: { type: string, required: true }
nodes:
  - id: start
    type: start
    next: check
  - id: check
    type: user_task
    assignee: { role: approver }
    outcomes: [approved, rejected]
    next: decide
  - id: decide
    type: exclusive_gateway
    branches:
      - when: 'check.outcome == \"approved\"'
        next: done
    default: done
  - id: done
    type: end
    outcome: finished
";

fn errors(source: &str) -> Vec<String> {
    match load(source) {
        Ok(_) => Vec::new(),
        Err(diagnostics) => diagnostics.iter().map(ToString::to_string).collect(),
    }
}

fn one_error(source: &str) -> String {
    let found = errors(source);
    assert_eq!(found.len(), 1, "{found:#?}");
    found.into_iter().next().unwrap()
}

#[test]
fn the_base_definition_is_valid_and_its_version_follows_its_content() {
    let compiled = load(BASE).unwrap();
    assert_eq!(compiled.version.len(), 16);
    let changed = load(&BASE.replace("Sample", "Sample 2")).unwrap();
    assert_ne!(compiled.version, changed.version);
    // The gateway's branch and its default both lead to `done`: alternatives, one path in.
    assert_eq!(compiled.incoming("done"), 1);
    assert!(compiled.program("check.outcome == \"approved\"").is_some());
}

#[test]
fn yaml_syntax_errors_have_a_position() {
    let error = one_error("id: x\nnodes: [\n");
    assert!(
        error.starts_with("3:1:") || error.starts_with("2:"),
        "{error}"
    );
}

#[test]
fn schema_errors_name_the_field_and_its_position() {
    let error = one_error(&BASE.replace(
        "    outcomes: [approved, rejected]\n",
        "    outcomes: [approved, rejected]\n    colour: red\n",
    ));
    assert!(error.starts_with("13:5: nodes[1]"), "{error}");
    assert!(error.contains("unknown field `colour`"), "{error}");
    let error = one_error(&BASE.replace("type: exclusive_gateway", "type: xor"));
    assert!(
        error.contains("nodes[2]") && error.contains("unknown variant `xor`"),
        "{error}"
    );
    let error = one_error(&BASE.replace("name: Sample\n", ""));
    assert!(error.contains("missing field `name`"), "{error}");
}

#[test]
fn unknown_node_references_are_reported_where_they_are_written() {
    let error = one_error(&BASE.replace("next: decide", "next: decid"));
    assert_eq!(error, "13:11: nodes[1].next: unknown node `decid`");
}

#[test]
fn duplicate_ids_are_reported() {
    let found = errors(&BASE.replace("  - id: decide\n", "  - id: check\n"));
    assert!(
        found.contains(&"14:9: nodes[2].id: duplicate id `check`".to_owned()),
        "{found:#?}"
    );
}

#[test]
fn unreachable_nodes_and_dead_ends_are_reported() {
    let unreachable = BASE.replace(
        "  - id: done\n",
        "  - id: orphan\n    type: timer\n    duration: PT1H\n    next: done\n  - id: done\n",
    );
    let error = one_error(&unreachable);
    assert!(
        error.contains("`orphan` cannot be reached from the start"),
        "{error}"
    );
    let dead_end = BASE.replace(
        "    default: done\n",
        "    default: loop\n  - id: loop\n    type: timer\n    duration: PT1H\n    next: loop\n",
    );
    let error = one_error(&dead_end);
    assert!(error.contains("`loop` has no path to an end"), "{error}");
}

#[test]
fn an_exclusive_gateway_needs_a_default() {
    let error = one_error(&BASE.replace("    default: done\n", ""));
    assert!(
        error.starts_with("14:5: nodes[2]: an exclusive gateway needs a `default`"),
        "{error}"
    );
}

#[test]
fn cel_that_does_not_parse_or_names_unknown_variables_is_reported() {
    let error = one_error(&BASE.replace("'check.outcome == \"approved\"'", "'check.outcome =='"));
    assert!(
        error.starts_with("17:15: nodes[2].branches[0].when: CEL"),
        "{error}"
    );
    assert!(error.contains("does not parse"), "{error}");
    let error = one_error(&BASE.replace(
        "'check.outcome == \"approved\"'",
        "'chekc.outcome == owner'",
    ));
    assert!(error.contains("names unknown variables: chekc"), "{error}");
    // Macro variables are the macro's own.
    assert!(
        errors(&BASE.replace(
            "'check.outcome == \"approved\"'",
            "'[1, 2].exists(x, x > 1)'"
        ))
        .is_empty()
    );
}

#[test]
fn bad_durations_are_reported() {
    let error = one_error(&BASE.replace(
        "    outcomes: [approved, rejected]\n",
        "    outcomes: [approved, rejected]\n    due: P1M\n",
    ));
    assert!(
        error.contains("nodes[1].due") && error.contains("use days"),
        "{error}"
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
    next: [a, b]
  - id: a
    type: user_task
    assignee: { role: x }
    next: join
  - id: b
    type: user_task
    assignee: { role: y }
    next: join
  - id: join
    type: parallel_gateway
    next: [done]
  - id: done
    type: end
";

#[test]
fn balanced_forks_and_joins_pass_and_unbalanced_ones_are_reported() {
    assert_eq!(errors(PARALLEL), Vec::<String>::new());
    // A branch that can end while the join waits for it.
    let leaking = PARALLEL.replace(
        "  - id: b\n    type: user_task\n    assignee: { role: y }\n    next: join\n",
        "  - id: b\n    type: user_task\n    assignee: { role: y }\n    next: maybe\n  - id: maybe\n    type: exclusive_gateway\n    branches:\n      - when: 'b.outcome == \"done\"'\n        next: join\n    default: done\n",
    );
    let error = one_error(&leaking);
    assert!(
        error.contains("may reach the end `done` while the join `join` waits"),
        "{error}"
    );
    // A join of three after a fork of two.
    let three = PARALLEL.replace("  - id: b\n    type: user_task\n    assignee: { role: y }\n    next: join\n", "  - id: b\n    type: user_task\n    assignee: { role: y }\n    next: c\n  - id: c\n    type: exclusive_gateway\n    branches:\n      - when: 'true'\n        next: join\n    default: d\n  - id: d\n    type: timer\n    duration: PT1M\n    next: join\n");
    let error = one_error(&three);
    assert!(
        error.contains("the fork `fork` starts 2 paths, the join `join` waits for 3"),
        "{error}"
    );
    // Alternatives of one gateway meeting at the join are one path: balanced.
    let alternatives = PARALLEL.replace("  - id: b\n    type: user_task\n    assignee: { role: y }\n    next: join\n", "  - id: b\n    type: event_gateway\n    branches:\n      - message: { event: x.resolved }\n        next: join\n      - message: { event: x.cancelled }\n        next: join\n");
    assert_eq!(errors(&alternatives), Vec::<String>::new());
    let compiled = load(&alternatives).unwrap();
    assert_eq!(compiled.incoming("join"), 2);
    // A fork naming one branch twice.
    let twice = PARALLEL.replace("next: [a, b]", "next: [a, b, a]");
    assert!(
        errors(&twice)
            .iter()
            .any(|e| e.contains("nodes[1].next[2]: `a` is named twice")),
        "{:#?}",
        errors(&twice)
    );
}

#[test]
fn segregation_must_name_user_variables() {
    let error = one_error(&BASE.replace("nodes:\n", "segregation: [initiator, nobody]\nnodes:\n"));
    assert!(
        error.contains("segregation[1]") && error.contains("`nobody`"),
        "{error}"
    );
}

#[test]
fn user_tasks_need_exactly_one_assignee_rule() {
    let error = one_error(&BASE.replace(
        "assignee: { role: approver }",
        "assignee: { role: approver, user: bob }",
    ));
    assert!(
        error.contains("nodes[1].assignee: give exactly one of"),
        "{error}"
    );
}

#[test]
fn cancel_on_names_event_types_once_and_never_the_trigger() {
    let with = |list: &str| {
        BASE.replace(
            "nodes:\n",
            &format!("trigger: {{ event: x.started }}\ncancel_on: {list}\nnodes:\n"),
        )
    };
    assert_eq!(
        errors(&with("[x.cancelled, y.withdrawn]")),
        Vec::<String>::new()
    );
    for (list, expected) in [
        ("[cancelled]", "cancel_on[0]: must be an event type"),
        (
            "[x.cancelled, x.cancelled]",
            "cancel_on[1]: `x.cancelled` is named twice",
        ),
        (
            "[x.started]",
            "cancel_on[0]: is the event that starts the workflow",
        ),
    ] {
        let error = one_error(&with(list));
        assert!(error.contains(expected), "{list}: {error}");
    }
}
