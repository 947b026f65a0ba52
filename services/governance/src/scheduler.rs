//! The governance scheduler: signs a checkpoint of the ledger's head after
//! `governance.ledger.checkpoint_every` new entries, or `checkpoint_interval_seconds` after the
//! last one when entries came since. Singleton work (run under the leader election).

use std::time::Duration;

use meridian_chassis::db::DbError;

use crate::Governance;
use crate::ledger;

/// Signs a checkpoint when one is due; the one signed.
///
/// # Errors
/// The database failing.
pub async fn tick(svc: &Governance) -> Result<Option<ledger::CheckpointRow>, DbError> {
    let now = meridian_chassis::clock::to_micros(svc.clock.now());
    let (key, every, interval) = (
        svc.key.clone(),
        svc.config.ledger.checkpoint_every,
        chrono::Duration::seconds(svc.config.ledger.checkpoint_interval_seconds),
    );
    svc.db
        .transaction(move |conn| -> Result<_, DbError> {
            let (head, _) = ledger::head(conn)?;
            let due = match ledger::last_checkpoint(conn)? {
                None => head > 0,
                Some(last) => {
                    head - last.seq >= every
                        || (head > last.seq && now.naive_utc() - last.signed_at >= interval)
                }
            };
            Ok(if due {
                ledger::checkpoint(conn, &key, now)?
            } else {
                None
            })
        })
        .await
}

/// Runs for as long as the process lives.
pub async fn run(svc: Governance) {
    let poll = Duration::from_secs(svc.config.scheduler_poll_seconds);
    loop {
        if let Err(error) = tick(&svc).await {
            tracing::warn!(%error, "the ledger checkpoint could not be signed; retrying");
        }
        tokio::time::sleep(poll).await;
    }
}
