//! Every way a token must be refused, and the ways it must pass.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::*;
use crate::testing::{AUDIENCE, ISSUER, RSA_PUBLIC, TestKeys, dev_auth_config};

struct Fixture {
    keys: TestKeys,
    auth: Authenticator,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fixture() -> Fixture {
    let dir = std::env::temp_dir().join(format!("meridian-auth-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let keys = TestKeys::new();
    let auth = Authenticator::new(&keys.auth_config(&dir.join("jwks.json"))).unwrap();
    Fixture {
        keys,
        auth,
        _dir: TempDir(dir),
    }
}

fn now() -> i64 {
    crate::Clock::now(&crate::SystemClock).timestamp()
}

fn claims() -> Value {
    json!({
        "sub": "alice",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "exp": now() + 300,
        "nbf": now() - 10,
        "realm_access": { "roles": ["agent", "viewer"] },
    })
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn without(mut claims: Value, key: &str) -> Value {
    claims.as_object_mut().unwrap().remove(key);
    claims
}

#[test]
fn a_valid_rs256_token_passes_with_its_roles() {
    let f = fixture();
    let token = f.keys.sign(Algorithm::RS256, "at+jwt", &claims());
    let principal = f.auth.authenticate(&token).unwrap();
    assert_eq!(principal.subject, "alice");
    assert!(principal.has("agent"));
    assert!(!principal.has("change-manager"));
}

#[test]
fn a_valid_es256_token_passes() {
    let f = fixture();
    let token = f.keys.sign(Algorithm::ES256, "at+jwt", &claims());
    assert!(f.auth.authenticate(&token).is_ok());
}

#[test]
fn alg_none_is_refused() {
    let f = fixture();
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"at+jwt","kid":"rsa-1"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
    let token = format!("{header}.{payload}.");
    assert!(matches!(
        f.auth.authenticate(&token),
        Err(AuthError::Malformed(_))
    ));
}

#[test]
fn an_algorithm_that_is_not_pinned_is_refused() {
    let f = fixture();
    let key = EncodingKey::from_rsa_pem(crate::testing::RSA_PRIVATE.as_bytes()).unwrap();
    let mut header = Header::new(Algorithm::RS512);
    header.kid = Some("rsa-1".into());
    header.typ = Some("at+jwt".into());
    let token = jsonwebtoken::encode(&header, &claims(), &key).unwrap();
    assert_eq!(f.auth.authenticate(&token), Err(AuthError::WrongAlgorithm));
}

#[test]
fn hs256_signed_with_the_rsa_public_key_is_refused() {
    // The classic key-confusion attack: the public key used as an HMAC secret.
    let f = fixture();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("rsa-1".into());
    header.typ = Some("at+jwt".into());
    let key = EncodingKey::from_secret(RSA_PUBLIC.as_bytes());
    let token = jsonwebtoken::encode(&header, &claims(), &key).unwrap();
    assert_eq!(f.auth.authenticate(&token), Err(AuthError::WrongAlgorithm));
}

#[test]
fn an_es256_header_on_an_rsa_key_id_is_refused() {
    let f = fixture();
    let key = EncodingKey::from_ec_pem(crate::testing::EC_PRIVATE.as_bytes()).unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("rsa-1".into());
    header.typ = Some("at+jwt".into());
    let token = jsonwebtoken::encode(&header, &claims(), &key).unwrap();
    assert_eq!(f.auth.authenticate(&token), Err(AuthError::WrongAlgorithm));
}

#[test]
fn a_missing_or_wrong_issuer_is_refused() {
    let f = fixture();
    for claims in [
        without(claims(), "iss"),
        with(claims(), "iss", json!("https://evil.test")),
    ] {
        let token = f.keys.sign(Algorithm::RS256, "at+jwt", &claims);
        assert!(matches!(
            f.auth.authenticate(&token),
            Err(AuthError::Rejected(_))
        ));
    }
}

#[test]
fn a_missing_or_wrong_audience_is_refused() {
    let f = fixture();
    for claims in [
        without(claims(), "aud"),
        with(claims(), "aud", json!("another-api")),
    ] {
        let token = f.keys.sign(Algorithm::RS256, "at+jwt", &claims);
        assert!(matches!(
            f.auth.authenticate(&token),
            Err(AuthError::Rejected(_))
        ));
    }
}

#[test]
fn an_expired_token_is_refused() {
    let f = fixture();
    let token = f.keys.sign(
        Algorithm::RS256,
        "at+jwt",
        &with(claims(), "exp", json!(now() - 60)),
    );
    assert!(matches!(
        f.auth.authenticate(&token),
        Err(AuthError::Rejected(_))
    ));
    let token = f
        .keys
        .sign(Algorithm::RS256, "at+jwt", &without(claims(), "exp"));
    assert!(matches!(
        f.auth.authenticate(&token),
        Err(AuthError::Rejected(_))
    ));
}

#[test]
fn a_token_not_yet_valid_is_refused() {
    let f = fixture();
    let token = f.keys.sign(
        Algorithm::RS256,
        "at+jwt",
        &with(claims(), "nbf", json!(now() + 600)),
    );
    assert!(matches!(
        f.auth.authenticate(&token),
        Err(AuthError::Rejected(_))
    ));
}

#[test]
fn a_token_of_another_type_is_refused() {
    let f = fixture();
    for typ in ["JWT", "id_token", "dpop+jwt"] {
        let token = f.keys.sign(Algorithm::RS256, typ, &claims());
        assert_eq!(
            f.auth.authenticate(&token),
            Err(AuthError::WrongType),
            "{typ}"
        );
    }
    let token = f
        .keys
        .sign(Algorithm::RS256, "application/at+jwt", &claims());
    assert!(f.auth.authenticate(&token).is_ok());
}

#[test]
fn a_tampered_signature_or_payload_is_refused() {
    let f = fixture();
    let token = f.keys.sign(Algorithm::RS256, "at+jwt", &claims());
    let (rest, signature) = token.rsplit_once('.').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
    bytes[10] ^= 0x55;
    let tampered = format!("{rest}.{}", URL_SAFE_NO_PAD.encode(bytes));
    assert!(matches!(
        f.auth.authenticate(&tampered),
        Err(AuthError::Rejected(_))
    ));

    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let admin = with(claims(), "realm_access", json!({ "roles": ["admin"] }));
    parts[1] = URL_SAFE_NO_PAD.encode(admin.to_string());
    assert!(matches!(
        f.auth.authenticate(&parts.join(".")),
        Err(AuthError::Rejected(_))
    ));
}

#[test]
fn an_unknown_key_id_is_refused() {
    let f = fixture();
    let key = EncodingKey::from_rsa_pem(crate::testing::RSA_PRIVATE.as_bytes()).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("rsa-2".into());
    header.typ = Some("at+jwt".into());
    let token = jsonwebtoken::encode(&header, &claims(), &key).unwrap();
    assert_eq!(f.auth.authenticate(&token), Err(AuthError::UnknownKey));
    header.kid = None;
    let token = jsonwebtoken::encode(&header, &claims(), &key).unwrap();
    assert_eq!(f.auth.authenticate(&token), Err(AuthError::UnknownKey));
}

#[test]
fn garbage_is_refused() {
    let f = fixture();
    for token in ["", "abc", "a.b.c", "....", "eyJhbGciOiJSUzI1NiJ9.e30"] {
        assert!(f.auth.authenticate(token).is_err(), "{token}");
    }
}

#[test]
fn dev_tokens_round_trip_and_are_refused_by_production_keys() {
    let dev = Authenticator::new(&dev_auth_config()).unwrap();
    let token = dev
        .mint_dev(
            "bob",
            &["agent".into()],
            crate::Clock::now(&crate::SystemClock),
            chrono::Duration::minutes(5),
        )
        .unwrap();
    let principal = dev.authenticate(&token).unwrap();
    assert_eq!(principal.subject, "bob");
    assert!(principal.has("agent"));
    let f = fixture();
    assert!(f.auth.authenticate(&token).is_err());
}

#[test]
fn roles_are_read_from_a_dotted_path_or_a_string() {
    let claims = json!({ "a": { "b": ["x", "y"] }, "scope": "read write" });
    assert_eq!(roles_at(&claims, "a.b").len(), 2);
    assert!(roles_at(&claims, "scope").contains("write"));
    assert!(roles_at(&claims, "missing.path").is_empty());
}

#[test]
fn admins_hold_every_role() {
    let principal = Principal {
        subject: "root".into(),
        roles: ["admin".to_owned()].into(),
    };
    assert!(principal.has("change-manager"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_fetched_from_a_jwks_url() {
    use std::io::{Read, Write};
    let keys = TestKeys::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let document = keys.jwks.clone();
    // A one-request HTTP server standing in for the identity provider.
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = [0u8; 1024];
        let _ = stream.read(&mut request).unwrap();
        write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{document}",
            document.len()
        )
        .unwrap();
    });
    let dir = std::env::temp_dir().join(format!("meridian-jwks-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut config = keys.auth_config(&dir.join("unused.json"));
    config.jwks_file = None;
    config.jwks_url = Some(format!("http://{address}/.well-known/jwks.json"));
    let auth = Authenticator::new(&config).unwrap();
    let token = keys.sign(Algorithm::RS256, "at+jwt", &claims());
    assert_eq!(
        auth.authenticate(&token),
        Err(AuthError::UnknownKey),
        "no keys before the fetch"
    );
    auth.refresh().await.unwrap();
    server.join().unwrap();
    assert_eq!(auth.authenticate(&token).unwrap().subject, "alice");
    let _ = std::fs::remove_dir_all(dir);
}
