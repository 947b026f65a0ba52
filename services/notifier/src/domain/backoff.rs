//! When to try a failed delivery again: exponential backoff with a cap and jitter.

use chrono::{DateTime, Duration, Utc};

/// The time of the next attempt after `attempts` failed ones (1 for the first failure), or
/// `None` when no attempt is left. The delay doubles from `base` up to `max`, less up to a
/// fifth at random so a burst of failures does not retry in lock step.
pub fn next_attempt(
    now: DateTime<Utc>,
    attempts: i32,
    max_attempts: i32,
    base_seconds: i64,
    max_seconds: i64,
    jitter: f64,
) -> Option<DateTime<Utc>> {
    if attempts >= max_attempts {
        return None;
    }
    let exponent = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let delay = base_seconds
        .saturating_mul(1_i64 << exponent)
        .min(max_seconds);
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_precision_loss,
        reason = "seconds of delay, far from the limits"
    )]
    let shave = (delay as f64 * 0.2 * jitter.clamp(0.0, 1.0)) as i64;
    Some(now + Duration::seconds(delay - shave))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_then_stops() {
        let now = DateTime::parse_from_rfc3339("2026-11-26T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let delay = |n| (next_attempt(now, n, 8, 30, 3600, 0.0).unwrap() - now).num_seconds();
        assert_eq!(delay(1), 30);
        assert_eq!(delay(2), 60);
        assert_eq!(delay(3), 120);
        assert_eq!(delay(7), 1920);
        assert_eq!(next_attempt(now, 8, 8, 30, 3600, 0.0), None);
        assert_eq!(
            (next_attempt(now, 7, 20, 30, 600, 0.0).unwrap() - now).num_seconds(),
            600
        );
    }

    #[test]
    fn jitter_shaves_at_most_a_fifth() {
        let now = DateTime::parse_from_rfc3339("2026-11-26T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let delay = (next_attempt(now, 1, 8, 100, 3600, 1.0).unwrap() - now).num_seconds();
        assert_eq!(delay, 80);
    }
}
