//! Survey links: `<survey id>.<expiry, unix seconds>.<HMAC-SHA256 of both, base64url>`. The
//! signature proves the link was made here and fixes its expiry; the survey's `responded_at`
//! makes it single use.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// Why a link is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// Not a link this service made (malformed, or the signature does not match).
    Invalid,
    /// Signed here, but past its expiry.
    Expired,
}

fn mac(secret: &[u8], survey: Uuid, expires: i64) -> HmacSha256 {
    // HMAC takes a key of any length.
    let mut mac = HmacSha256::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(format!("survey:{}:{expires}", survey.simple()).as_bytes());
    mac
}

/// The link token of `survey`, valid until `expires` (unix seconds).
pub fn sign(secret: &[u8], survey: Uuid, expires: i64) -> String {
    let tag = mac(secret, survey, expires).finalize().into_bytes();
    format!(
        "{}.{expires}.{}",
        survey.simple(),
        URL_SAFE_NO_PAD.encode(tag)
    )
}

/// The survey a token opens, if it was signed with `secret` and has not expired at `now`
/// (unix seconds). The signature is checked in constant time, before the expiry is looked at.
///
/// # Errors
/// [`LinkError`].
pub fn verify(secret: &[u8], token: &str, now: i64) -> Result<Uuid, LinkError> {
    let mut parts = token.splitn(3, '.');
    let (Some(id), Some(expires), Some(tag)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(LinkError::Invalid);
    };
    if id.len() != 32 || tag.len() > 64 {
        return Err(LinkError::Invalid);
    }
    let survey = Uuid::try_parse(id).map_err(|_| LinkError::Invalid)?;
    let expires: i64 = expires.parse().map_err(|_| LinkError::Invalid)?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| LinkError::Invalid)?;
    mac(secret, survey, expires)
        .verify_slice(&tag)
        .map_err(|_| LinkError::Invalid)?;
    if now >= expires {
        return Err(LinkError::Expired);
    }
    Ok(survey)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_signed_link_opens_its_survey_until_it_expires() {
        let survey = Uuid::now_v7();
        let token = sign(KEY, survey, 1_000);
        assert_eq!(verify(KEY, &token, 999), Ok(survey));
        assert_eq!(verify(KEY, &token, 1_000), Err(LinkError::Expired));
    }

    #[test]
    fn a_forged_or_altered_link_is_invalid() {
        let survey = Uuid::now_v7();
        let token = sign(KEY, survey, 1_000);
        // Another key, a later expiry with the old signature, another survey, junk.
        assert_eq!(
            verify(b"another key another key another k", &token, 0),
            Err(LinkError::Invalid)
        );
        let (_, tag) = token.rsplit_once('.').unwrap();
        let stretched = format!("{}.{}.{tag}", survey.simple(), 9_999_999);
        assert_eq!(verify(KEY, &stretched, 0), Err(LinkError::Invalid));
        let other = format!("{}.1000.{tag}", Uuid::now_v7().simple());
        assert_eq!(verify(KEY, &other, 0), Err(LinkError::Invalid));
        for junk in ["", "a.b.c", "...", &token[..token.len() - 2]] {
            assert_eq!(verify(KEY, junk, 0), Err(LinkError::Invalid), "{junk}");
        }
    }
}
