//! The hash chain, pure: the canonical byte encoding of an entry, the link
//! `hash = SHA-256(prev_hash ‖ seq ‖ canonical entry)`, and the digest of an entry's
//! erasable personal data. No database here, so every rule is unit-tested.
//!
//! The encoding is length-prefixed (never ambiguous: `"ab","c"` ≠ `"a","bc"`) and
//! JSON is written with sorted keys, so an entry read back from `jsonb` (which
//! reorders keys and drops whitespace) encodes to the very bytes that were hashed.

use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub type Hash = [u8; 32];

/// The `prev_hash` of a community's first entry.
pub const GENESIS: Hash = [0; 32];

/// Bumped if the encoding ever changes, so old and new entries never collide.
const VERSION: u8 = 1;

/// Marks an absent optional field (a length no real field can have).
const ABSENT: u32 = u32::MAX;

/// The hashed fields of one entry, borrowed from wherever they live.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    pub id: Uuid,
    pub community_id: Uuid,
    pub occurred_at_micros: i64,
    pub actor: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub before: Option<&'a Value>,
    pub after: Option<&'a Value>,
    pub correlation_id: Option<&'a str>,
    pub personal_digest: Option<&'a [u8]>,
}

/// The canonical encoding that the chain hashes.
pub fn canonical(f: &Fields<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.push(VERSION);
    field(&mut out, Some(f.id.as_bytes()));
    field(&mut out, Some(f.community_id.as_bytes()));
    field(&mut out, Some(&f.occurred_at_micros.to_be_bytes()));
    field(&mut out, Some(f.actor.as_bytes()));
    field(&mut out, Some(f.action.as_bytes()));
    field(&mut out, Some(f.target.as_bytes()));
    field(&mut out, f.before.map(json).as_deref().map(str::as_bytes));
    field(&mut out, f.after.map(json).as_deref().map(str::as_bytes));
    field(&mut out, f.correlation_id.map(str::as_bytes));
    field(&mut out, f.personal_digest);
    out
}

fn field(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => {
            // Fields are far below 4 GiB (jsonb caps at 255 MB).
            out.extend_from_slice(&(b.len() as u32).to_be_bytes());
            out.extend_from_slice(b);
        }
        None => out.extend_from_slice(&ABSENT.to_be_bytes()),
    }
}

/// One link of the chain. PostgreSQL computes the same expression when it appends
/// (`sha256(prev || int8send(seq) || canonical)`), so both sides must agree.
pub fn link(prev: &Hash, seq: i64, canonical: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update(canonical);
    h.finalize().into()
}

/// The digest of erasable personal data that the entry hashes in its place.
pub fn personal_digest(salt: &[u8], reason: Option<&str>, names: &[String]) -> Hash {
    let mut buf = Vec::with_capacity(64);
    field(&mut buf, Some(salt));
    field(&mut buf, reason.map(str::as_bytes));
    field(&mut buf, Some(&(names.len() as u32).to_be_bytes()));
    for name in names {
        field(&mut buf, Some(name.as_bytes()));
    }
    Sha256::digest(&buf).into()
}

/// JSON with object keys sorted at every level and no whitespace.
pub fn json(value: &Value) -> String {
    let mut out = String::new();
    write_json(value, &mut out);
    out
}

fn write_json(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(&Value::String(key.clone()), out);
                out.push(':');
                write_json(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        // Scalars: serde_json's own rendering (escapes, shortest round-trip floats).
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields<'a>(before: Option<&'a Value>, actor: &'a str) -> Fields<'a> {
        Fields {
            id: Uuid::from_u128(1),
            community_id: Uuid::from_u128(2),
            occurred_at_micros: 1_700_000_000_000_000,
            actor,
            action: "settings.updated",
            target: "community:2",
            before,
            after: None,
            correlation_id: Some("interaction:9"),
            personal_digest: None,
        }
    }

    #[test]
    fn json_is_key_sorted_and_compact_at_every_level() {
        let v = json!({"b": 1, "a": {"d": [1, "x"], "c": null}});
        assert_eq!(json(&v), r#"{"a":{"c":null,"d":[1,"x"]},"b":1}"#);
    }

    #[test]
    fn absent_and_empty_fields_encode_differently() {
        let empty = json!("");
        let a = canonical(&fields(None, "system:gateway"));
        let b = canonical(&fields(Some(&empty), "system:gateway"));
        assert_ne!(a, b);
    }

    #[test]
    fn every_field_changes_the_encoding() {
        let base = canonical(&fields(None, "user:1"));
        assert_ne!(base, canonical(&fields(None, "user:2")));
        let mut f = fields(None, "user:1");
        f.occurred_at_micros += 1;
        assert_ne!(base, canonical(&f));
        let digest = [7u8; 32];
        let mut f = fields(None, "user:1");
        f.personal_digest = Some(&digest);
        assert_ne!(base, canonical(&f));
    }

    #[test]
    fn links_depend_on_prev_seq_and_content() {
        let c = canonical(&fields(None, "user:1"));
        let h1 = link(&GENESIS, 1, &c);
        assert_ne!(h1, link(&GENESIS, 2, &c));
        assert_ne!(h1, link(&h1, 1, &c));
        assert_ne!(h1, link(&GENESIS, 1, &c[1..]));
        assert_eq!(h1, link(&GENESIS, 1, &c), "deterministic");
    }

    #[test]
    fn personal_digest_depends_on_salt_and_splits_names() {
        let names = vec!["ab".to_owned(), "c".to_owned()];
        let split = vec!["a".to_owned(), "bc".to_owned()];
        let d = personal_digest(&[1; 16], Some("spam"), &names);
        assert_ne!(d, personal_digest(&[2; 16], Some("spam"), &names));
        assert_ne!(d, personal_digest(&[1; 16], Some("spam"), &split));
        assert_ne!(d, personal_digest(&[1; 16], None, &names));
    }
}
