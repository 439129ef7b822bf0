//! How a record travels: its JSON text in an envelope that may carry an HMAC-SHA256 of that text.
//!
//! The signature covers the record's exact bytes (not a re-serialisation), and the record names its
//! own key, which must be the key it was asked for: a signed record cannot be replayed under
//! another stage's key.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::super::store::Record;

/// The envelope's format tag: a reader refuses envelopes of a format it does not know.
const FORMAT: &str = "repro-record/1";

#[derive(Serialize, Deserialize)]
struct Envelope {
    format: String,
    /// The record as JSON text.
    record: String,
    /// Lowercase hex HMAC-SHA256 of `record` under the signing key; absent when pushed unsigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hmac_sha256: Option<String>,
}

/// Why a record found on the remote is not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A signing key is set and the record carries no signature.
    Unsigned,
    /// The signature does not match the record under our key.
    BadSignature,
    /// The envelope or the record inside it does not parse.
    Unreadable(String),
    /// The record is for another key than the one it is stored under.
    WrongKey { found: String },
    /// An output's object on the remote fails its blake3 hash.
    CorruptObject { output: String, hash: String },
    /// An output's object is not on the remote.
    MissingObject { output: String, hash: String },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Unsigned => f.write_str("its record is not signed, and REPRO_REMOTE_KEY is set"),
            Refusal::BadSignature => {
                f.write_str("its record's signature does not match (tampered, or signed with another REPRO_REMOTE_KEY)")
            }
            Refusal::Unreadable(why) => write!(f, "its record is unreadable ({why})"),
            Refusal::WrongKey { found } => write!(f, "the record stored under its key is for key {}", short(found)),
            Refusal::CorruptObject { output, hash } => {
                write!(f, "output `{output}` on the remote fails its hash (object {})", short(hash))
            }
            Refusal::MissingObject { output, hash } => {
                write!(f, "output `{output}` is missing on the remote (object {})", short(hash))
            }
        }
    }
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

fn mac(key: &[u8], text: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(text);
    mac
}

/// The envelope bytes of `record`, signed when `key` is given.
pub fn seal(record: &Record, key: Option<&[u8]>) -> serde_json::Result<Vec<u8>> {
    let text = serde_json::to_string(record)?;
    let hmac_sha256 = key.map(|k| hex(&mac(k, text.as_bytes()).finalize().into_bytes()));
    serde_json::to_vec(&Envelope { format: FORMAT.to_string(), record: text, hmac_sha256 })
}

/// The record in `bytes`, stored under `expected_key`, if it passes every check. With a `key`,
/// the signature must be present and match; without one, signatures are not checked.
pub fn open(bytes: &[u8], expected_key: &str, key: Option<&[u8]>) -> Result<Record, Refusal> {
    let envelope: Envelope = serde_json::from_slice(bytes).map_err(|e| Refusal::Unreadable(e.to_string()))?;
    if envelope.format != FORMAT {
        return Err(Refusal::Unreadable(format!("format `{}`, expected `{FORMAT}`", envelope.format)));
    }
    if let Some(key) = key {
        let signature = envelope.hmac_sha256.as_deref().ok_or(Refusal::Unsigned)?;
        let signature = unhex(signature).ok_or(Refusal::BadSignature)?;
        // Constant-time comparison: a forger learns nothing from how long a refusal takes.
        mac(key, envelope.record.as_bytes()).verify_slice(&signature).map_err(|_| Refusal::BadSignature)?;
    }
    let record: Record = serde_json::from_str(&envelope.record).map_err(|e| Refusal::Unreadable(e.to_string()))?;
    if record.key != expected_key {
        return Err(Refusal::WrongKey { found: record.key });
    }
    Ok(record)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::store::ObjectRef;

    fn record(key: &str) -> Record {
        serde_json::from_value(serde_json::json!({
            "key": key, "stage": "a.train[seed=0]", "kind": "a.train",
            "outputs": {"out.csv": ObjectRef { hash: "ab".repeat(32), size: 3 }},
            "seconds": 1.5, "backend": "flex", "device": "cpu",
            "parts": {"kind": "a.train", "code": {}, "params": {}, "inputs": {}, "env": {}},
        }))
        .unwrap()
    }

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        // RFC 4231, test case 2: key "Jefe", data "what do ya want for nothing?".
        let tag = mac(b"Jefe", b"what do ya want for nothing?").finalize().into_bytes();
        assert_eq!(hex(&tag), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        assert_eq!(unhex(&hex(&tag)).unwrap(), tag.to_vec());
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }

    #[test]
    fn a_sealed_record_opens_under_its_key_and_signature_only() {
        let r = record("k1");
        let signed = seal(&r, Some(b"secret")).unwrap();
        assert_eq!(open(&signed, "k1", Some(b"secret")).unwrap().key, "k1");
        // Without a key, signatures are not checked; with another key, refused.
        assert!(open(&signed, "k1", None).is_ok());
        assert_eq!(open(&signed, "k1", Some(b"other")).unwrap_err(), Refusal::BadSignature);
        assert_eq!(open(&signed, "k2", Some(b"secret")).unwrap_err(), Refusal::WrongKey { found: "k1".into() });
        let unsigned = seal(&r, None).unwrap();
        assert_eq!(open(&unsigned, "k1", Some(b"secret")).unwrap_err(), Refusal::Unsigned);
        assert!(open(&unsigned, "k1", None).is_ok());
    }

    #[test]
    fn a_tampered_record_is_refused() {
        let signed = String::from_utf8(seal(&record("k1"), Some(b"secret")).unwrap()).unwrap();
        // Point an output at other bytes, keeping the signature.
        let tampered = signed.replace(&"ab".repeat(32), &"cd".repeat(32));
        assert_ne!(tampered, signed);
        assert_eq!(open(tampered.as_bytes(), "k1", Some(b"secret")).unwrap_err(), Refusal::BadSignature);
        assert!(matches!(open(b"{not json", "k1", None), Err(Refusal::Unreadable(_))));
    }
}
