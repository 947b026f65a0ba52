//! Webhook signatures, as the Standard Webhooks specification has them: headers
//! `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`
//! (`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`). A receiver recomputes the HMAC with
//! the subscription's secret and refuses a timestamp too far from its clock (replays).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The signature header's value.
#[expect(clippy::expect_used, reason = "HMAC takes a key of any length")]
pub fn sign(secret: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// Whether `header` (one or more space-separated `v1,<sig>`) holds a valid signature of the
/// message, as a receiver checks it.
pub fn verify(secret: &[u8], id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    let expected = sign(secret, id, timestamp, body);
    header
        .split_whitespace()
        .any(|candidate| super::token::constant_time_eq(candidate.as_bytes(), expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_and_a_changed_message_does_not() {
        let secret = b"whsec-test";
        let header = sign(secret, "msg_1", 1_700_000_000, b"{\"a\":1}");
        assert!(header.starts_with("v1,"));
        assert!(verify(
            secret,
            "msg_1",
            1_700_000_000,
            b"{\"a\":1}",
            &header
        ));
        assert!(!verify(
            secret,
            "msg_1",
            1_700_000_001,
            b"{\"a\":1}",
            &header
        ));
        assert!(!verify(
            secret,
            "msg_2",
            1_700_000_000,
            b"{\"a\":1}",
            &header
        ));
        assert!(!verify(
            secret,
            "msg_1",
            1_700_000_000,
            b"{\"a\":2}",
            &header
        ));
        assert!(!verify(
            b"other",
            "msg_1",
            1_700_000_000,
            b"{\"a\":1}",
            &header
        ));
    }

    #[test]
    fn matches_a_known_vector() {
        // HMAC-SHA256("key", "id.1.body"), computed independently (Python's hmac module).
        let header = sign(b"key", "id", 1, b"body");
        assert_eq!(header, format!("v1,{}", known()));
    }

    fn known() -> &'static str {
        "sYA3/+8KvyXbe4KAKZy0QWKFoLKSHDq/QWu0xQZyY7s="
    }
}
