//! Fires due timers. Each timer fires in a transaction of its own that first takes the timer's
//! row (`FOR UPDATE SKIP LOCKED` on PostgreSQL) and then the instance's, so with several replicas
//! a timer fires once: the replica that loses the race skips it, and a timer already fired is
//! gone.

use std::time::Duration;

use uuid::Uuid;

use crate::Workflow;
use crate::engine;
use crate::store::instances::{self, StepError};
use crate::store::timers;

/// The actor of timer steps.
pub const ACTOR: &str = "system:timer";

/// Fires every timer due now (up to the configured batch); returns how many fired.
///
/// # Errors
/// The database unreachable.
pub async fn fire_due(svc: &Workflow) -> Result<usize, meridian_chassis::db::DbError> {
    let now = svc.clock.now();
    let limit = i64::from(svc.config.timer_batch);
    let due = svc
        .db
        .run(move |conn| timers::due(conn, now, limit).map_err(meridian_chassis::db::DbError::from))
        .await?;
    let mut fired = 0;
    for (instance, timer) in due {
        if fire_one(svc, instance, timer).await? {
            fired += 1;
        }
    }
    if fired > 0 {
        svc.waker.wake();
    }
    Ok(fired)
}

/// Fires one timer; `false` when another replica has it or it is gone.
async fn fire_one(
    svc: &Workflow,
    instance: Uuid,
    timer: u32,
) -> Result<bool, meridian_chassis::db::DbError> {
    let now = svc.clock.now();
    let registry = svc.registry.clone();
    let result = svc
        .db
        .transaction(move |conn| -> Result<bool, StepError> {
            if !timers::claim(conn, instance, timer)? {
                return Ok(false);
            }
            let ctx = Workflow::context(&registry, ACTOR, now, None);
            instances::step(conn, ctx, instance, |compiled, state, directory| {
                engine::fire(compiled, state, timer, now, directory)
            })?;
            Ok(true)
        })
        .await;
    match result {
        Ok(fired) => Ok(fired),
        Err(error @ (StepError::Db(_) | StepError::Unavailable(_))) => Err(error.into()),
        Err(StepError::NotFound | StepError::Engine(_)) => {
            // The timer belongs to a finished instance or was already fired: drop its row.
            let db = svc.db.clone();
            db.transaction(move |conn| {
                use crate::store::schema::wf_timers;
                use diesel::prelude::*;
                diesel::delete(wf_timers::table.find((
                    instance.to_string(),
                    i32::try_from(timer).unwrap_or(i32::MAX),
                )))
                .execute(conn)
                .map_err(meridian_chassis::db::DbError::from)
            })
            .await?;
            Ok(false)
        }
    }
}

/// Runs until the process ends: fires what is due, then sleeps until the next timer, the poll
/// interval, or a wake-up from a step, whichever comes first.
pub async fn run(svc: Workflow) {
    let poll = Duration::from_millis(svc.config.timer_poll_ms);
    loop {
        match fire_due(&svc).await {
            Ok(fired) if fired == usize::try_from(svc.config.timer_batch).unwrap_or(usize::MAX) => {
                continue;
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "timers could not be fired; retrying"),
        }
        let db = svc.db.clone();
        let next = db
            .run(|conn| timers::next_due(conn).map_err(meridian_chassis::db::DbError::from))
            .await
            .ok()
            .flatten();
        let wait = next
            .map(|at| (at - svc.clock.now()).to_std().unwrap_or(Duration::ZERO))
            .map_or(poll, |until| until.min(poll));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = svc.timers.notified() => {}
        }
    }
}
