//! What the schema cannot say about a definition.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use super::model::{Assignee, BoundaryTimer, Definition, FieldType, Node, TimerAction};
use super::yaml::Positions;
use super::{Diagnostic, duration};

/// Names every expression may use besides the declared variables and the task results.
const BUILT_IN: [&str; 2] = ["initiator", "business_key"];

struct Checker<'a> {
    positions: &'a Positions,
    diagnostics: Vec<Diagnostic>,
    programs: HashMap<String, Arc<cel::Program>>,
}

impl Checker<'_> {
    fn error(&mut self, path: &str, message: impl Into<String>) {
        let (line, column) = self.positions.of(path);
        self.diagnostics.push(Diagnostic {
            line,
            column,
            message: format!("{path}: {}", message.into()),
        });
    }

    /// Compiles `source` and checks that it names only `known` variables.
    fn cel(&mut self, path: &str, source: &str, known: &BTreeSet<String>) {
        match cel::Program::compile(source) {
            Ok(program) => {
                let bound = macro_variables(source);
                let mut unknown: Vec<String> = program
                    .references()
                    .variables()
                    .into_iter()
                    .filter(|name| !known.contains(*name) && !bound.contains(name))
                    .map(str::to_owned)
                    .collect();
                unknown.sort();
                if !unknown.is_empty() {
                    self.error(
                        path,
                        format!(
                            "CEL `{source}` names unknown variables: {}",
                            unknown.join(", ")
                        ),
                    );
                }
                self.programs.insert(source.to_owned(), Arc::new(program));
            }
            Err(error) => {
                let reason = error.to_string();
                let reason = reason.lines().next().unwrap_or("does not parse");
                let reason = reason.strip_prefix("ERROR: <input>:").unwrap_or(reason);
                self.error(path, format!("CEL `{source}` does not parse: {reason}"));
            }
        }
    }

    fn duration(&mut self, path: &str, text: &str) {
        if let Err(reason) = duration::parse(text) {
            self.error(path, reason);
        }
    }
}

/// The variables that CEL's comprehension macros bind (`x` in `list.exists(x, x > 1)`): they
/// are the macro's own, not the workflow's.
fn macro_variables(source: &str) -> HashSet<&str> {
    const MACROS: [&str; 6] = [
        "all(",
        "exists(",
        "exists_one(",
        "map(",
        "filter(",
        "existsOne(",
    ];
    let mut bound = HashSet::new();
    for (at, _) in source.match_indices('.') {
        let rest = &source[at + 1..];
        let Some(args) = MACROS.iter().find_map(|m| rest.strip_prefix(m)) else {
            continue;
        };
        let args = args.trim_start();
        let end = args
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(args.len());
        if end > 0 && args[end..].trim_start().starts_with(',') {
            bound.insert(&args[..end]);
        }
    }
    bound
}

/// Checks `definition`; returns its compiled expressions and what is wrong.
pub(super) fn check(
    definition: &Definition,
    positions: &Positions,
) -> (HashMap<String, Arc<cel::Program>>, Vec<Diagnostic>) {
    let mut c = Checker {
        positions,
        diagnostics: Vec::new(),
        programs: HashMap::new(),
    };
    check_header(&mut c, definition);
    let ids = check_ids(&mut c, definition);
    let known = known_names(definition);
    for (i, node) in definition.nodes.iter().enumerate() {
        let at = format!("nodes[{i}]");
        for (path, next) in node.successors() {
            if !ids.contains_key(next) {
                c.error(&format!("{at}.{path}"), format!("unknown node `{next}`"));
            }
        }
        check_node(&mut c, definition, &at, node, &known);
    }
    if c.diagnostics.is_empty() {
        check_graph(&mut c, definition, &ids);
    }
    (c.programs, c.diagnostics)
}

fn check_header(c: &mut Checker<'_>, definition: &Definition) {
    let id_ok = !definition.id.is_empty()
        && definition
            .id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !id_ok {
        c.error("id", "must be lower case letters, digits and dashes");
    }
    if definition.name.trim().is_empty() {
        c.error("name", "must not be empty");
    }
    for (name, field) in &definition.variables {
        if BUILT_IN.contains(&name.as_str()) {
            c.error(
                &format!("variables.{name}"),
                "is set by the engine; choose another name",
            );
        }
        if !field.allowed.is_empty() && field.kind != FieldType::String {
            c.error(
                &format!("variables.{name}.enum"),
                "only strings have an enum",
            );
        }
    }
    for (i, name) in definition.segregation.iter().enumerate() {
        segregation_variable(c, definition, &format!("segregation[{i}]"), name);
    }
    for (i, event) in definition.cancel_on.iter().enumerate() {
        let at = format!("cancel_on[{i}]");
        if !event.contains('.') || event.chars().any(char::is_whitespace) {
            c.error(
                &at,
                "must be an event type such as `resolution.request.cancelled`",
            );
        } else if definition.cancel_on[..i].contains(event) {
            c.error(&at, format!("`{event}` is named twice"));
        } else if definition
            .trigger
            .as_ref()
            .is_some_and(|t| &t.event == event)
        {
            c.error(&at, "is the event that starts the workflow");
        }
    }
    if let Some(trigger) = &definition.trigger {
        let event: BTreeSet<String> = ["event".to_owned()].into();
        if let Some(condition) = &trigger.condition {
            c.cel("trigger.condition", condition, &event);
        }
        if let Some(key) = &trigger.business_key {
            c.cel("trigger.business_key", key, &event);
        }
        for (name, source) in &trigger.variables {
            c.cel(&format!("trigger.variables.{name}"), source, &event);
            if !definition.variables.contains_key(name) {
                c.error(
                    &format!("trigger.variables.{name}"),
                    "is not a declared variable",
                );
            }
        }
    }
}

/// A segregation entry names a variable holding users.
fn segregation_variable(c: &mut Checker<'_>, definition: &Definition, at: &str, name: &str) {
    let declared = definition
        .variables
        .get(name)
        .is_some_and(|f| matches!(f.kind, FieldType::String | FieldType::StringList));
    if !declared && name != "initiator" {
        c.error(
            at,
            format!("`{name}` is not `initiator` or a declared string or string_list variable"),
        );
    }
}

/// Node and boundary timer ids: each once. Returns node id → index.
fn check_ids<'d>(c: &mut Checker<'_>, definition: &'d Definition) -> HashMap<&'d str, usize> {
    let mut ids: HashMap<&str, usize> = HashMap::new();
    let mut timers: HashSet<&str> = HashSet::new();
    for (i, node) in definition.nodes.iter().enumerate() {
        let id = node.id();
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            c.error(
                &format!("nodes[{i}].id"),
                "must be letters, digits and underscores (CEL names results by it)",
            );
        }
        if ids.insert(id, i).is_some() {
            c.error(&format!("nodes[{i}].id"), format!("duplicate id `{id}`"));
        }
    }
    for (i, node) in definition.nodes.iter().enumerate() {
        for (j, timer) in boundary(node).iter().enumerate() {
            if ids.contains_key(timer.id.as_str()) || !timers.insert(&timer.id) {
                c.error(
                    &format!("nodes[{i}].boundary[{j}].id"),
                    format!("duplicate id `{}`", timer.id),
                );
            }
        }
    }
    let starts: Vec<usize> = definition
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, node)| matches!(node, Node::Start { .. }))
        .map(|(i, _)| i)
        .collect();
    match starts.as_slice() {
        [] => c.error("nodes", "has no start node"),
        [_] => {}
        [_, rest @ ..] => {
            for i in rest {
                c.error(&format!("nodes[{i}]"), "a definition has one start node");
            }
        }
    }
    if !definition
        .nodes
        .iter()
        .any(|node| matches!(node, Node::End { .. }))
    {
        c.error("nodes", "has no end node");
    }
    ids
}

fn boundary(node: &Node) -> &[BoundaryTimer] {
    match node {
        Node::UserTask(task) => &task.boundary,
        Node::ServiceTask(task) => &task.boundary,
        _ => &[],
    }
}

/// The declared variables, the engine's own, and the results of tasks and calls.
fn known_names(definition: &Definition) -> BTreeSet<String> {
    definition
        .variables
        .keys()
        .cloned()
        .chain(BUILT_IN.map(str::to_owned))
        .chain(
            definition
                .nodes
                .iter()
                .filter(|node| {
                    matches!(
                        node,
                        Node::UserTask(_) | Node::ServiceTask(_) | Node::CallActivity { .. }
                    )
                })
                .map(|node| node.id().to_owned()),
        )
        .collect()
}

fn check_assignee(c: &mut Checker<'_>, at: &str, assignee: &Assignee, known: &BTreeSet<String>) {
    let rules = [
        assignee.user.is_some(),
        assignee.role.is_some(),
        assignee.group.is_some(),
        assignee.expression.is_some(),
        assignee.ci_owner.is_some(),
    ];
    if rules.iter().filter(|set| **set).count() != 1 {
        c.error(
            at,
            "give exactly one of user, role, group, expression, ci_owner",
        );
    }
    if let Some(expression) = &assignee.expression {
        c.cel(&format!("{at}.expression"), expression, known);
    }
    if let Some(variable) = &assignee.ci_owner
        && !known.contains(variable)
    {
        c.error(
            &format!("{at}.ci_owner"),
            format!("`{variable}` is not a declared variable"),
        );
    }
}

fn check_boundary(
    c: &mut Checker<'_>,
    at: &str,
    timers: &[BoundaryTimer],
    known: &BTreeSet<String>,
) {
    for (j, timer) in timers.iter().enumerate() {
        let at = format!("{at}.boundary[{j}]");
        c.duration(&format!("{at}.after"), &timer.after);
        match (timer.interrupting, &timer.next, &timer.action) {
            (true, Some(_), None) => {}
            (true, None, _) => c.error(&at, "an interrupting timer needs `next`"),
            (true, Some(_), Some(_)) => {
                c.error(
                    &format!("{at}.action"),
                    "an interrupting timer leaves by `next`",
                );
            }
            (false, None, Some(action)) => {
                if let TimerAction::Escalate { to } = action {
                    check_assignee(c, &format!("{at}.action.escalate.to"), to, known);
                }
            }
            (false, Some(_), _) => {
                c.error(
                    &format!("{at}.next"),
                    "a non-interrupting timer does not leave the task",
                );
            }
            (false, None, None) => c.error(&at, "a non-interrupting timer needs an `action`"),
        }
    }
}

fn check_node(
    c: &mut Checker<'_>,
    definition: &Definition,
    at: &str,
    node: &Node,
    known: &BTreeSet<String>,
) {
    match node {
        Node::UserTask(task) => {
            match (&task.assignee, &task.multi_instance) {
                (Some(assignee), None) => {
                    check_assignee(c, &format!("{at}.assignee"), assignee, known);
                }
                (None, Some(_)) => {}
                (Some(_), Some(_)) => c.error(
                    &format!("{at}.assignee"),
                    "a multi-instance task assigns each instance to its item of `over`",
                ),
                (None, None) => {
                    c.error(at, "a user task needs an `assignee` or a `multi_instance`")
                }
            }
            for (j, name) in task.segregation.iter().enumerate() {
                segregation_variable(c, definition, &format!("{at}.segregation[{j}]"), name);
            }
            let mut seen = HashSet::new();
            for (j, outcome) in task.outcomes.iter().enumerate() {
                let ok = !outcome.is_empty()
                    && outcome
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if !ok || ["completed", "total"].contains(&outcome.as_str()) {
                    c.error(
                        &format!("{at}.outcomes[{j}]"),
                        "must be letters, digits and underscores, not `completed` or `total`",
                    );
                }
                if !seen.insert(outcome) {
                    c.error(&format!("{at}.outcomes[{j}]"), "duplicate outcome");
                }
            }
            if task.outcomes.is_empty() {
                c.error(&format!("{at}.outcomes"), "must not be empty");
            }
            for (name, field) in &task.form {
                if !field.allowed.is_empty() && field.kind != FieldType::String {
                    c.error(
                        &format!("{at}.form.{name}.enum"),
                        "only strings have an enum",
                    );
                }
                if ["outcome", "comment", "by", "at"].contains(&name.as_str()) {
                    c.error(&format!("{at}.form.{name}"), "is recorded by the engine");
                }
            }
            if let Some(due) = &task.due {
                c.duration(&format!("{at}.due"), due);
            }
            if let Some(summary) = &task.summary {
                c.cel(&format!("{at}.summary"), summary, known);
            }
            if let Some(multi) = &task.multi_instance {
                c.cel(&format!("{at}.multi_instance.over"), &multi.over, known);
                if let Some(completion) = &multi.completion {
                    let mut names = known.clone();
                    names.extend(task.outcomes.iter().cloned());
                    names.extend(["completed".to_owned(), "total".to_owned()]);
                    c.cel(
                        &format!("{at}.multi_instance.completion"),
                        completion,
                        &names,
                    );
                }
            }
            check_boundary(c, at, &task.boundary, known);
        }
        Node::ServiceTask(task) => {
            for (name, source) in &task.input {
                c.cel(&format!("{at}.input.{name}"), source, known);
            }
            if task.retry.attempts == 0 {
                c.error(&format!("{at}.retry.attempts"), "must be at least 1");
            }
            c.duration(&format!("{at}.retry.timeout"), &task.retry.timeout);
            c.duration(&format!("{at}.retry.backoff"), &task.retry.backoff);
            check_boundary(c, at, &task.boundary, known);
        }
        Node::ExclusiveGateway {
            branches, default, ..
        } => {
            for (j, branch) in branches.iter().enumerate() {
                c.cel(&format!("{at}.branches[{j}].when"), &branch.when, known);
            }
            if default.is_none() {
                c.error(at, "an exclusive gateway needs a `default`");
            }
            if branches.is_empty() {
                c.error(&format!("{at}.branches"), "needs at least one condition");
            }
        }
        Node::ParallelGateway { next, .. } => {
            if next.is_empty() {
                c.error(&format!("{at}.next"), "must not be empty");
            }
            for (j, target) in next.iter().enumerate() {
                if next[..j].contains(target) {
                    c.error(
                        &format!("{at}.next[{j}]"),
                        format!("`{target}` is named twice"),
                    );
                }
            }
        }
        Node::EventGateway { branches, .. } => {
            if branches.len() < 2 {
                c.error(&format!("{at}.branches"), "races at least two events");
            }
            for (j, branch) in branches.iter().enumerate() {
                let at = format!("{at}.branches[{j}]");
                match (&branch.message, &branch.timer) {
                    (Some(message), None) => {
                        if let Some(correlate) = &message.correlate {
                            c.cel(&format!("{at}.message.correlate"), correlate, known);
                        }
                    }
                    (None, Some(timer)) => c.duration(&format!("{at}.timer"), timer),
                    _ => c.error(&at, "give exactly one of message, timer"),
                }
            }
        }
        Node::Timer { duration, .. } => c.duration(&format!("{at}.duration"), duration),
        Node::Message { correlate, .. } => {
            if let Some(correlate) = correlate {
                c.cel(&format!("{at}.correlate"), correlate, known);
            }
        }
        Node::CallActivity {
            definition: called,
            variables,
            ..
        } => {
            if *called == definition.id {
                c.error(&format!("{at}.definition"), "a workflow cannot call itself");
            }
            for (name, source) in variables {
                c.cel(&format!("{at}.variables.{name}"), source, known);
            }
        }
        Node::Start { .. } | Node::End { .. } => {}
    }
}

/// Reachability from the start, a path to an end from every node, and balanced parallel joins.
fn check_graph(c: &mut Checker<'_>, definition: &Definition, ids: &HashMap<&str, usize>) {
    let nodes = &definition.nodes;
    let next: Vec<Vec<usize>> = nodes
        .iter()
        .map(|node| node.successors().iter().map(|(_, n)| ids[n]).collect())
        .collect();
    // A node's paths in: one per node leading to it (the branches of a gateway or a task's
    // boundary into the same node are alternatives, one path), as the engine's joins count them.
    let mut previous: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (from, targets) in next.iter().enumerate() {
        for &to in targets {
            if !previous[to].contains(&from) {
                previous[to].push(from);
            }
        }
    }
    let Some(start) = nodes.iter().position(|n| matches!(n, Node::Start { .. })) else {
        return;
    };
    let reached = reach(&[start], &next);
    let ends: Vec<usize> = (0..nodes.len())
        .filter(|&i| matches!(nodes[i], Node::End { .. }))
        .collect();
    let finishing = reach(&ends, &previous);
    for (i, node) in nodes.iter().enumerate() {
        if !reached.contains(&i) {
            c.error(
                &format!("nodes[{i}]"),
                format!("`{}` cannot be reached from the start", node.id()),
            );
        } else if !finishing.contains(&i) {
            c.error(
                &format!("nodes[{i}]"),
                format!("`{}` has no path to an end", node.id()),
            );
        }
        if matches!(node, Node::Start { .. }) && !previous[i].is_empty() {
            c.error(&format!("nodes[{i}]"), "nothing may lead back to the start");
        }
    }
    let parallel = |i: usize| matches!(nodes[i], Node::ParallelGateway { .. });
    for i in (0..nodes.len()).filter(|&i| parallel(i)) {
        let (ins, outs) = (previous[i].len(), next[i].len());
        if ins > 1 && outs > 1 {
            c.error(
                &format!("nodes[{i}]"),
                "a parallel gateway forks or joins, not both",
            );
        }
    }
    if !c.diagnostics.is_empty() {
        return;
    }
    let mut matched: HashSet<usize> = HashSet::new();
    let before = c.diagnostics.len();
    for fork in (0..nodes.len()).filter(|&i| parallel(i) && next[i].len() > 1) {
        match join_of(fork, &next, &previous, nodes, &mut Vec::new()) {
            Ok(join) => {
                matched.extend(join);
            }
            Err(message) => c.error(&format!("nodes[{fork}]"), message),
        }
    }
    if c.diagnostics.len() > before {
        return;
    }
    for join in (0..nodes.len()).filter(|&i| parallel(i) && previous[i].len() > 1) {
        if !matched.contains(&join) {
            c.error(
                &format!("nodes[{join}]"),
                format!(
                    "unbalanced parallel join: `{}` waits for {} paths that no fork of as many starts",
                    nodes[join].id(),
                    previous[join].len()
                ),
            );
        }
    }
}

fn reach(from: &[usize], edges: &[Vec<usize>]) -> HashSet<usize> {
    let mut seen: HashSet<usize> = from.iter().copied().collect();
    let mut stack = from.to_vec();
    while let Some(i) = stack.pop() {
        for &j in &edges[i] {
            if seen.insert(j) {
                stack.push(j);
            }
        }
    }
    seen
}

/// The join where every branch of `fork` meets: each branch, skipping over nested forks to
/// their own joins, must reach exactly one parallel join, the same for all, waiting for exactly
/// as many paths as the fork starts. A fork whose branches all end on their own has no join
/// (`None`); a branch that may end while another waits at a join is an error.
fn join_of(
    fork: usize,
    next: &[Vec<usize>],
    previous: &[Vec<usize>],
    nodes: &[Node],
    open: &mut Vec<usize>,
) -> Result<Option<usize>, String> {
    if open.contains(&fork) {
        return Err("parallel forks nest in a loop".to_owned());
    }
    open.push(fork);
    let mut joins: BTreeSet<usize> = BTreeSet::new();
    let mut seen: HashSet<usize> = HashSet::new();
    let mut stack: Vec<usize> = next[fork].clone();
    let mut end: Option<usize> = None;
    let id = nodes[fork].id();
    while let Some(i) = stack.pop() {
        if !seen.insert(i) {
            continue;
        }
        match &nodes[i] {
            Node::ParallelGateway { .. } if previous[i].len() > 1 => {
                joins.insert(i);
            }
            Node::ParallelGateway { .. } if next[i].len() > 1 => {
                if let Some(inner) = join_of(i, next, previous, nodes, open)? {
                    stack.extend(next[inner].iter().copied());
                }
            }
            Node::End { .. } => end = Some(i),
            _ => stack.extend(next[i].iter().copied()),
        }
    }
    open.pop();
    let mut joins = joins.into_iter();
    match (joins.next(), joins.next()) {
        (Some(join), None) if end.is_some() => Err(format!(
            "a branch of the parallel fork `{id}` may reach the end `{}` while the join `{}` waits for it",
            end.map_or("", |e| nodes[e].id()),
            nodes[join].id()
        )),
        (Some(join), None) if previous[join].len() == next[fork].len() => Ok(Some(join)),
        (Some(join), None) => Err(format!(
            "unbalanced parallel join: the fork `{id}` starts {} paths, the join `{}` waits for {}",
            next[fork].len(),
            nodes[join].id(),
            previous[join].len()
        )),
        (None, _) => Ok(None),
        (Some(_), Some(_)) => Err(format!(
            "the branches of the parallel fork `{id}` meet at different joins"
        )),
    }
}
