//! `meridian audit verify` and `meridian evidence report`: the governance service's ledger and
//! evidence, read straight from its database (`database.url`, or a `meridian dev` data folder).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use meridian_chassis::db::{Db, DbError};
use meridian_governance::ledger::{self, CheckpointRow};
use secrecy::ExposeSecret;

use crate::app::Config;

/// Where the governance database is and which key verifies its ledger.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// A `meridian dev` data folder: its governance database and its dev ledger key (instead
    /// of `database.url` and `governance.ledger.signing_key`).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The ledger's public key (base64), instead of the one of the signing key configured.
    #[arg(long)]
    pub public_key: Option<String>,
}

/// The configuration: the `meridian dev` data folder's with `--data`, else the usual layers.
///
/// # Errors
/// Bad configuration.
pub fn config(file: Option<&Path>, target: &Target) -> anyhow::Result<Config> {
    match &target.data {
        Some(data) => crate::dev::config(file, data),
        None => Config::load(file),
    }
}

fn open(config: &Config, target: &Target) -> anyhow::Result<(Db, Option<String>)> {
    let (url, seed) = match &target.data {
        Some(data) => (
            format!("sqlite://{}", data.join("governance.db").display()),
            Some(crate::dev::ledger_key(data)?),
        ),
        None => (config.database.url.expose_secret().to_owned(), None),
    };
    let db = Db::connect(
        &url,
        1,
        Duration::from_secs(config.database.connect_timeout_seconds),
    )?;
    Ok((db, seed))
}

fn verifying_key(
    config: &Config,
    target: &Target,
    dev_seed: Option<String>,
) -> anyhow::Result<ed25519_dalek::VerifyingKey> {
    if let Some(text) = &target.public_key {
        return ledger::parse_public_key(text).map_err(anyhow::Error::msg);
    }
    let secret = dev_seed
        .map(secrecy::SecretString::from)
        .unwrap_or_else(|| config.governance.ledger.signing_key.clone());
    let key = ledger::signing_key(&secret).map_err(|reason| {
        anyhow::anyhow!("governance.ledger.signing_key {reason} (or pass --public-key)")
    })?;
    Ok(key.verifying_key())
}

/// `meridian audit verify`: checks every link, hash and signature of the ledger and its
/// checkpoints (and those of an exported copy); names the first bad sequence number and fails
/// when there is one.
///
/// # Errors
/// The database unreachable, a bad key or export, or a ledger that does not hold.
pub async fn verify(
    config: &Config,
    target: &Target,
    checkpoints: Option<&Path>,
) -> anyhow::Result<()> {
    let (db, seed) = open(config, target)?;
    let key = verifying_key(config, target, seed)?;
    let extra: Vec<CheckpointRow> = match checkpoints {
        None => Vec::new(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let export: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", path.display()))?;
            if let Some(exported) = export["public_key"].as_str()
                && exported != ledger::public_key(&key)
            {
                anyhow::bail!("{} was signed by another key ({exported})", path.display());
            }
            serde_json::from_value(export["checkpoints"].clone())
                .with_context(|| format!("{}: no checkpoints list", path.display()))?
        }
    };
    let verdict = db
        .run(move |conn| ledger::verify(conn, key, &extra).map_err(DbError::from))
        .await?;
    println!(
        "ledger: {} entries (last {}), {} checkpoints",
        verdict.entries, verdict.last_seq, verdict.checkpoints
    );
    match (verdict.first_bad_seq, verdict.problem) {
        (None, _) => {
            println!("ledger intact");
            Ok(())
        }
        (Some(seq), problem) => {
            anyhow::bail!(
                "first bad sequence number: {seq}: {}",
                problem.unwrap_or_default()
            )
        }
    }
}

/// `meridian evidence report`: the evidence report of a period, JSON or HTML, on standard output.
///
/// # Errors
/// The database unreachable, or bad dates.
pub async fn report(
    config: &Config,
    target: &Target,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    html: bool,
) -> anyhow::Result<()> {
    let (db, _) = open(config, target)?;
    let now = meridian_chassis::Clock::now(&meridian_chassis::SystemClock);
    let to = to.unwrap_or(now);
    let from = from.unwrap_or(to - chrono::Duration::days(365));
    anyhow::ensure!(from < to, "--from must be before --to");
    let evidence = config.governance.evidence;
    let (built, ready) = db
        .run(move |conn| -> Result<_, DbError> {
            Ok((
                meridian_governance::evidence::report(conn, evidence, from, to)?,
                meridian_governance::evidence::readiness(conn, now)?,
            ))
        })
        .await?;
    if html {
        println!("{}", meridian_governance::evidence::html(&built, &ready));
    } else {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"report": built, "readiness": ready})
            )?
        );
    }
    Ok(())
}
