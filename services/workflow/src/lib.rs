//! The workflow service: BPMN-like definitions with CEL ([`definition`]), checked before they
//! run; the interpreter that runs them ([`engine`]); and the durable engine around it: instances,
//! tasks, timers and history in the service's database ([`store`]), the REST API ([`api`]), the
//! timer scheduler ([`scheduler`]) and the bus consumer for replies and messages ([`events`]).

pub mod api;
pub mod config;
pub mod definition;
pub mod engine;
pub mod events;
pub mod scheduler;
pub mod store;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use meridian_chassis::Clock;
use meridian_chassis::batch::Batcher;
use meridian_chassis::db::{AnyConnection, Db};
use meridian_chassis::outbox::Waker;

pub use config::WorkflowConfig;

use crate::engine::{Directory, Effect, EngineError, Instance, Start};
use crate::store::definitions::Registry;
use crate::store::instances::{StepContext, StepError, Writes};

/// What a step does to an instance (run again on its own if its batch fails, so `Fn`).
pub type StepOp = Arc<
    dyn Fn(&definition::Compiled, &mut Instance, &dyn Directory) -> Result<Vec<Effect>, EngineError>
        + Send
        + Sync,
>;

/// What a step is about.
#[derive(Clone)]
pub enum Target {
    /// A new instance of the newest version of a definition.
    Start {
        /// The definition's id.
        definition: String,
        /// The instance to start.
        request: Start,
    },
    /// A stored instance.
    Instance {
        /// Its id.
        id: uuid::Uuid,
        /// The change.
        op: StepOp,
    },
}

/// One step, queued for group commit.
#[derive(Clone)]
pub struct StepJob {
    /// On what.
    pub target: Target,
    /// Who.
    pub actor: String,
    /// When.
    pub now: DateTime<Utc>,
    /// The request's trace id.
    pub correlation: Option<String>,
}

/// The answer to one step: the instance after it, or why not.
pub type StepResult = Result<Instance, StepError>;

/// The service's name.
pub const NAME: &str = "workflow";

/// What the handlers, the scheduler and the consumer share.
#[derive(Clone)]
pub struct Workflow {
    /// The service's own database.
    pub db: Db,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The `workflow` configuration section.
    pub config: WorkflowConfig,
    /// Wakes the outbox relay after a commit.
    pub waker: Waker,
    /// Compiled definitions.
    pub registry: Registry,
    /// Wakes the timer scheduler (a step may have set an earlier timer).
    pub timers: Arc<tokio::sync::Notify>,
    /// Commits concurrent steps together (group commit).
    pub steps: Batcher<StepJob, StepResult, StepError>,
    /// The bus queue the consumer listens on, once started, and what is bound to it.
    pub listening: Arc<std::sync::Mutex<Option<Listening>>>,
}

/// The consumer's queue and its bindings, for binding more at run time.
#[derive(Debug, Clone)]
pub struct Listening {
    /// The bus.
    pub bus: meridian_chassis::bus::Bus,
    /// The queue.
    pub queue: String,
    /// The routing keys bound so far.
    pub bound: std::collections::BTreeSet<String>,
}

impl std::fmt::Debug for Workflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workflow").field("db", &self.db).finish()
    }
}

impl Workflow {
    /// The service on `db`.
    pub fn new(db: Db, clock: Arc<dyn Clock>, config: WorkflowConfig, waker: Waker) -> Self {
        let registry = Registry::default();
        let steps = Batcher::new("workflow-step", db.clone(), run_steps(registry.clone()));
        Self {
            db,
            clock,
            config,
            waker,
            registry,
            timers: Arc::new(tokio::sync::Notify::new()),
            steps,
            listening: Arc::default(),
        }
    }

    /// Binds the events `compiled` waits for (replies, messages, its trigger) that the consumer
    /// does not hear yet; nothing when no consumer runs.
    ///
    /// # Errors
    /// The broker refusing or unreachable.
    pub async fn listen_for(
        &self,
        compiled: &definition::Compiled,
    ) -> Result<(), meridian_chassis::bus::BusError> {
        let listening = self
            .listening
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let Some(listening) = listening else {
            return Ok(());
        };
        for key in events::bindings([compiled]) {
            if !listening.bound.contains(&key) {
                listening.bus.bind(&listening.queue, &key).await?;
                if let Some(l) = self
                    .listening
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .as_mut()
                {
                    l.bound.insert(key);
                }
            }
        }
        Ok(())
    }

    /// Runs one step with group commit, then wakes the relay and the scheduler.
    ///
    /// # Errors
    /// The step's own refusal, or the database failing.
    pub async fn run_step(&self, job: StepJob) -> StepResult {
        let result = self.steps.submit(job).await.and_then(|r| r);
        if result.is_ok() {
            self.committed();
        }
        result
    }

    /// The context of a step by `actor` now.
    pub fn context<'a>(
        registry: &'a Registry,
        actor: &'a str,
        now: chrono::DateTime<chrono::Utc>,
        correlation_id: Option<&'a str>,
    ) -> StepContext<'a> {
        StepContext {
            actor,
            now,
            correlation_id,
            registry,
        }
    }

    /// Every deployed version, compiled (running instances may use any of them).
    ///
    /// # Errors
    /// The database failing, or a stored version that no longer loads.
    pub async fn deployed(&self) -> anyhow::Result<Vec<Arc<definition::Compiled>>> {
        let registry = self.registry.clone();
        self.db
            .run(move |conn| -> Result<_, meridian_chassis::db::DbError> {
                store::definitions::list(conn, None)?
                    .iter()
                    .map(|row| Ok(registry.get(conn, &row.id, &row.version)?))
                    .collect()
            })
            .await
            .map_err(anyhow::Error::from)
    }

    /// After a committed step: wake the relay and the scheduler.
    pub fn committed(&self) {
        self.waker.wake();
        self.timers.notify_one();
    }
}

/// Deploys every definition of `dir` (each new content becomes its newest version); returns
/// `(id, version)` of each. All are validated first: one bad file deploys nothing.
///
/// # Errors
/// A file that cannot be read or does not validate (every problem, with file:line:column), or
/// the database failing.
pub async fn deploy_folder(
    service: &Workflow,
    dir: &std::path::Path,
) -> anyhow::Result<Vec<(String, String)>> {
    let files = definition::files::files(&[dir.to_path_buf()])
        .map_err(|e| anyhow::anyhow!("workflow.definitions_dir {}: {e}", dir.display()))?;
    let (loaded, problems) = definition::files::load_all(&files);
    if !problems.is_empty() {
        anyhow::bail!(
            "workflow definitions do not validate:\n{}",
            problems.join("\n")
        );
    }
    let now = service.clock.now();
    let registry = service.registry.clone();
    let compiled: Vec<Arc<definition::Compiled>> =
        loaded.into_iter().map(|(_, c)| Arc::new(c)).collect();
    let ids = compiled
        .iter()
        .map(|c| (c.definition.id.clone(), c.version.clone()))
        .collect();
    service
        .db
        .transaction(move |conn| -> Result<(), meridian_chassis::db::DbError> {
            for c in &compiled {
                store::definitions::deploy(conn, &registry, c, "file", "system:startup", now)?;
            }
            Ok(())
        })
        .await?;
    Ok(ids)
}

/// The batch function of [`Workflow::steps`]: every step of the batch in one transaction, its
/// writes flushed together; a step the engine refuses writes nothing and gets its error.
fn run_steps(
    registry: Registry,
) -> impl Fn(&mut AnyConnection, &[StepJob]) -> Result<Vec<StepResult>, StepError> + Send + Sync + 'static
{
    move |conn, jobs| {
        let mut writes = Writes::default();
        let mut out = Vec::with_capacity(jobs.len());
        for job in jobs {
            let ctx = Workflow::context(&registry, &job.actor, job.now, job.correlation.as_deref());
            let result = match &job.target {
                Target::Start {
                    definition,
                    request,
                } => match registry.newest(conn, definition)? {
                    None => Err(StepError::NotFound),
                    Some(compiled) => store::instances::start_into(
                        conn,
                        ctx,
                        &compiled,
                        request.clone(),
                        None,
                        &mut writes,
                    ),
                },
                Target::Instance { id, op } => {
                    store::instances::step_into(conn, ctx, *id, |c, i, d| op(c, i, d), &mut writes)
                }
            };
            match result {
                Ok(instance) => out.push(Ok(instance)),
                Err(error @ (StepError::NotFound | StepError::Engine(_))) => out.push(Err(error)),
                Err(error) => return Err(error),
            }
        }
        writes.flush(conn)?;
        Ok(out)
    }
}

/// Registers the service's routes and state.
pub fn configure(service: Workflow) -> impl FnOnce(&mut actix_web::web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(actix_web::web::Data::new(service));
        api::configure(cfg);
    }
}
