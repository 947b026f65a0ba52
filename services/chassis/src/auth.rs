//! JWT bearer authentication.
//!
//! Production (`auth.mode = jwks`): tokens signed with the identity provider's asymmetric keys,
//! read from a JWKS file or URL (refreshed on a schedule, never on demand, so an unknown `kid` is
//! refused without any lookup). Dev (`auth.mode = dev`): HS256 with a shared secret, minted by
//! `meridian token`. In both modes: the algorithm is pinned by configuration (a token's own `alg`
//! never chooses the key kind, so HS/RS key confusion and `alg: none` fail), `iss`, `aud`, `exp`
//! and `sub` are required and checked, `nbf` is checked, the JOSE `typ` must be an accepted one
//! (RFC 9068 `at+jwt` by default, so an ID token does not pass as an API token), and roles come
//! from a configurable claim path.

use std::collections::{BTreeSet, HashMap};
use std::future::{Ready, ready};
use std::marker::PhantomData;
use std::sync::{Arc, RwLock};

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpRequest, web};
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret;
use serde_json::Value;

use crate::config::{AuthConfig, AuthMode};
use crate::problem::{Problem, codes};

/// The role that may do everything.
pub const ADMIN: &str = "admin";

/// Who is calling, from a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The `sub` claim.
    pub subject: String,
    /// The roles from the configured claim.
    pub roles: BTreeSet<String>,
}

impl Principal {
    /// Whether the caller holds `role` (admins hold every role).
    pub fn has(&self, role: &str) -> bool {
        self.roles.contains(role) || self.roles.contains(ADMIN)
    }
}

/// Why a token was refused (never sent to the caller in detail beyond its category).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("no bearer token")]
    Missing,
    /// The token is not a well-formed JWT, or its header is unacceptable.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// `typ` is not an accepted token type.
    #[error("token type not accepted")]
    WrongType,
    /// `alg` is not one of the pinned algorithms.
    #[error("algorithm not accepted")]
    WrongAlgorithm,
    /// No key with the token's `kid`.
    #[error("unknown key id")]
    UnknownKey,
    /// Signature, expiry, not-before, issuer or audience check failed.
    #[error("token rejected: {0}")]
    Rejected(String),
}

struct Key {
    key: DecodingKey,
    algorithms: Vec<Algorithm>,
}

/// Verifies tokens. Cheap to clone; the key set is shared and refreshed in place.
#[derive(Clone)]
pub struct Authenticator {
    config: Arc<AuthConfig>,
    pinned: Vec<Algorithm>,
    keys: Arc<RwLock<HashMap<String, Arc<Key>>>>,
    dev_key: Option<Arc<DecodingKey>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("mode", &self.config.mode)
            .finish()
    }
}

/// The asymmetric algorithm called `name`, if it is one.
pub fn asymmetric_algorithm(name: &str) -> Option<Algorithm> {
    let algorithm: Algorithm = name.parse().ok()?;
    let symmetric = matches!(
        algorithm,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
    );
    (!symmetric).then_some(algorithm)
}

fn key_algorithms(parameters: &AlgorithmParameters) -> Vec<Algorithm> {
    match parameters {
        AlgorithmParameters::RSA(_) => vec![
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        AlgorithmParameters::EllipticCurve(_) => vec![Algorithm::ES256, Algorithm::ES384],
        AlgorithmParameters::OctetKeyPair(_) => vec![Algorithm::EdDSA],
        // Symmetric keys have no place in a public key set.
        _ => vec![],
    }
}

/// Parses a JWKS document into keys by `kid`; keys without a `kid` or of no usable kind are skipped.
///
/// # Errors
/// A document that is not a JWKS.
fn parse_jwks(document: &str) -> anyhow::Result<HashMap<String, Arc<Key>>> {
    let set: JwkSet = serde_json::from_str(document)?;
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        let mut algorithms = key_algorithms(&jwk.algorithm);
        if let Some(declared) = jwk.common.key_algorithm {
            let declared: Option<Algorithm> = declared.to_string().parse().ok();
            algorithms.retain(|alg| Some(*alg) == declared);
        }
        if algorithms.is_empty() {
            continue;
        }
        match DecodingKey::from_jwk(jwk) {
            Ok(key) => {
                keys.insert(kid, Arc::new(Key { key, algorithms }));
            }
            Err(error) => tracing::warn!(%kid, %error, "JWKS key skipped"),
        }
    }
    Ok(keys)
}

impl Authenticator {
    /// Builds the authenticator, loading `auth.jwks_file` when set. With `auth.jwks_url`, call
    /// [`Authenticator::refresh`] (and [`Authenticator::spawn_refresh`]) before serving.
    ///
    /// # Errors
    /// A configuration that does not validate, or a JWKS file that cannot be read.
    pub fn new(config: &AuthConfig) -> anyhow::Result<Self> {
        config.validate()?;
        let (pinned, dev_key) = match config.mode {
            AuthMode::Dev => (
                vec![Algorithm::HS256],
                Some(Arc::new(DecodingKey::from_secret(
                    config.secret.expose_secret().as_bytes(),
                ))),
            ),
            AuthMode::Jwks => (
                config
                    .algorithms
                    .iter()
                    .filter_map(|name| asymmetric_algorithm(name))
                    .collect(),
                None,
            ),
        };
        let authenticator = Self {
            config: Arc::new(config.clone()),
            pinned,
            keys: Arc::default(),
            dev_key,
        };
        if let (AuthMode::Jwks, Some(path)) = (config.mode, &config.jwks_file) {
            let document = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("auth.jwks_file {path}: {e}"))?;
            authenticator.replace_keys(parse_jwks(&document)?);
        }
        Ok(authenticator)
    }

    fn replace_keys(&self, keys: HashMap<String, Arc<Key>>) {
        tracing::info!(keys = keys.len(), "JWKS loaded");
        let mut current = self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *current = keys;
    }

    /// Fetches `auth.jwks_url` once and replaces the key set.
    ///
    /// # Errors
    /// The URL not answering or not holding a JWKS; the previous keys stay in force.
    pub async fn refresh(&self) -> anyhow::Result<()> {
        let Some(url) = self.config.jwks_url.clone() else {
            return Ok(());
        };
        let document = tokio::task::spawn_blocking(move || -> anyhow::Result<String> {
            let agent = ureq::Agent::config_builder()
                .timeout_global(Some(std::time::Duration::from_secs(10)))
                .build()
                .new_agent();
            let mut response = agent.get(&url).call()?;
            Ok(response
                .body_mut()
                .with_config()
                .limit(1 << 20)
                .read_to_string()?)
        })
        .await??;
        self.replace_keys(parse_jwks(&document)?);
        Ok(())
    }

    /// Refreshes `auth.jwks_url` every `auth.jwks_refresh_seconds` in the background.
    pub fn spawn_refresh(&self) {
        if self.config.jwks_url.is_none() {
            return;
        }
        let this = self.clone();
        let every = std::time::Duration::from_secs(self.config.jwks_refresh_seconds.max(10));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(error) = this.refresh().await {
                    tracing::warn!(%error, "JWKS refresh failed; keeping the previous keys");
                }
            }
        });
    }

    /// Verifies `token` and returns who it speaks for.
    ///
    /// # Errors
    /// [`AuthError`] saying which check failed.
    pub fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|error| AuthError::Malformed(error.to_string()))?;
        let typ_ok = header.typ.as_deref().is_some_and(|typ| {
            let typ = typ.strip_prefix("application/").unwrap_or(typ);
            self.config
                .token_types
                .iter()
                .any(|accepted| accepted.eq_ignore_ascii_case(typ))
        });
        if !typ_ok {
            return Err(AuthError::WrongType);
        }
        if !self.pinned.contains(&header.alg) {
            return Err(AuthError::WrongAlgorithm);
        }
        let key = match (&self.dev_key, &header.kid) {
            (Some(dev), _) => Arc::new(Key {
                key: (**dev).clone(),
                algorithms: vec![Algorithm::HS256],
            }),
            (None, None) => return Err(AuthError::UnknownKey),
            (None, Some(kid)) => self
                .keys
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(kid)
                .cloned()
                .ok_or(AuthError::UnknownKey)?,
        };
        if !key.algorithms.contains(&header.alg) {
            return Err(AuthError::WrongAlgorithm);
        }
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.leeway = self.config.leeway_seconds;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Value>(token, &key.key, &validation)
            .map_err(|error| AuthError::Rejected(error.to_string()))?;
        let subject = data
            .claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|sub| !sub.is_empty())
            .ok_or_else(|| AuthError::Rejected("empty subject".to_owned()))?
            .to_owned();
        let roles = roles_at(&data.claims, &self.config.roles_claim);
        Ok(Principal { subject, roles })
    }

    /// Whether tokens are the dev ones (`auth.mode = dev`), which [`Self::mint_dev`] can mint.
    pub fn dev_mode(&self) -> bool {
        self.config.mode == AuthMode::Dev
    }

    /// Mints an HS256 token in dev mode (for `meridian token` and `meridian dev`).
    ///
    /// # Errors
    /// Not in dev mode, or signing failed.
    pub fn mint_dev(
        &self,
        subject: &str,
        roles: &[String],
        now: chrono::DateTime<chrono::Utc>,
        ttl: chrono::Duration,
    ) -> anyhow::Result<String> {
        anyhow::ensure!(
            self.config.mode == AuthMode::Dev,
            "tokens can only be minted in dev mode (auth.mode = dev)"
        );
        let claims = serde_json::json!({
            "sub": subject,
            "iss": self.config.issuer,
            "aud": self.config.audience,
            "iat": now.timestamp(),
            "nbf": now.timestamp(),
            "exp": (now + ttl).timestamp(),
            "jti": uuid::Uuid::new_v4().to_string(),
            self.config.roles_claim.clone(): roles,
        });
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("at+jwt".to_owned());
        let key = EncodingKey::from_secret(self.config.secret.expose_secret().as_bytes());
        Ok(jsonwebtoken::encode(&header, &claims, &key)?)
    }
}

/// The roles at a dotted claim path: a JSON array of strings, or one space- or comma-separated string.
fn roles_at(claims: &Value, path: &str) -> BTreeSet<String> {
    let mut value = claims;
    for part in path.split('.') {
        match value.get(part) {
            Some(next) => value = next,
            None => return BTreeSet::new(),
        }
    }
    match value {
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Value::String(list) => list
            .split([' ', ','])
            .filter(|role| !role.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => BTreeSet::new(),
    }
}

/// A role a handler requires; see [`Authenticated`].
pub trait Role {
    /// Any one of these roles is enough (admins always pass).
    const ANY_OF: &'static [&'static str];
}

/// Any authenticated caller.
#[derive(Debug)]
pub struct AnyRole;

impl Role for AnyRole {
    const ANY_OF: &'static [&'static str] = &[];
}

/// An extractor that authenticates the caller and checks the role `R` before the handler runs.
#[derive(Debug)]
pub struct Authenticated<R: Role = AnyRole> {
    /// The caller.
    pub principal: Principal,
    role: PhantomData<R>,
}

impl<R: Role> std::ops::Deref for Authenticated<R> {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.principal
    }
}

fn unauthorized(reason: &AuthError) -> Problem {
    tracing::info!(%reason, "token refused");
    Problem::new(codes::UNAUTHORIZED)
        .detail("a valid bearer token is required")
        .header(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        )
}

impl<R: Role> FromRequest for Authenticated<R> {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate_request::<R>(req))
    }
}

fn authenticate_request<R: Role>(req: &HttpRequest) -> Result<Authenticated<R>, Problem> {
    let Some(authenticator) = req.app_data::<web::Data<Authenticator>>() else {
        return Err(Problem::internal(&"no authenticator configured"));
    };
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .ok_or(AuthError::Missing)
        .map_err(|reason| unauthorized(&reason))?;
    let principal = authenticator
        .authenticate(token)
        .map_err(|reason| unauthorized(&reason))?;
    if !R::ANY_OF.is_empty() && !R::ANY_OF.iter().any(|role| principal.has(role)) {
        return Err(Problem::new(codes::FORBIDDEN).detail(format!(
            "this action needs one of the roles: {}",
            R::ANY_OF.join(", ")
        )));
    }
    Ok(Authenticated {
        principal,
        role: PhantomData,
    })
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
