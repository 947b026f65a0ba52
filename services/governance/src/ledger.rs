//! The tamper-evident audit ledger: every event of every service, appended in a gap-free
//! sequence; each entry is hashed (SHA-256) with the hash of the one before and signed (Ed25519),
//! and signed checkpoints of the head can be exported outside the database. [`Verifier`] walks
//! the ledger and names the first sequence number that does not hold: a changed entry (its hash),
//! a deleted one (the gap), two swapped (the link), one rewritten with its hashes recomputed (the
//! signature, which needs the key), a truncated tail (a checkpoint beyond the end).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier as _, VerifyingKey};
use meridian_chassis::bus::Envelope;
use meridian_chassis::db::AnyConnection;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::schema::{gov_checkpoints, gov_ledger, gov_ledger_head};

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The signing key of `governance.ledger.signing_key` (the base64 of a 32-byte seed).
///
/// # Errors
/// Absent, not base64, or not 32 bytes.
pub fn signing_key(secret: &SecretString) -> Result<SigningKey, String> {
    let text = secret.expose_secret().trim();
    if text.is_empty() {
        return Err("must be set: the base64 of a 32-byte Ed25519 seed".to_owned());
    }
    let bytes = STANDARD
        .decode(text)
        .map_err(|_| "must be base64 (of a 32-byte Ed25519 seed)".to_owned())?;
    let seed: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "must be the base64 of exactly 32 bytes".to_owned())?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The public key, base64.
pub fn public_key(key: &VerifyingKey) -> String {
    STANDARD.encode(key.as_bytes())
}

/// A public key from its base64.
///
/// # Errors
/// Not the base64 of an Ed25519 public key.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    let bytes: [u8; 32] = STANDARD
        .decode(text.trim())
        .map_err(|_| "the public key is not base64".to_owned())?
        .try_into()
        .map_err(|_| "the public key is not 32 bytes".to_owned())?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| format!("not an Ed25519 public key: {e}"))
}

/// A short id of a public key: the first 16 hex digits of its SHA-256.
pub fn key_id(key: &VerifyingKey) -> String {
    hex(&Sha256::digest(key.as_bytes()))[..16].to_owned()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One entry.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = gov_ledger)]
pub struct EntryRow {
    /// Its place: 1, 2, 3 … with no gap.
    pub seq: i64,
    /// The event's id.
    pub event_id: String,
    /// Its type.
    pub event_type: String,
    /// The service it came from.
    pub source: String,
    /// The record it is about.
    pub subject: String,
    /// Who acted.
    pub actor: String,
    /// When it happened.
    pub time: NaiveDateTime,
    /// SHA-256 of its payload as published.
    pub payload_sha256: String,
    /// Its payload decoded as JSON (`null` when its type has no schema).
    pub data: String,
    /// The hash of the entry before (or [`GENESIS`]).
    pub prev_hash: String,
    /// SHA-256 over this entry's fields and `prev_hash`.
    pub hash: String,
    /// Ed25519 signature of `seq` and `hash`, base64.
    pub signature: String,
    /// When the ledger took it.
    pub recorded_at: NaiveDateTime,
}

/// A signed checkpoint: the key vouches that entry `seq` has `hash` (and so every entry before).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = gov_checkpoints)]
pub struct CheckpointRow {
    /// The entry.
    pub seq: i64,
    /// Its hash.
    pub hash: String,
    /// Ed25519 signature, base64.
    pub signature: String,
    /// The key's id.
    pub key_id: String,
    /// When.
    pub signed_at: NaiveDateTime,
}

/// The hash of an entry: SHA-256 over its fields (as a JSON array, so no field can bleed into
/// another) and the hash before it.
pub fn entry_hash(e: &EntryRow) -> String {
    let fields = serde_json::json!([
        e.seq,
        e.event_id,
        e.event_type,
        e.source,
        e.subject,
        e.actor,
        e.time
            .and_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        e.payload_sha256,
        e.data,
        e.prev_hash,
    ]);
    hex(&Sha256::digest(fields.to_string().as_bytes()))
}

/// What an entry's signature signs.
pub fn entry_message(seq: i64, hash: &str) -> String {
    format!("meridian-ledger-entry:{seq}:{hash}")
}

/// What a checkpoint's signature signs.
pub fn checkpoint_message(seq: i64, hash: &str) -> String {
    format!("meridian-ledger-checkpoint:{seq}:{hash}")
}

fn verify_signature(key: &VerifyingKey, message: &str, signature: &str) -> bool {
    let Ok(bytes) = STANDARD.decode(signature) else {
        return false;
    };
    let Ok(signature) = Signature::from_slice(&bytes) else {
        return false;
    };
    key.verify(message.as_bytes(), &signature).is_ok()
}

/// Appends `envelope` (once: an event already in the ledger is not taken again); its sequence
/// number. Takes the head row's lock, so appends are serialised and the sequence has no gap.
///
/// # Errors
/// A query failing.
pub fn append(
    conn: &mut AnyConnection,
    key: &SigningKey,
    envelope: &Envelope,
    now: DateTime<Utc>,
) -> QueryResult<Option<i64>> {
    let event_id = envelope.id.to_string();
    // The head's lock first: a redelivery racing its first delivery waits, then finds it held.
    let (seq, prev): (i64, String) = match conn {
        AnyConnection::Postgresql(pg) => gov_ledger_head::table
            .find(1)
            .select((gov_ledger_head::seq, gov_ledger_head::hash))
            .for_update()
            .first(pg)?,
        AnyConnection::Sqlite(sqlite) => gov_ledger_head::table
            .find(1)
            .select((gov_ledger_head::seq, gov_ledger_head::hash))
            .first(sqlite)?,
    };
    let held: i64 = gov_ledger::table
        .filter(gov_ledger::event_id.eq(&event_id))
        .count()
        .get_result(conn)?;
    if held > 0 {
        return Ok(None);
    }
    let data = meridian_proto::decode_json(&envelope.event_type, &envelope.payload)
        .ok()
        .flatten()
        .unwrap_or(serde_json::Value::Null);
    let mut row = EntryRow {
        seq: seq + 1,
        event_id,
        event_type: envelope.event_type.clone(),
        source: envelope.source.clone(),
        subject: envelope.subject.clone(),
        actor: envelope.actor.clone().unwrap_or_default(),
        time: meridian_chassis::clock::to_micros(envelope.time).naive_utc(),
        payload_sha256: hex(&Sha256::digest(&envelope.payload)),
        data: data.to_string(),
        prev_hash: prev,
        hash: String::new(),
        signature: String::new(),
        recorded_at: now.naive_utc(),
    };
    row.hash = entry_hash(&row);
    row.signature = STANDARD.encode(
        key.sign(entry_message(row.seq, &row.hash).as_bytes())
            .to_bytes(),
    );
    diesel::insert_into(gov_ledger::table)
        .values(&row)
        .execute(conn)?;
    diesel::update(gov_ledger_head::table.find(1))
        .set((
            gov_ledger_head::seq.eq(row.seq),
            gov_ledger_head::hash.eq(&row.hash),
        ))
        .execute(conn)?;
    Ok(Some(row.seq))
}

/// The head: the last sequence number and its hash.
///
/// # Errors
/// A query failing.
pub fn head(conn: &mut AnyConnection) -> QueryResult<(i64, String)> {
    gov_ledger_head::table
        .find(1)
        .select((gov_ledger_head::seq, gov_ledger_head::hash))
        .first(conn)
}

/// The newest checkpoint.
///
/// # Errors
/// A query failing.
pub fn last_checkpoint(conn: &mut AnyConnection) -> QueryResult<Option<CheckpointRow>> {
    gov_checkpoints::table
        .order(gov_checkpoints::seq.desc())
        .select(CheckpointRow::as_select())
        .first(conn)
        .optional()
}

/// Signs a checkpoint of the head, unless there is nothing new since the last one.
///
/// # Errors
/// A query failing.
pub fn checkpoint(
    conn: &mut AnyConnection,
    key: &SigningKey,
    now: DateTime<Utc>,
) -> QueryResult<Option<CheckpointRow>> {
    let (seq, hash) = head(conn)?;
    if seq == 0 || last_checkpoint(conn)?.is_some_and(|c| c.seq >= seq) {
        return Ok(None);
    }
    let row = CheckpointRow {
        seq,
        signature: STANDARD.encode(
            key.sign(checkpoint_message(seq, &hash).as_bytes())
                .to_bytes(),
        ),
        hash,
        key_id: key_id(&key.verifying_key()),
        signed_at: now.naive_utc(),
    };
    diesel::insert_into(gov_checkpoints::table)
        .values(&row)
        .execute(conn)?;
    Ok(Some(row))
}

/// Every checkpoint, oldest first.
///
/// # Errors
/// A query failing.
pub fn checkpoints(conn: &mut AnyConnection) -> QueryResult<Vec<CheckpointRow>> {
    gov_checkpoints::table
        .order(gov_checkpoints::seq)
        .select(CheckpointRow::as_select())
        .load(conn)
}

/// Entries after `after` in sequence order, at most `limit`, of one type pattern when given.
///
/// # Errors
/// A query failing.
pub fn entries(
    conn: &mut AnyConnection,
    after: i64,
    limit: i64,
    event_type: Option<&str>,
    window: Option<(NaiveDateTime, NaiveDateTime)>,
) -> QueryResult<Vec<EntryRow>> {
    let mut query = gov_ledger::table
        .filter(gov_ledger::seq.gt(after))
        .order(gov_ledger::seq)
        .limit(limit)
        .select(EntryRow::as_select())
        .into_boxed();
    if let Some(pattern) = event_type {
        // `a.b.*` and `a.b.#` narrow by prefix in SQL; the exact match is made by the caller.
        let prefix = pattern.trim_end_matches(['*', '#']);
        query = if prefix.len() == pattern.len() {
            query.filter(gov_ledger::event_type.eq(pattern.to_owned()))
        } else {
            query.filter(gov_ledger::event_type.like(format!("{prefix}%")))
        };
    }
    if let Some((from, to)) = window {
        query = query
            .filter(gov_ledger::time.ge(from))
            .filter(gov_ledger::time.lt(to));
    }
    query.load(conn)
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Verdict {
    /// Entries read.
    pub entries: i64,
    /// The last sequence number read.
    pub last_seq: i64,
    /// Checkpoints checked.
    pub checkpoints: usize,
    /// The first sequence number that does not hold (none: the ledger is intact).
    pub first_bad_seq: Option<i64>,
    /// Why.
    pub problem: Option<String>,
}

impl Verdict {
    /// Whether nothing was found.
    pub fn intact(&self) -> bool {
        self.first_bad_seq.is_none()
    }
}

/// Walks the ledger in order, entry by entry (feed it with [`Verifier::entry`], then
/// [`Verifier::finish`] with the checkpoints, from the database and from outside it).
#[derive(Debug)]
pub struct Verifier {
    key: VerifyingKey,
    expected: i64,
    prev: String,
    read: i64,
    watched: BTreeMap<i64, Option<String>>,
    first_bad: Option<(i64, String)>,
}

impl Verifier {
    /// A verifier with `key`, which will compare the hashes at the checkpoints' `seqs`.
    pub fn new(key: VerifyingKey, seqs: impl IntoIterator<Item = i64>) -> Self {
        Self {
            key,
            expected: 1,
            prev: GENESIS.to_owned(),
            read: 0,
            watched: seqs.into_iter().map(|s| (s, None)).collect(),
            first_bad: None,
        }
    }

    fn bad(&mut self, seq: i64, why: String) {
        if self.first_bad.is_none() {
            self.first_bad = Some((seq, why));
        }
    }

    /// Checks the next entry.
    pub fn entry(&mut self, row: &EntryRow) {
        self.read += 1;
        if self.first_bad.is_some() {
            return;
        }
        if row.seq != self.expected {
            let why = if row.seq > self.expected {
                format!(
                    "entry {} is missing (the next one read is {})",
                    self.expected, row.seq
                )
            } else {
                format!("entry {} comes again or out of order", row.seq)
            };
            self.bad(self.expected, why);
            return;
        }
        if row.prev_hash != self.prev {
            self.bad(
                row.seq,
                format!("entry {} does not link to the entry before it", row.seq),
            );
            return;
        }
        if entry_hash(row) != row.hash {
            self.bad(
                row.seq,
                format!("entry {} does not match its hash: it was changed", row.seq),
            );
            return;
        }
        if !verify_signature(
            &self.key,
            &entry_message(row.seq, &row.hash),
            &row.signature,
        ) {
            self.bad(
                row.seq,
                format!(
                    "entry {} is not signed by the ledger's key: it was rewritten",
                    row.seq
                ),
            );
            return;
        }
        if let Some(slot) = self.watched.get_mut(&row.seq) {
            *slot = Some(row.hash.clone());
        }
        self.prev = row.hash.clone();
        self.expected += 1;
    }

    /// The verdict, with `checkpoints` (from the database and any exported copy).
    pub fn finish(mut self, checkpoints: &[CheckpointRow]) -> Verdict {
        let last = self.expected - 1;
        for c in checkpoints {
            if self.first_bad.is_some() {
                break;
            }
            if !verify_signature(&self.key, &checkpoint_message(c.seq, &c.hash), &c.signature) {
                self.bad(
                    c.seq,
                    format!("checkpoint {} is not signed by the ledger's key", c.seq),
                );
                break;
            }
            match self.watched.get(&c.seq).cloned().flatten() {
                Some(hash) if hash == c.hash => {}
                Some(_) => self.bad(
                    c.seq,
                    format!("entry {} differs from what checkpoint {} vouched for", c.seq, c.seq),
                ),
                None if c.seq > last => self.bad(
                    last + 1,
                    format!(
                        "the ledger ends at {last} but a checkpoint vouches for entry {}: its tail was cut",
                        c.seq
                    ),
                ),
                None => {}
            }
        }
        let (first_bad_seq, problem) = self
            .first_bad
            .map_or((None, None), |(s, w)| (Some(s), Some(w)));
        Verdict {
            entries: self.read,
            last_seq: last,
            checkpoints: checkpoints.len(),
            first_bad_seq,
            problem,
        }
    }
}

/// Verifies the whole ledger in the database, with its checkpoints and `extra` ones (an exported
/// copy), reading it in pages.
///
/// # Errors
/// A query failing.
pub fn verify(
    conn: &mut AnyConnection,
    key: VerifyingKey,
    extra: &[CheckpointRow],
) -> QueryResult<Verdict> {
    let mut all = checkpoints(conn)?;
    all.extend(extra.iter().cloned());
    all.sort_by_key(|c| c.seq);
    let mut verifier = Verifier::new(key, all.iter().map(|c| c.seq));
    let mut after = 0;
    loop {
        let page = entries(conn, after, 5000, None, None)?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.seq;
        for row in &page {
            verifier.entry(row);
        }
    }
    Ok(verifier.finish(&all))
}
