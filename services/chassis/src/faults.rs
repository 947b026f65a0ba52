//! Seeded fault injection in the store layer, for the fault suite (`database.fault_rate`).
//!
//! With a rate above zero, that fraction of transactions fails just before its commit (all of
//! it rolls back, as when the commit itself fails) and that fraction of the outbox relay's
//! "published" marks fails after the publish (the messages go out again). The draws come from a
//! seeded generator, so a run can be repeated. The rate is zero in production; the suite shows
//! that nothing acknowledged is lost and no side effect doubles when the store misbehaves.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::db::DbError;

/// Where a fault was injected, for the log line the fault suite counts.
pub const LOG_MESSAGE: &str = "injected store fault";

/// A seeded source of store failures.
#[derive(Debug)]
pub struct StoreFaults {
    /// A draw below this fails (the rate scaled to `u64`).
    threshold: u64,
    state: AtomicU64,
}

impl StoreFaults {
    /// Faults at `rate` (0 to 1) from `seed`; `None` at zero.
    pub fn new(rate: f64, seed: u64) -> Option<Self> {
        if rate <= 0.0 {
            return None;
        }
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "a probability scaled to the range of the draws"
        )]
        let threshold = (rate.min(1.0) * u64::MAX as f64) as u64;
        Some(Self {
            threshold,
            state: AtomicU64::new(seed),
        })
    }

    /// The next draw of SplitMix64.
    fn draw(&self) -> u64 {
        let mut z = self
            .state
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Fails `what` when the draw says so.
    ///
    /// # Errors
    /// [`DbError::Unavailable`] naming the injected fault.
    pub fn fire(&self, what: &'static str) -> Result<(), DbError> {
        if self.draw() < self.threshold {
            tracing::warn!(what, "{LOG_MESSAGE}");
            return Err(DbError::Unavailable(format!("{LOG_MESSAGE}: {what}")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_kept_and_the_draws_repeat_with_the_seed() {
        let count = |seed| {
            let faults = StoreFaults::new(0.1, seed).unwrap();
            (0..10_000)
                .filter(|_| faults.fire("commit").is_err())
                .count()
        };
        let n = count(7);
        assert!((800..1200).contains(&n), "about a tenth fail: {n}");
        assert_eq!(n, count(7), "the same seed, the same faults");
        assert!(StoreFaults::new(0.0, 7).is_none());
        let all = StoreFaults::new(1.0, 1).unwrap();
        assert!(all.fire("commit").is_err());
    }
}
