//! `/v1/tasks`: a person's tasks; claim, complete, delegate.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use meridian_chassis::Problem;
use meridian_chassis::auth::{ADMIN, AnyRole, Authenticated, Principal};
use meridian_chassis::problem::{Json, Query, codes};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{correlation, utc};
use std::sync::Arc;

use crate::definition::Node;
use crate::engine::{self, Actor, expr};
use crate::store::instances::{self as instances, StepError};
use crate::store::tasks::{self as store, Filter, TaskRow};
use crate::{StepJob, Target, Workflow};

/// A task.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskView {
    /// Id.
    pub id: Uuid,
    /// Its instance.
    pub instance_id: Uuid,
    /// The instance's definition.
    pub definition: String,
    /// The business object, e.g. the change's id.
    pub business_key: String,
    /// The user task node.
    pub node: String,
    /// What to do.
    pub name: String,
    /// `open`, `completed` or `withdrawn`.
    pub state: String,
    /// The one person it is assigned to.
    pub assignee: Option<String>,
    /// Users who may claim it.
    pub candidate_users: Vec<String>,
    /// Roles whose holders may claim it.
    pub candidate_roles: Vec<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Due.
    pub due_at: Option<DateTime<Utc>>,
    /// Completed or withdrawn.
    pub ended_at: Option<DateTime<Utc>>,
    /// Who completed it.
    pub completed_by: Option<String>,
    /// The outcome chosen.
    pub outcome: Option<String>,
    /// The comment.
    pub comment: Option<String>,
    /// The form's fields as filled in.
    #[schema(value_type = Option<Object>)]
    pub fields: Option<Value>,
    /// The outcomes to choose from (on `GET /v1/tasks/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcomes: Option<Vec<String>>,
    /// The form to fill in (on `GET /v1/tasks/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub form: Option<Value>,
    /// What is being decided: the task's `summary` over the instance's variables, e.g. the
    /// change with its risk (on `GET /v1/tasks/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub summary: Option<Value>,
    /// A decision many take (multi-instance), on `GET /v1/tasks/{id}`: the rule, who takes
    /// part, and the votes so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quorum: Option<Quorum>,
}

/// The votes so far on a decision many take.
#[derive(Debug, Serialize, ToSchema)]
pub struct Quorum {
    /// When the decision is taken, over the counts of each outcome, e.g.
    /// `rejected >= 1 || approved >= 2`; absent: when everyone has decided.
    pub rule: Option<String>,
    /// Who takes part, one task each.
    pub members: Vec<String>,
    /// The votes, in order.
    pub votes: Vec<Vote>,
    /// How many chose each outcome.
    pub counts: std::collections::BTreeMap<String, usize>,
}

/// One vote.
#[derive(Debug, Serialize, ToSchema)]
pub struct Vote {
    /// Who.
    pub user: String,
    /// The outcome chosen.
    pub outcome: String,
    /// Their comment.
    pub comment: Option<String>,
}

impl Quorum {
    /// The progress of the round `row` belongs to: its token while the task is open, else the
    /// token still on its node (an ended decision has no votes left to show).
    fn of(instance: &engine::Instance, row: &TaskRow, rule: Option<String>) -> Self {
        let id = Uuid::parse_str(&row.id).unwrap_or_default();
        let token = instance
            .tasks
            .iter()
            .find(|t| t.id == id)
            .map(|t| t.token)
            .and_then(|token| instance.tokens.iter().find(|t| t.id == token))
            .or_else(|| instance.tokens.iter().find(|t| t.node == row.node));
        let multi = token.and_then(|t| t.multi.as_ref());
        let votes: Vec<Vote> = multi
            .map(|m| {
                m.decisions
                    .iter()
                    .enumerate()
                    .map(|(i, (user, outcome))| Vote {
                        user: user.clone(),
                        outcome: outcome.clone(),
                        comment: m.comments.get(i).cloned().flatten(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut counts = std::collections::BTreeMap::new();
        for vote in &votes {
            *counts.entry(vote.outcome.clone()).or_insert(0) += 1;
        }
        Self {
            rule,
            members: multi.map(|m| m.items.clone()).unwrap_or_default(),
            votes,
            counts,
        }
    }
}

fn view(
    conn: &mut meridian_chassis::db::AnyConnection,
    row: TaskRow,
    registry: &crate::store::definitions::Registry,
) -> Result<TaskView, Problem> {
    let candidates = store::candidates(conn, &row.id)?;
    let instance_id = Uuid::parse_str(&row.instance_id).unwrap_or_default();
    let instance_row = instances::find(conn, instance_id)?
        .ok_or_else(|| Problem::new(codes::WORKFLOW_INSTANCE_NOT_FOUND))?;
    let (mut outcomes, mut form, mut summary, mut quorum) = (None, None, None, None);
    let compiled = registry.get(conn, &instance_row.definition, &instance_row.version)?;
    if let Some(Node::UserTask(spec)) = compiled.node(&row.node) {
        outcomes = Some(spec.outcomes.clone());
        form = Some(serde_json::to_value(&spec.form).unwrap_or_default());
        let instance = instance_row.instance()?;
        if let Some(multi) = &spec.multi_instance {
            quorum = Some(Quorum::of(&instance, &row, multi.completion.clone()));
        }
        if let Some(source) = &spec.summary {
            let scope = expr::Scope {
                variables: &instance.variables,
                extra: &[],
            };
            summary = Some(match expr::eval(&compiled, source, &scope) {
                Ok(value) => expr::to_json(&value),
                Err(error) => Value::String(error.to_string()),
            });
        }
    }
    Ok(TaskView {
        outcomes,
        form,
        summary,
        quorum,
        ..brief(
            row,
            candidates,
            (instance_row.definition, instance_row.business_key),
        )
    })
}

/// A page of tasks as the list shows them: three queries, however long the page.
fn views(
    conn: &mut meridian_chassis::db::AnyConnection,
    rows: Vec<TaskRow>,
) -> Result<Vec<TaskView>, Problem> {
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut candidates = store::candidates_of(conn, &ids)?;
    let instance_ids: Vec<String> = rows.iter().map(|r| r.instance_id.clone()).collect();
    let keys = instances::keys_of(conn, &instance_ids)?;
    rows.into_iter()
        .map(|row| {
            let key = keys
                .get(&row.instance_id)
                .cloned()
                .ok_or_else(|| Problem::new(codes::WORKFLOW_INSTANCE_NOT_FOUND))?;
            let mine = candidates.remove(&row.id).unwrap_or_default();
            Ok(brief(row, mine, key))
        })
        .collect()
}

/// A task without what only its own page shows (outcomes, form, summary).
fn brief(row: TaskRow, candidates: store::Candidates, key: (String, String)) -> TaskView {
    let (definition, business_key) = key;
    TaskView {
        id: Uuid::parse_str(&row.id).unwrap_or_default(),
        instance_id: Uuid::parse_str(&row.instance_id).unwrap_or_default(),
        definition,
        business_key,
        node: row.node,
        name: row.name,
        state: row.state,
        assignee: row.assignee,
        candidate_users: candidates.users,
        candidate_roles: candidates.roles,
        created_at: utc(row.created_at),
        due_at: row.due_at.map(utc),
        ended_at: row.ended_at.map(utc),
        completed_by: row.completed_by,
        outcome: row.outcome,
        comment: row.comment,
        fields: row.fields.and_then(|f| serde_json::from_str(&f).ok()),
        outcomes: None,
        form: None,
        summary: None,
        quorum: None,
    }
}

/// `GET /v1/tasks` filters. Without `assignee`, `candidate` or `instance`: `assignee=me`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TaskQuery {
    /// `me`, or a user id (workflow admins only).
    pub assignee: Option<String>,
    /// `me`: unassigned tasks the caller may claim (as a candidate user or by role), never those
    /// segregation of duties keeps from them.
    pub candidate: Option<String>,
    /// `open` (default), `completed`, `withdrawn` or `all`.
    pub state: Option<String>,
    /// Only the tasks of this instance.
    pub instance: Option<Uuid>,
    /// The cursor: the last id of the previous page.
    pub after: Option<Uuid>,
    /// Page size, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// A page of tasks.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskPage {
    /// The tasks, oldest first.
    pub items: Vec<TaskView>,
    /// The cursor of the next page, if there is one.
    pub next: Option<Uuid>,
}

/// `GET /v1/tasks`: the caller's tasks, or those they may claim.
#[utoipa::path(get, path = "/v1/tasks", tag = "tasks", params(TaskQuery),
    responses(
        (status = 200, description = "A page of tasks", body = TaskPage),
        (status = 400, description = "A bad filter, named", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn list_tasks(
    who: Authenticated<AnyRole>,
    query: Query<TaskQuery>,
    svc: web::Data<Workflow>,
) -> Result<HttpResponse, Problem> {
    let query = query.0;
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(Problem::field("limit", "must be 1 to 200"));
    }
    let me = who.subject.clone();
    let assignee = match query.assignee.as_deref() {
        None => None,
        Some("me") => Some(me.clone()),
        Some(other) if who.has("workflow-admin") => Some(other.to_owned()),
        Some(_) => {
            return Err(Problem::new(codes::FORBIDDEN)
                .detail("only a workflow admin lists the tasks of someone else"));
        }
    };
    let candidate = match query.candidate.as_deref() {
        None => None,
        Some("me") => Some((me.clone(), who.roles.iter().cloned().collect::<Vec<_>>())),
        Some(_) => return Err(Problem::field("candidate", "must be `me`")),
    };
    let state = match query.state.as_deref().unwrap_or("open") {
        "all" => None,
        s @ ("open" | "completed" | "withdrawn") => Some(s.to_owned()),
        _ => {
            return Err(Problem::field(
                "state",
                "must be open, completed, withdrawn or all",
            ));
        }
    };
    let instance = query.instance.map(|i| i.to_string());
    let assignee = if assignee.is_none() && candidate.is_none() && instance.is_none() {
        Some(me)
    } else {
        assignee
    };
    let filter = Filter {
        assignee,
        candidate,
        state,
        instance,
        after: query.after.map(|a| a.to_string()),
        limit: limit + 1,
    };
    let page = svc
        .db
        .run(move |conn| -> Result<TaskPage, Problem> {
            let mut rows = store::list(conn, &filter)?;
            let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
            rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            let items = views(conn, rows)?;
            let next = more.then(|| items.last().map(|t| t.id)).flatten();
            Ok(TaskPage { items, next })
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// `GET /v1/tasks/{id}`: the task with its form, its outcomes and what is being decided.
#[utoipa::path(get, path = "/v1/tasks/{id}", tag = "tasks",
    params(("id" = Uuid, Path, description = "Task id")),
    responses(
        (status = 200, description = "The task", body = TaskView),
        (status = 404, description = "No such task", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn get_task(
    _who: Authenticated<AnyRole>,
    id: web::Path<Uuid>,
    svc: web::Data<Workflow>,
) -> Result<HttpResponse, Problem> {
    let id = id.into_inner();
    let registry = svc.registry.clone();
    let task = svc
        .db
        .run(move |conn| -> Result<TaskView, Problem> {
            let row = store::find(conn, id)?.ok_or_else(|| Problem::new(codes::TASK_NOT_FOUND))?;
            view(conn, row, &registry)
        })
        .await?;
    Ok(HttpResponse::Ok().json(task))
}

fn actor(who: &Principal) -> Actor {
    Actor {
        id: who.subject.clone(),
        roles: who.roles.iter().cloned().collect(),
        admin: who.roles.contains(ADMIN),
    }
}

/// Runs a step on the task's instance (group commit), then answers with the task.
async fn on_task<F>(
    svc: &Workflow,
    req: &HttpRequest,
    id: Uuid,
    who: &Principal,
    op: F,
) -> Result<HttpResponse, Problem>
where
    F: Fn(
            &crate::definition::Compiled,
            &mut engine::Instance,
            &dyn engine::Directory,
            &Actor,
            DateTime<Utc>,
        ) -> Result<Vec<engine::Effect>, engine::EngineError>
        + Send
        + Sync
        + 'static,
{
    let now = svc.clock.now();
    let actor = actor(who);
    let instance_id = svc
        .db
        .run(move |conn| -> Result<Uuid, Problem> {
            let row = store::find(conn, id)?.ok_or_else(|| Problem::new(codes::TASK_NOT_FOUND))?;
            Ok(Uuid::parse_str(&row.instance_id).unwrap_or_default())
        })
        .await?;
    let job = StepJob {
        target: Target::Instance {
            id: instance_id,
            op: Arc::new({
                let actor = actor.clone();
                move |compiled, instance, directory| op(compiled, instance, directory, &actor, now)
            }),
        },
        actor: actor.id.clone(),
        now,
        correlation: correlation(req),
    };
    // The instance lock serialises concurrent decisions on its tasks.
    let closed = match svc.run_step(job).await {
        Ok(_) => false,
        Err(StepError::Engine(engine::EngineError::NoTask(_))) => true,
        Err(error) => return Err(error.into()),
    };
    let task = svc
        .db
        .run(move |conn| -> Result<TaskView, Problem> {
            let row = store::find(conn, id)?.ok_or_else(|| Problem::new(codes::TASK_NOT_FOUND))?;
            if closed {
                return Err(
                    Problem::new(codes::TASK_CLOSED).detail(format!("the task is {}", row.state))
                );
            }
            views(conn, vec![row])?
                .pop()
                .ok_or_else(|| Problem::new(codes::TASK_NOT_FOUND))
        })
        .await?;
    Ok(HttpResponse::Ok().json(task))
}

/// `POST /v1/tasks/{id}/claim`: a candidate takes an unassigned task.
#[utoipa::path(post, path = "/v1/tasks/{id}/claim", tag = "tasks",
    params(("id" = Uuid, Path, description = "Task id")),
    responses(
        (status = 200, description = "Claimed", body = TaskView),
        (status = 403, description = "Not a candidate, or excluded by segregation of duties", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such task", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "Already completed or withdrawn", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn claim_task(
    who: Authenticated<AnyRole>,
    req: HttpRequest,
    id: web::Path<Uuid>,
    svc: web::Data<Workflow>,
) -> Result<HttpResponse, Problem> {
    let id = id.into_inner();
    on_task(&svc, &req, id, &who, move |_, instance, _, actor, _| {
        engine::assign(instance, id, actor, None)
    })
    .await
}

/// The body of `POST /v1/tasks/{id}/complete`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteTask {
    /// One of the task's outcomes, e.g. `approved`.
    pub outcome: String,
    /// A comment, recorded with the decision.
    pub comment: Option<String>,
    /// The form's fields.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub fields: serde_json::Map<String, Value>,
}

/// `POST /v1/tasks/{id}/complete`: decides the task.
#[utoipa::path(post, path = "/v1/tasks/{id}/complete", tag = "tasks",
    params(("id" = Uuid, Path, description = "Task id")), request_body = CompleteTask,
    responses(
        (status = 200, description = "Completed", body = TaskView),
        (status = 400, description = "A bad outcome or form field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 403, description = "Not the assignee or a candidate, or excluded by segregation of duties", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such task", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "Already completed or withdrawn", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn complete_task(
    who: Authenticated<AnyRole>,
    req: HttpRequest,
    id: web::Path<Uuid>,
    body: Json<CompleteTask>,
    svc: web::Data<Workflow>,
) -> Result<HttpResponse, Problem> {
    let body = body.0;
    if body.comment.as_ref().is_some_and(|c| c.len() > 5000) {
        return Err(Problem::field("comment", "must be at most 5000 characters"));
    }
    let id = id.into_inner();
    on_task(
        &svc,
        &req,
        id,
        &who,
        move |compiled, instance, directory, actor, now| {
            engine::complete(
                compiled,
                instance,
                id,
                actor,
                &body.outcome,
                body.comment.clone(),
                body.fields.clone(),
                now,
                directory,
            )
        },
    )
    .await
}

/// The body of `POST /v1/tasks/{id}/delegate`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DelegateTask {
    /// The user who gets the task.
    #[schema(min_length = 1, max_length = 200)]
    pub to: String,
}

/// `POST /v1/tasks/{id}/delegate`: the assignee (or a candidate of an unassigned task) hands
/// the task to someone else; never to someone segregation of duties excludes.
#[utoipa::path(post, path = "/v1/tasks/{id}/delegate", tag = "tasks",
    params(("id" = Uuid, Path, description = "Task id")), request_body = DelegateTask,
    responses(
        (status = 200, description = "Delegated", body = TaskView),
        (status = 403, description = "Not the assignee, or the delegate is excluded", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such task", body = meridian_chassis::problem::ProblemBody),
        (status = 409, description = "Already completed or withdrawn", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn delegate_task(
    who: Authenticated<AnyRole>,
    req: HttpRequest,
    id: web::Path<Uuid>,
    body: Json<DelegateTask>,
    svc: web::Data<Workflow>,
) -> Result<HttpResponse, Problem> {
    let to = body.0.to;
    if to.trim().is_empty() || to.chars().count() > 200 {
        return Err(Problem::field("to", "must be 1 to 200 characters"));
    }
    let id = id.into_inner();
    on_task(&svc, &req, id, &who, move |_, instance, _, actor, _| {
        engine::assign(instance, id, actor, Some(&to))
    })
    .await
}
