//! A limit on wrong guesses of secrets in URLs (one-click action links, survey links): each
//! client (by its address) may guess wrong so many times a minute; past that it is answered 429
//! with `Retry-After` until the minute is over, whether its next guess is right or not.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Wrong guesses per client, per minute.
#[derive(Debug)]
pub struct Guesses {
    limit: u32,
    window: Duration,
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Guesses {
    /// At most `per_minute` wrong guesses a minute per client (0: no limit).
    pub fn new(per_minute: u32) -> Self {
        Self {
            limit: per_minute,
            window: Duration::from_secs(60),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// `None` when `client` may try now; else the seconds until it may.
    pub fn blocked(&self, client: Option<IpAddr>) -> Option<u64> {
        let (client, limit) = (client?, self.limit);
        if limit == 0 {
            return None;
        }
        let seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (since, count) = seen.get(&client)?;
        let left = self.window.saturating_sub(since.elapsed());
        (*count >= limit && !left.is_zero()).then(|| left.as_secs().max(1))
    }

    /// Counts a wrong guess of `client`.
    pub fn wrong(&self, client: Option<IpAddr>) {
        let Some(client) = client else {
            return;
        };
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.len() > 100_000 {
            let window = self.window;
            seen.retain(|_, (since, _)| since.elapsed() < window);
        }
        let entry = seen.entry(client).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= self.window {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }
}

/// The client's address: the connection's peer (never a header the client could forge).
pub fn client(req: &actix_web::HttpRequest) -> Option<IpAddr> {
    req.peer_addr().map(|a| a.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_held_back_after_its_wrong_guesses_and_others_are_not() {
        let guesses = Guesses::new(3);
        let (a, b) = (
            Some(IpAddr::from([10, 0, 0, 1])),
            Some(IpAddr::from([10, 0, 0, 2])),
        );
        for _ in 0..3 {
            assert_eq!(guesses.blocked(a), None);
            guesses.wrong(a);
        }
        assert!(guesses.blocked(a).is_some_and(|s| (1..=60).contains(&s)));
        assert_eq!(guesses.blocked(b), None);
        assert_eq!(Guesses::new(0).blocked(a), None, "0: no limit");
    }
}
