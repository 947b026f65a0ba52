//! `make bench`: the durable engine on PostgreSQL. Change advisory board instances run from
//! start to end with every step committed on its own (start, assessment, two CAB votes that
//! close the third, the scheduling reply): concurrent workers, no HTTP and no broker in between.
//! Also what one completed instance keeps in the database.
//!
//! Arguments: the database URL (an empty database), then the results file.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark fails loudly"
)]

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use meridian_chassis::db::{Db, DbError};
use meridian_chassis::outbox::Waker;
use meridian_chassis::{Clock, SystemClock};
use meridian_workflow::engine::{self, Actor, Effect, Start};
use meridian_workflow::{StepJob, Target, Workflow, WorkflowConfig};
use serde_json::json;
use uuid::Uuid;

const WORKERS: usize = 24;
const SECONDS: u64 = 20;

fn actor(id: &str, roles: &[&str]) -> Actor {
    Actor {
        id: id.to_owned(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        admin: false,
    }
}

/// One committed step on `id` by `who`, through the service's group commit (as the API does).
async fn step(
    svc: &Workflow,
    id: Uuid,
    who: &'static str,
    op: impl Fn(
        &meridian_workflow::definition::Compiled,
        &mut engine::Instance,
        &dyn engine::Directory,
    ) -> Result<Vec<Effect>, engine::EngineError>
    + Send
    + Sync
    + 'static,
) -> engine::Instance {
    svc.run_step(StepJob {
        target: Target::Instance {
            id,
            op: Arc::new(op),
        },
        actor: who.to_owned(),
        now: svc.clock.now(),
        correlation: None,
    })
    .await
    .unwrap()
}

async fn complete(
    svc: &Workflow,
    id: Uuid,
    who: &'static str,
    roles: &'static [&'static str],
    outcome: &'static str,
    fields: serde_json::Value,
) -> engine::Instance {
    let now = svc.clock.now();
    step(svc, id, who, move |compiled, instance, directory| {
        let person = actor(who, roles);
        let task = instance
            .tasks
            .iter()
            .find(|t| engine::may_work(t, &person))
            .map(|t| t.id)
            .unwrap();
        engine::complete(
            compiled,
            instance,
            task,
            &person,
            outcome,
            None,
            fields.as_object().unwrap().clone(),
            now,
            directory,
        )
    })
    .await
}

/// One CAB instance, start to end, each step committed before the next.
async fn run_one(svc: &Workflow) -> Uuid {
    let variables = json!({"change": {"id": "CHG0001234", "title": "Upgrade PostgreSQL to 17"}, "requester": "rita", "cab_members": ["ann", "ben", "cat"]});
    let started = svc
        .run_step(StepJob {
            target: Target::Start {
                definition: "change-advisory-board".to_owned(),
                request: Start {
                    id: Uuid::now_v7(),
                    business_key: "CHG0001234".to_owned(),
                    initiator: "rita".to_owned(),
                    variables: variables.as_object().unwrap().clone(),
                },
            },
            actor: "rita".to_owned(),
            now: svc.clock.now(),
            correlation: None,
        })
        .await
        .unwrap();
    let id = started.id;
    complete(
        svc,
        id,
        "max",
        &["change-manager"],
        "assessed",
        json!({"risk": "high"}),
    )
    .await;
    complete(svc, id, "ann", &[], "approved", json!({})).await;
    let instance = complete(svc, id, "ben", &[], "approved", json!({})).await;
    let correlation = instance.tokens[0].correlation.clone().unwrap();
    let now = svc.clock.now();
    let done = step(
        svc,
        id,
        "system:bus",
        move |compiled, instance, directory| {
            engine::reply(
                compiled,
                instance,
                &correlation,
                Ok(json!({})),
                now,
                directory,
            )
        },
    )
    .await;
    assert_eq!(done.outcome.as_deref(), Some("approved"));
    id
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let url = args.next().expect("the database URL");
    let out = args.next();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let db = Db::connect(&url, u32::try_from(WORKERS).unwrap(), Duration::from_secs(5)).unwrap();
        db.migrate(meridian_workflow::store::MIGRATIONS).await.unwrap();
        let config = WorkflowConfig {
            definitions_dir: String::new(),
            timer_poll_ms: 1000,
            timer_batch: 100,
        };
        let svc = Workflow::new(db.clone(), Arc::new(SystemClock), config, Waker::default());
        let workflows = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows");
        meridian_workflow::deploy_folder(&svc, &workflows).await.unwrap();
        for _ in 0..50 {
            run_one(&svc).await;
        }
        let deadline = Instant::now() + Duration::from_secs(SECONDS);
        let started = Instant::now();
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| {
                let svc = svc.clone();
                tokio::spawn(async move {
                    let mut done = 0_u32;
                    while Instant::now() < deadline {
                        run_one(&svc).await;
                        done += 1;
                    }
                    done
                })
            })
            .collect();
        let mut completed = 0_u32;
        for worker in workers {
            completed += worker.await.unwrap();
        }
        let seconds = started.elapsed().as_secs_f64();
        let (state, rows) = db
            .run(|conn| -> Result<(f64, f64), DbError> {
                use diesel::prelude::*;
                #[derive(QueryableByName)]
                struct Figures {
                    #[diesel(sql_type = diesel::sql_types::Double)]
                    state: f64,
                    #[diesel(sql_type = diesel::sql_types::Double)]
                    total: f64,
                }
                let figures: Figures = diesel::sql_query(
                    "SELECT (SELECT avg(pg_column_size(state))::float8 FROM wf_instances) AS state, \
                     ((SELECT sum(pg_column_size(i.*))::float8 FROM wf_instances i) + \
                      (SELECT coalesce(sum(pg_column_size(t.*)), 0)::float8 FROM wf_tasks t) + \
                      (SELECT coalesce(sum(pg_column_size(c.*)), 0)::float8 FROM wf_task_candidates c) + \
                      (SELECT coalesce(sum(pg_column_size(d.*)), 0)::float8 FROM wf_decisions d)) \
                      / (SELECT count(*)::float8 FROM wf_instances) AS total",
                )
                .get_result(conn)?;
                Ok((figures.state, figures.total))
            })
            .await
            .unwrap();
        let history: f64 = db
            .run(|conn| -> Result<f64, DbError> {
                use diesel::prelude::*;
                #[derive(QueryableByName)]
                struct Figure {
                    #[diesel(sql_type = diesel::sql_types::Double)]
                    bytes: f64,
                }
                let figure: Figure = diesel::sql_query(
                    "SELECT (SELECT coalesce(sum(pg_column_size(h.*)), 0)::float8 FROM wf_history h) \
                     / (SELECT count(*)::float8 FROM wf_instances) AS bytes",
                )
                .get_result(conn)?;
                Ok(figure.bytes)
            })
            .await
            .unwrap();
        let per_second = f64::from(completed) / seconds;
        let report = format!(
            "# Durable workflow engine benchmark ({})\n\n\
             Change advisory board instances on PostgreSQL ({} concurrent workers, {SECONDS} s): start,\n\
             assessment, two CAB votes (the third is withdrawn), the scheduling reply. Every step is\n\
             committed, with its history, audit and outbox rows, before the next step of its instance;\n\
             concurrent steps of different instances share a transaction (group commit), as in the\n\
             service. Release build, 2-core machine, PostgreSQL on the same machine.\n\n\
             | figure | value |\n|---|---|\n\
             | CAB instances completed per second | {per_second:.0} |\n\
             | steps committed per second | {:.0} |\n\
             | instance state (the `state` column, as stored) | {state:.0} bytes |\n\
             | instance, task, candidate and decision rows of one instance | {rows:.0} bytes |\n\
             | history rows of one instance (the audit trail of every step) | {history:.0} bytes |\n",
            SystemClock.now().format("%Y-%m-%dT%H:%MZ"),
            WORKERS,
            per_second * 5.0,
        );
        if let Some(path) = out {
            std::fs::File::create(path).unwrap().write_all(report.as_bytes()).unwrap();
        }
        print!("{report}");
    });
}
