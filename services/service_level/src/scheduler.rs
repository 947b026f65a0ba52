//! The breach scheduler: every `service_level.scheduler_poll_ms` (or sooner, when a clock's next
//! check moved earlier) it takes the clocks whose warning or breach is due and raises them, so a
//! breach is announced within a second of its due time. Singleton work (run under the leader
//! election); on PostgreSQL replicas would also skip each other's clocks.

use std::time::Duration;

use meridian_chassis::db::DbError;

use crate::ServiceLevel;
use crate::store::{agreements, clocks};

/// Raises what is due now; how many clocks it looked at.
///
/// # Errors
/// The database failing.
pub async fn tick(svc: &ServiceLevel) -> Result<usize, DbError> {
    let now = svc.clock.now();
    let limit = svc.config.scheduler_batch;
    let handled = svc
        .db
        .transaction(move |conn| -> Result<usize, DbError> {
            let due = clocks::due(conn, now, limit)?;
            let count = due.len();
            let mut known = std::collections::HashMap::new();
            for row in due {
                if !known.contains_key(&row.agreement_id) {
                    let found = agreements::find(conn, &row.agreement_id)?;
                    known.insert(row.agreement_id.clone(), found);
                }
                let Some(Some(agreement)) = known.get(&row.agreement_id) else {
                    continue;
                };
                clocks::settle(conn, row, agreement, now)?;
            }
            Ok(count)
        })
        .await?;
    if handled > 0 {
        svc.waker.wake();
    }
    Ok(handled)
}

/// Runs for as long as the process lives.
pub async fn run(svc: ServiceLevel) {
    let poll = Duration::from_millis(svc.config.scheduler_poll_ms);
    loop {
        match tick(&svc).await {
            Ok(n) if n >= usize::try_from(svc.config.scheduler_batch).unwrap_or(usize::MAX) => {
                continue;
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "SLA clocks could not be checked; retrying"),
        }
        let db = svc.db.clone();
        let next = db
            .run(|conn| clocks::next_check(conn).map_err(DbError::from))
            .await
            .ok()
            .flatten();
        let wait = next
            .map(|at| (at - svc.clock.now()).to_std().unwrap_or(Duration::ZERO))
            .map_or(poll, |until| until.min(poll));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = svc.checks.notified() => {}
        }
    }
}
