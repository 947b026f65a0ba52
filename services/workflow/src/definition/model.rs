//! The shape of a definition file, as written in YAML. [`super::validate`] checks what the shape
//! cannot say; [`super::Compiled`] is what the engine runs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use meridian_chassis::fields::{Field, FieldType};

/// A workflow definition.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// Stable id, e.g. `change-advisory-board` (lower case, digits and dashes).
    pub id: String,
    /// Human name.
    pub name: String,
    /// What the workflow is for.
    #[serde(default)]
    pub description: String,
    /// What starts an instance besides `POST /v1/instances`.
    #[serde(default)]
    pub trigger: Option<Trigger>,
    /// The variables an instance starts with, by name.
    #[serde(default)]
    pub variables: BTreeMap<String, Field>,
    /// Who may never act on this workflow's tasks: names of variables holding a user id
    /// (`initiator` is always there: who started the instance).
    #[serde(default)]
    pub segregation: Vec<String>,
    /// Bus events that cancel a running instance: one of these types whose subject is the
    /// instance's business key withdraws its open tasks and stops it (e.g. the request it
    /// fulfils was cancelled).
    #[serde(default)]
    pub cancel_on: Vec<String>,
    /// The nodes; the first `start` node is where an instance begins.
    pub nodes: Vec<Node>,
}

/// Starts an instance when an event arrives and the condition holds.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// Bus event type, e.g. `control.change.submitted`.
    pub event: String,
    /// CEL over `event` (the event's payload as a map); absent means always.
    #[serde(default)]
    pub condition: Option<String>,
    /// CEL over `event` giving the business key; absent means the event's subject.
    #[serde(default)]
    pub business_key: Option<String>,
    /// Variables from the event: name → CEL over `event`.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
}

/// One node of the graph. Every node has an `id`, unique within the definition (CEL names a
/// task's result by it: `triage.risk`), and may have a human `name`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Node {
    /// Where an instance begins.
    Start {
        /// Id.
        id: String,
        /// Name.
        #[serde(default)]
        name: Option<String>,
        /// The next node.
        next: String,
    },
    /// Where a path ends; the instance completes when no path is left.
    End {
        /// Id.
        id: String,
        /// Name.
        #[serde(default)]
        name: Option<String>,
        /// The instance's outcome, e.g. `approved`.
        #[serde(default)]
        outcome: Option<String>,
    },
    /// Work for people.
    UserTask(Box<UserTask>),
    /// A command to a service over the bus, then its reply.
    ServiceTask(Box<ServiceTask>),
    /// One way out of several: the first condition that holds, else the default.
    ExclusiveGateway {
        /// Id.
        id: String,
        /// Name.
        #[serde(default)]
        name: Option<String>,
        /// Conditions in order.
        #[serde(default)]
        branches: Vec<Branch>,
        /// Where to go when no condition holds.
        #[serde(default)]
        default: Option<String>,
    },
    /// Forks to every next node (one incoming path) or joins every incoming path (one next).
    ParallelGateway {
        /// Id.
        id: String,
        /// Name.
        #[serde(default)]
        name: Option<String>,
        /// The next nodes.
        next: Vec<String>,
    },
    /// Waits for the first of several events.
    EventGateway {
        /// Id.
        id: String,
        /// Name.
        #[serde(default)]
        name: Option<String>,
        /// The events raced.
        branches: Vec<EventBranch>,
    },
    /// Waits for a duration.
    Timer {
        /// Id.
        id: String,
        /// Name.
        #[serde(default)]
        name: Option<String>,
        /// ISO 8601 duration, e.g. `PT4H`.
        duration: String,
        /// The next node.
        next: String,
    },
    /// Waits for a bus event about the instance's subject.
    Message {
        /// Id.
        id: String,
        /// Name.
        #[serde(default)]
        name: Option<String>,
        /// The awaited event type.
        event: String,
        /// CEL giving the subject the event must carry; absent: the business key.
        #[serde(default)]
        correlate: Option<String>,
        /// The next node.
        next: String,
    },
    /// Runs another definition as a child instance and waits for it.
    CallActivity {
        /// Id.
        id: String,
        /// Name.
        #[serde(default)]
        name: Option<String>,
        /// The called definition's id (its newest version when the call starts).
        definition: String,
        /// The child's variables: name → CEL over this instance's variables.
        #[serde(default)]
        variables: BTreeMap<String, String>,
        /// The next node.
        next: String,
    },
}

impl Node {
    /// The node's id.
    pub fn id(&self) -> &str {
        match self {
            Self::Start { id, .. }
            | Self::End { id, .. }
            | Self::ExclusiveGateway { id, .. }
            | Self::ParallelGateway { id, .. }
            | Self::EventGateway { id, .. }
            | Self::Timer { id, .. }
            | Self::Message { id, .. }
            | Self::CallActivity { id, .. } => id,
            Self::UserTask(task) => &task.id,
            Self::ServiceTask(task) => &task.id,
        }
    }

    /// The node's human name (its id when it has none).
    pub fn name(&self) -> &str {
        let name = match self {
            Self::Start { name, .. }
            | Self::End { name, .. }
            | Self::ExclusiveGateway { name, .. }
            | Self::ParallelGateway { name, .. }
            | Self::EventGateway { name, .. }
            | Self::Timer { name, .. }
            | Self::Message { name, .. }
            | Self::CallActivity { name, .. } => name,
            Self::UserTask(task) => &task.name,
            Self::ServiceTask(task) => &task.name,
        };
        name.as_deref().unwrap_or_else(|| self.id())
    }

    /// The nodes this one may lead to, with the path (below the node) naming each.
    pub fn successors(&self) -> Vec<(String, &str)> {
        match self {
            Self::Start { next, .. }
            | Self::Timer { next, .. }
            | Self::Message { next, .. }
            | Self::CallActivity { next, .. } => vec![("next".to_owned(), next.as_str())],
            Self::End { .. } => Vec::new(),
            Self::UserTask(task) => std::iter::once(("next".to_owned(), task.next.as_str()))
                .chain(boundary_successors(&task.boundary))
                .collect(),
            Self::ServiceTask(task) => std::iter::once(("next".to_owned(), task.next.as_str()))
                .chain(boundary_successors(&task.boundary))
                .collect(),
            Self::ExclusiveGateway {
                branches, default, ..
            } => branches
                .iter()
                .enumerate()
                .map(|(i, b)| (format!("branches[{i}].next"), b.next.as_str()))
                .chain(default.iter().map(|d| ("default".to_owned(), d.as_str())))
                .collect(),
            Self::ParallelGateway { next, .. } => next
                .iter()
                .enumerate()
                .map(|(i, n)| (format!("next[{i}]"), n.as_str()))
                .collect(),
            Self::EventGateway { branches, .. } => branches
                .iter()
                .enumerate()
                .map(|(i, b)| (format!("branches[{i}].next"), b.next.as_str()))
                .collect(),
        }
    }
}

fn boundary_successors(timers: &[BoundaryTimer]) -> impl Iterator<Item = (String, &str)> {
    timers.iter().enumerate().filter_map(|(i, timer)| {
        timer
            .next
            .as_deref()
            .map(|next| (format!("boundary[{i}].next"), next))
    })
}

/// A user task.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UserTask {
    /// Id.
    pub id: String,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Who may work it; with `multi_instance`, each instance is its item's.
    #[serde(default)]
    pub assignee: Option<Assignee>,
    /// Who may never complete it, besides the definition's `segregation`: names of variables
    /// holding user ids.
    #[serde(default)]
    pub segregation: Vec<String>,
    /// The outcomes a person chooses from, e.g. `[approved, rejected]`.
    #[serde(default = "default_outcomes")]
    pub outcomes: Vec<String>,
    /// Fields the person fills in.
    #[serde(default)]
    pub form: BTreeMap<String, Field>,
    /// ISO 8601 duration after which the task is due.
    #[serde(default)]
    pub due: Option<String>,
    /// One task per item of a collection, with a completion condition.
    #[serde(default)]
    pub multi_instance: Option<MultiInstance>,
    /// Timers attached to the task.
    #[serde(default)]
    pub boundary: Vec<BoundaryTimer>,
    /// What the business object is, for the task's summary: CEL over the variables.
    #[serde(default)]
    pub summary: Option<String>,
    /// The next node.
    pub next: String,
}

fn default_outcomes() -> Vec<String> {
    vec!["done".to_owned()]
}

/// Who may work a user task. Exactly one of the rules.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Assignee {
    /// One user.
    #[serde(default)]
    pub user: Option<String>,
    /// Everyone holding a role.
    #[serde(default)]
    pub role: Option<String>,
    /// Everyone in a group.
    #[serde(default)]
    pub group: Option<String>,
    /// CEL giving a user id or a list of them.
    #[serde(default)]
    pub expression: Option<String>,
    /// The owner of the CI whose id the named variable holds.
    #[serde(default)]
    pub ci_owner: Option<String>,
}

/// Many instances of one user task.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MultiInstance {
    /// CEL giving the list of users, one task each.
    pub over: String,
    /// All at once or one after the other.
    #[serde(default)]
    pub mode: Mode,
    /// CEL over the counts of each outcome and `completed` / `total`: when it holds, the task
    /// completes and open instances are withdrawn. Absent: when all are done.
    #[serde(default)]
    pub completion: Option<String>,
}

/// Multi-instance ordering.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// All at once.
    #[default]
    Parallel,
    /// One after the other.
    Sequential,
}

/// A timer on a task.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BoundaryTimer {
    /// Id (unique among the definition's nodes and timers).
    pub id: String,
    /// ISO 8601 duration from the task's start.
    pub after: String,
    /// Whether it ends the task (and leaves by `next`) or runs beside it.
    #[serde(default)]
    pub interrupting: bool,
    /// What a non-interrupting timer does to the open tasks.
    #[serde(default)]
    pub action: Option<TimerAction>,
    /// Where an interrupting timer leads.
    #[serde(default)]
    pub next: Option<String>,
}

/// What a non-interrupting timer does.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum TimerAction {
    /// Reminds the assignees (an event for the notifier).
    Remind,
    /// Adds candidates to the open tasks and tells them.
    Escalate {
        /// Who is added.
        to: Assignee,
    },
}

/// A service task.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceTask {
    /// Id.
    pub id: String,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// The command's type, e.g. `control.change.schedule` (routed to the service it names).
    pub command: String,
    /// The command's fields: name → CEL over the variables.
    #[serde(default)]
    pub input: BTreeMap<String, String>,
    /// The reply's event type; the reply carries the command's correlation id.
    pub reply: String,
    /// Retries when the reply says it failed or does not come in time.
    #[serde(default)]
    pub retry: Retry,
    /// Timers attached to the task.
    #[serde(default)]
    pub boundary: Vec<BoundaryTimer>,
    /// The next node.
    pub next: String,
}

/// How a service task retries.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// ISO 8601 duration to wait for a reply before trying again.
    pub timeout: String,
    /// The wait before the second attempt; it doubles each time.
    pub backoff: String,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            attempts: 3,
            timeout: "PT5M".to_owned(),
            backoff: "PT10S".to_owned(),
        }
    }
}

/// A branch of an exclusive gateway.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Branch {
    /// CEL condition.
    pub when: String,
    /// Where it leads.
    pub next: String,
}

/// A branch of an event gateway: a message or a timer.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EventBranch {
    /// The awaited message.
    #[serde(default)]
    pub message: Option<MessageSpec>,
    /// Or a duration.
    #[serde(default)]
    pub timer: Option<String>,
    /// Where it leads.
    pub next: String,
}

/// An awaited bus event.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MessageSpec {
    /// Its event type.
    pub event: String,
    /// CEL over the variables giving the subject the event must carry; absent means the
    /// instance's business key.
    #[serde(default)]
    pub correlate: Option<String>,
}
