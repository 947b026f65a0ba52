//! Meridian's fuzz targets. Each takes any bytes and must neither panic nor break its property;
//! `fuzz/` runs them under libFuzzer (`make fuzz`, cargo fuzz), and [`run`] runs them in
//! `make test` over a corpus and deterministic mutations of it (the short tier).
//!
//! - [`workflow_definition`]: the YAML parser and the validator of workflow definitions.
//! - [`bus_message`]: the decoders of what arrives from the broker, the CloudEvents attributes
//!   and every event type's payload; a message that decodes survives the trip back unchanged.
//! - [`link_token`]: action-link tokens (the notifier) and signed survey links (relationship);
//!   a link signed here opens its survey until it expires, and only then.
//! - [`ledger`]: the audit ledger verifier over a signed chain that the input damages; an
//!   intact chain verifies, and a damaged one never does (unless the damage is only a cut tail
//!   that no checkpoint vouches for, which only an exported checkpoint can show).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, NaiveDateTime};
use ed25519_dalek::{Signer as _, SigningKey};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use meridian_governance::ledger::{self, CheckpointRow, EntryRow, GENESIS};

/// A fuzz target: any bytes in.
pub type Target = fn(&[u8]);

/// The targets by name, as `fuzz/` names its binaries.
pub const TARGETS: &[(&str, Target)] = &[
    ("workflow_definition", workflow_definition),
    ("bus_message", bus_message),
    ("link_token", link_token),
    ("ledger", ledger),
];

/// Parses and validates `data` as a workflow definition.
pub fn workflow_definition(data: &[u8]) {
    let source = String::from_utf8_lossy(data);
    if let Ok(compiled) = meridian_workflow::definition::load(&source) {
        // What compiles has a start and can be walked.
        assert!(
            compiled.start().is_some(),
            "a compiled definition has a start"
        );
    }
    let _ = meridian_workflow::definition::version_of(&source);
}

/// Decodes `data` as a message from the broker: attributes (lines `name=value` up to a blank
/// line) and the payload of the event type the first byte picks.
pub fn bus_message(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let types = meridian_proto::EVENT_TYPES;
    let (event_type, _) = types[usize::from(pick) % types.len()];
    let _ = meridian_proto::decode_json(event_type, rest);

    let (head, payload) = match rest.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&rest[..at], &rest[at + 2..]),
        None => (rest, &[][..]),
    };
    let mut headers = FieldTable::default();
    for line in String::from_utf8_lossy(head).lines() {
        // AMQP field names are short strings: at most 255 bytes.
        if let Some((name, value)) = line.split_once('=')
            && name.len() <= 255 - "cloudEvents_".len()
        {
            headers.insert(
                ShortString::from(format!("cloudEvents_{name}")),
                AMQPValue::LongString(LongString::from(value.as_bytes().to_vec())),
            );
        }
    }
    let properties = lapin::BasicProperties::default().with_headers(headers);
    if let Ok(envelope) = meridian_chassis::bus::Envelope::from_amqp(&properties, payload.to_vec())
    {
        let again =
            meridian_chassis::bus::Envelope::from_amqp(&envelope.properties(), payload.to_vec());
        assert_eq!(
            again.as_ref(),
            Ok(&envelope),
            "a message survives the trip through AMQP"
        );
    }
}

/// Checks `data` as an action-link token and as a survey link; signs and opens a survey link
/// made from it.
pub fn link_token(data: &[u8]) {
    use meridian_relationship::domain::token::{LinkError, sign, verify};
    const SECRET: &[u8] = b"fuzz-survey-link-secret-0123456789";
    let text = String::from_utf8_lossy(data);
    if meridian_notifier::domain::token::well_formed(&text) {
        let hash = meridian_notifier::domain::token::hash(&text);
        assert_eq!(hash.len(), 64, "a token's hash is SHA-256 in hex");
    }
    let now = 1_800_000_000;
    let _ = verify(SECRET, &text, now);
    // A link signed here: it opens its survey before it expires, never after, never elsewhere.
    let mut bytes = [0u8; 24];
    for (slot, byte) in bytes.iter_mut().zip(data) {
        *slot = *byte;
    }
    let [id @ .., e0, e1, e2, e3, e4, e5, e6, e7] = bytes;
    let survey = uuid::Uuid::from_bytes(id[..16].try_into().unwrap_or_default());
    let expires = i64::from_le_bytes([e0, e1, e2, e3, e4, e5, e6, e7]);
    let token = sign(SECRET, survey, expires);
    let opened = verify(SECRET, &token, now);
    if now < expires {
        assert_eq!(opened, Ok(survey), "{token}");
    } else {
        assert_eq!(opened, Err(LinkError::Expired), "{token}");
    }
    assert_eq!(
        verify(b"another-secret-another-secret-0123", &token, now),
        Err(LinkError::Invalid)
    );
}

/// Builds a signed ledger chain from `data`, damages it as the rest of `data` says, and
/// verifies it.
pub fn ledger(data: &[u8]) {
    let key = SigningKey::from_bytes(&[7; 32]);
    let mut bytes = data.iter().copied();
    let mut next = move || bytes.next().unwrap_or(0);
    let base = DateTime::from_timestamp(1_790_000_000, 0)
        .map(|t| t.naive_utc())
        .unwrap_or_default();
    let count = usize::from(next() % 6) + 1;
    let mut original: Vec<EntryRow> = Vec::with_capacity(count);
    for i in 0..count {
        let seq = i64::try_from(i).unwrap_or(0) + 1;
        let mut row = EntryRow {
            seq,
            event_id: format!("e{seq}-{}", next()),
            event_type: format!("t.{}", char::from(next() % 26 + b'a')),
            source: "fuzz".to_owned(),
            subject: String::from_utf8_lossy(&[next(), next()]).into_owned(),
            actor: "fuzz".to_owned(),
            time: base + chrono::Duration::seconds(i64::from(next())),
            payload_sha256: String::new(),
            data: "null".to_owned(),
            prev_hash: original
                .last()
                .map_or_else(|| GENESIS.to_owned(), |r| r.hash.clone()),
            hash: String::new(),
            signature: String::new(),
            recorded_at: NaiveDateTime::default(),
        };
        row.hash = ledger::entry_hash(&row);
        row.signature = sign(&key, &ledger::entry_message(seq, &row.hash));
        original.push(row);
    }
    let checkpoint = |row: &EntryRow| CheckpointRow {
        seq: row.seq,
        hash: row.hash.clone(),
        signature: sign(&key, &ledger::checkpoint_message(row.seq, &row.hash)),
        key_id: ledger::key_id(&key.verifying_key()),
        signed_at: NaiveDateTime::default(),
    };
    let verdict = |rows: &[EntryRow], checkpoints: &[CheckpointRow]| {
        let mut verifier =
            ledger::Verifier::new(key.verifying_key(), checkpoints.iter().map(|c| c.seq));
        for row in rows {
            verifier.entry(row);
        }
        verifier.finish(checkpoints)
    };
    let vouched = [checkpoint(&original[count - 1])];
    assert!(
        verdict(&original, &vouched).intact(),
        "an intact chain verifies"
    );

    let (mut rows, mut checkpoints) = (original.clone(), vouched.to_vec());
    for _ in 0..(next() % 4) {
        let at = usize::from(next()) % rows.len().max(1);
        match next() % 9 {
            0 if rows.len() > 1 => {
                let other = usize::from(next()) % rows.len();
                rows.swap(at, other);
            }
            1 if !rows.is_empty() => {
                rows.remove(at);
            }
            2 if !rows.is_empty() => rows[at].event_type.push(char::from(next())),
            3 if !rows.is_empty() => {
                rows[at].seq = i64::from_le_bytes(std::array::from_fn(|_| next()));
            }
            4 if !rows.is_empty() => {
                rows[at].signature = String::from_utf8_lossy(&[next(), next(), next()]).into();
            }
            5 if !rows.is_empty() => rows[at].hash = format!("{:064x}", next()),
            6 if !rows.is_empty() => {
                let copy = rows[at].clone();
                rows.insert(at, copy);
            }
            7 => checkpoints.clear(),
            _ => checkpoints.push(CheckpointRow {
                seq: i64::from(next()),
                hash: format!("{:064x}", next()),
                signature: STANDARD.encode([next(); 64]),
                key_id: String::new(),
                signed_at: NaiveDateTime::default(),
            }),
        }
    }
    let result = verdict(&rows, &checkpoints);
    let genuine = checkpoints.iter().all(|c| vouched.contains(c));
    let cut_tail = rows.len() <= original.len() && rows[..] == original[..rows.len()];
    if rows == original && genuine {
        assert!(result.intact(), "an untouched chain verifies: {result:?}");
    } else if !(cut_tail && checkpoints.is_empty()) {
        assert!(
            !result.intact(),
            "a damaged chain never verifies: {rows:?} {checkpoints:?}"
        );
    }
}

fn sign(key: &SigningKey, message: &str) -> String {
    STANDARD.encode(key.sign(message.as_bytes()).to_bytes())
}

/// What [`run`] did with one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runs {
    /// The target.
    pub target: &'static str,
    /// Inputs tried.
    pub inputs: usize,
    /// Inputs that panicked, with the panic's message.
    pub crashes: Vec<(Vec<u8>, String)>,
}

/// Runs `target` over `corpus` and `mutations` deterministic mutations of it (bit flips, byte
/// changes, cuts, splices, inserted interesting values), catching panics.
pub fn run(name: &'static str, target: Target, corpus: &[Vec<u8>], mutations: usize) -> Runs {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut random = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let seeds: Vec<Vec<u8>> = if corpus.is_empty() {
        vec![Vec::new()]
    } else {
        corpus.to_vec()
    };
    let mut crashes = Vec::new();
    let mut attempt = |input: Vec<u8>| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let outcome = std::panic::catch_unwind(|| target(&input));
        std::panic::set_hook(previous);
        if let Err(panic) = outcome {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            crashes.push((input, message));
        }
    };
    for seed in &seeds {
        attempt(seed.clone());
    }
    for _ in 0..mutations {
        let pick = |n: usize, r: u64| usize::try_from(r).unwrap_or(0) % n.max(1);
        let mut input = seeds[pick(seeds.len(), random())].clone();
        for _ in 0..=(random() % 4) {
            let at = pick(input.len(), random());
            match random() % 7 {
                0 if !input.is_empty() => input[at] ^= 1 << (random() % 8),
                1 if !input.is_empty() => input[at] = random().to_le_bytes()[0],
                2 => input.truncate(at),
                3 => {
                    let other = &seeds[pick(seeds.len(), random())];
                    let from = pick(other.len(), random());
                    input.splice(at..at, other[from..].iter().copied().take(32));
                }
                4 => {
                    let interesting: &[&[u8]] = &[
                        b"\0",
                        b"\xff\xff\xff\xff",
                        b"-1",
                        b"9223372036854775808",
                        b"{{",
                        b"\n\n",
                        b": ",
                        b"- ",
                    ];
                    let value = interesting[pick(interesting.len(), random())];
                    input.splice(at..at, value.iter().copied());
                }
                5 if !input.is_empty() => {
                    let len = pick(16, random()) + 1;
                    let end = (at + len).min(input.len());
                    input.drain(at..end);
                }
                _ => input.extend(random().to_le_bytes()),
            }
        }
        attempt(input);
    }
    Runs {
        target: name,
        inputs: seeds.len() + mutations,
        crashes,
    }
}

#[cfg(test)]
mod tests {
    /// The short tier finds what a target breaks on, and says on what.
    #[test]
    fn a_crash_is_caught_with_its_input() {
        fn fragile(data: &[u8]) {
            assert!(!data.contains(&0x42), "found the byte");
        }
        let runs = super::run("fragile", fragile, &[b"aaaa".to_vec()], 2000);
        assert_eq!(runs.inputs, 2001);
        let (input, why) = runs.crashes.first().expect("a crash");
        assert!(input.contains(&0x42) && why.contains("found the byte"));
    }

    #[test]
    fn the_targets_take_any_bytes() {
        for (_, target) in super::TARGETS {
            for input in [&b""[..], b"\0", b"\xff\xff\xff"] {
                target(input);
            }
        }
    }
}
