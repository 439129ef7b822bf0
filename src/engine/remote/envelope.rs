//! How a record travels: its JSON text in an envelope that carries ed25519 signatures of that
//! text (see [`super::trust`]) and, in the older shared-secret mode, an HMAC-SHA256 of it.
//!
//! Signatures cover the record's exact bytes (not a re-serialisation), and the record names its
//! own key, which must be the key it was asked for: a signed record cannot be replayed under
//! another stage's key. Whatever the signatures say, the record is then validated
//! ([`super::validate`]) before anything of it is used.

use hmac::Mac;
use serde::{Deserialize, Serialize};

use super::super::store::Record;
use super::super::untrusted::{printable, short};
use super::trust::{Authenticity, SecretKey, Trust, Untrusted, hex, mac};
use super::validate::{self, Asked, Invalid};

/// The envelope's format tag: a reader refuses envelopes of a format it does not know.
const FORMAT: &str = "repro-record/1";

/// An envelope larger than this is not read (a record is a few KiB).
pub const MAX_ENVELOPE_BYTES: u64 = 1 << 20;

#[derive(Serialize, Deserialize)]
struct Envelope {
    format: String,
    /// The record as JSON text.
    record: String,
    /// `NAME:BASE64` ed25519 signatures of `record`, one per signing key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    signatures: Vec<String>,
    /// Lowercase hex HMAC-SHA256 of `record` under the shared secret; absent when not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hmac_sha256: Option<String>,
}

/// How a pusher signs.
#[derive(Debug, Default)]
pub struct Signer {
    pub key: Option<SecretKey>,
    pub hmac: Option<Vec<u8>>,
}

/// Why a record found on the remote is not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Signatures are required and the record carries none (and no HMAC where one is set).
    Unsigned,
    /// Signed only by keys this reader does not trust.
    UntrustedSigners(Vec<String>),
    /// A signature by a trusted key, or the HMAC, does not match the record.
    BadSignature,
    /// The envelope or the record inside it does not parse.
    Unreadable(String),
    /// The record is for another key than the one it is stored under.
    WrongKey { found: String },
    /// The record parses but says what no record of this stage may say.
    Invalid(Invalid),
    /// An output's object on the remote fails its blake3 hash, or is not the size the record says.
    CorruptObject { output: String, hash: String },
    /// An output's object is not on the remote.
    MissingObject { output: String, hash: String },
    /// What stands in the remote where a file should be is not a regular file (a link, a FIFO, a
    /// device, a folder).
    NotAFile { what: String },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Unsigned => f.write_str(
                "its record is not signed by a trusted key ([remote] trusted_keys; require_signatures = false takes records as found)",
            ),
            Refusal::UntrustedSigners(names) => {
                let names: Vec<String> = names.iter().map(|n| format!("`{}`", printable(n))).collect();
                write!(f, "its record is signed by {}, not in [remote] trusted_keys", names.join(", "))
            }
            Refusal::BadSignature => f.write_str(
                "its record's signature does not match (tampered, or signed with another key than its name says)",
            ),
            Refusal::Unreadable(why) => write!(f, "its record is unreadable ({})", printable(why)),
            Refusal::WrongKey { found } => write!(f, "the record stored under its key is for key {}", short(found)),
            Refusal::Invalid(why) => write!(f, "its record is invalid: {why}"),
            Refusal::CorruptObject { output, hash } => {
                write!(f, "output `{}` on the remote fails its hash or size (object {})", printable(output), short(hash))
            }
            Refusal::MissingObject { output, hash } => {
                write!(f, "output `{}` is missing on the remote (object {})", printable(output), short(hash))
            }
            Refusal::NotAFile { what } => {
                write!(f, "{} on the remote is not a regular file (a link, FIFO or device is never read)", printable(what))
            }
        }
    }
}

/// The envelope bytes of `record`, signed by what `signer` holds.
pub fn seal(record: &Record, signer: &Signer) -> serde_json::Result<Vec<u8>> {
    let text = serde_json::to_string(record)?;
    let signatures = signer.key.iter().map(|k| k.sign(&text)).collect();
    let hmac_sha256 = signer.hmac.as_deref().map(|k| hex(&mac(k, text.as_bytes()).finalize().into_bytes()));
    serde_json::to_vec(&Envelope { format: FORMAT.to_string(), record: text, signatures, hmac_sha256 })
}

/// The record in `bytes`, stored under `asked.key`, if it passes every check: the envelope's
/// size and format, its signatures under `trust`, then the record's own validity for the stage
/// that asked. No input makes it panic (a fuzz test holds it to that).
pub fn open(bytes: &[u8], asked: &Asked, trust: &Trust) -> Result<(Record, Authenticity), Refusal> {
    if bytes.len() as u64 > MAX_ENVELOPE_BYTES {
        return Err(Refusal::Unreadable(format!("{} bytes, more than a record's {MAX_ENVELOPE_BYTES}", bytes.len())));
    }
    let envelope: Envelope = serde_json::from_slice(bytes).map_err(|e| Refusal::Unreadable(e.to_string()))?;
    if envelope.format != FORMAT {
        return Err(Refusal::Unreadable(format!("format `{}`, expected `{FORMAT}`", short(&envelope.format))));
    }
    let authenticity = trust.check(&envelope.record, &envelope.signatures, envelope.hmac_sha256.as_deref()).map_err(
        |why| match why {
            Untrusted::Unsigned => Refusal::Unsigned,
            Untrusted::UnknownSigners(names) => Refusal::UntrustedSigners(names),
            Untrusted::BadSignature => Refusal::BadSignature,
        },
    )?;
    let record: Record = serde_json::from_str(&envelope.record).map_err(|e| Refusal::Unreadable(e.to_string()))?;
    if record.key != asked.key {
        return Err(Refusal::WrongKey { found: record.key });
    }
    validate::check(&record, asked).map_err(Refusal::Invalid)?;
    Ok((record, authenticity))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::super::trust::{hmac_matches, unhex};
    use super::*;
    use crate::engine::store::ObjectRef;
    use crate::engine::untrusted::{BadName, check_relative_name, is_object_hash};

    /// A record as a training stage commits it: its key is the hash of its parts.
    fn record() -> Record {
        let mut record: Record = serde_json::from_value(serde_json::json!({
            "key": "", "stage": "a.train[seed=0]", "kind": "a.train",
            "outputs": {"out.csv": ObjectRef { hash: "ab".repeat(32), size: 3 }},
            "seconds": 1.5, "backend": "flex", "device": "cpu",
            "parts": {"kind": "a.train", "code": {"src/a.rs": "cd".repeat(32)}, "params": {"lr": 0.001}, "inputs": {}, "env": {}},
        }))
        .unwrap();
        record.key = record.parts.key();
        record
    }

    fn asked(record: &Record) -> Asked {
        Asked {
            key: record.key.clone(),
            stage: record.stage.clone(),
            kind: record.kind.clone(),
            needed: BTreeSet::from(["out.csv".to_string()]),
            max_object_bytes: 1 << 20,
        }
    }

    fn trusting(keys: &[&SecretKey]) -> Trust {
        Trust { keys: keys.iter().map(|k| k.public()).collect(), hmac: None, require: true }
    }

    fn signed_by(key: &SecretKey) -> Signer {
        Signer { key: Some(SecretKey::parse_or_read(&key.to_text()).unwrap()), hmac: None }
    }

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        // RFC 4231, test case 2: key "Jefe", data "what do ya want for nothing?".
        let tag = mac(b"Jefe", b"what do ya want for nothing?").finalize().into_bytes();
        assert_eq!(hex(&tag), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        assert_eq!(unhex(&hex(&tag)).unwrap(), tag.to_vec());
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
        assert!(hmac_matches(b"Jefe", "what do ya want for nothing?", &hex(&tag)));
        assert!(!hmac_matches(b"Jefe", "what do ya want for nothing!", &hex(&tag)));
    }

    #[test]
    fn a_record_opens_only_under_a_trusted_signature_and_its_own_key() {
        let (r, ours, theirs) =
            (record(), SecretKey::generate("ours").unwrap(), SecretKey::generate("theirs").unwrap());
        let signed = seal(&r, &signed_by(&ours)).unwrap();
        let (opened, by) = open(&signed, &asked(&r), &trusting(&[&ours])).unwrap();
        assert_eq!((opened.key, by), (r.key.clone(), Authenticity::Signed("ours".into())));
        assert_eq!(
            open(&signed, &asked(&r), &trusting(&[&theirs])).unwrap_err(),
            Refusal::UntrustedSigners(vec!["ours".into()])
        );
        let elsewhere = Asked { key: "k2".into(), ..asked(&r) };
        assert_eq!(
            open(&signed, &elsewhere, &trusting(&[&ours])).unwrap_err(),
            Refusal::WrongKey { found: r.key.clone() }
        );
        // Unsigned: refused by default, taken as found when signatures are not required.
        let unsigned = seal(&r, &Signer::default()).unwrap();
        assert_eq!(open(&unsigned, &asked(&r), &trusting(&[&ours])).unwrap_err(), Refusal::Unsigned);
        let lax = Trust { require: false, ..trusting(&[&ours]) };
        assert_eq!(open(&unsigned, &asked(&r), &lax).unwrap().1, Authenticity::Unchecked);
        // The shared secret: its HMAC counts, and is then required.
        let hmac = Signer { key: None, hmac: Some(b"secret".to_vec()) };
        let shared = Trust { keys: Vec::new(), hmac: Some(b"secret".to_vec()), require: false };
        assert_eq!(open(&seal(&r, &hmac).unwrap(), &asked(&r), &shared).unwrap().1, Authenticity::SharedSecret);
        assert_eq!(open(&unsigned, &asked(&r), &shared).unwrap_err(), Refusal::Unsigned);
        let other = Trust { hmac: Some(b"other".to_vec()), ..shared };
        assert_eq!(open(&seal(&r, &hmac).unwrap(), &asked(&r), &other).unwrap_err(), Refusal::BadSignature);
    }

    #[test]
    fn a_swapped_object_under_a_valid_signature_is_refused() {
        let (r, ours) = (record(), SecretKey::generate("ours").unwrap());
        let signed = String::from_utf8(seal(&r, &signed_by(&ours)).unwrap()).unwrap();
        // Point the output at other bytes (a forged summary.csv), keeping the signature.
        let tampered = signed.replace(&"ab".repeat(32), &"ef".repeat(32));
        assert_ne!(tampered, signed);
        assert_eq!(open(tampered.as_bytes(), &asked(&r), &trusting(&[&ours])).unwrap_err(), Refusal::BadSignature);
        assert!(matches!(open(b"{not json", &asked(&r), &trusting(&[&ours])), Err(Refusal::Unreadable(_))));
    }

    /// `r` changed by `edit`, with its key still the hash of its parts, opened as asked for `r`.
    fn invalid(edit: impl FnOnce(&mut Record)) -> Refusal {
        let mut r = record();
        let asked = asked(&r);
        edit(&mut r);
        let lax = Trust { require: false, ..Trust::default() };
        open(&seal(&r, &Signer::default()).unwrap(), &asked, &lax).unwrap_err()
    }

    #[test]
    fn every_way_a_record_can_reach_outside_its_stage_is_refused() {
        let out = |name: &str, hash: &str, size: u64| (name.to_string(), ObjectRef { hash: hash.into(), size });
        let good = "ab".repeat(32);
        let name = |name: &str, why| Refusal::Invalid(Invalid::OutputName { name: name.into(), why });
        for (evil, why) in
            [("../../../escaped_evil.sh", BadName::Component), ("/tmp/escaped_evil.sh", BadName::Absolute)]
        {
            assert_eq!(invalid(|r| r.outputs.extend([out(evil, &good, 3)])), name(evil, why));
        }
        assert_eq!(invalid(|r| r.outputs.extend([out("x\u{1b}[2J", &good, 3)])), name("x\u{1b}[2J", BadName::Control));
        assert_eq!(
            invalid(|r| r.outputs.extend([out("out.csv", "a", 3)])),
            Refusal::Invalid(Invalid::Hash { output: "out.csv".into(), hash: "a".into() })
        );
        assert_eq!(invalid(|r| r.outputs.clear()), Refusal::Invalid(Invalid::NoOutputs));
        assert_eq!(
            invalid(|r| r.outputs = [out("other.csv", &good, 3)].into()),
            Refusal::Invalid(Invalid::MissingOutput { name: "out.csv".into() })
        );
        assert_eq!(
            invalid(|r| r.outputs.extend([out("out.csv", &good, 2 << 20)])),
            Refusal::Invalid(Invalid::TooLarge { output: "out.csv".into(), size: 2 << 20, cap: 1 << 20 })
        );
        assert_eq!(
            invalid(|r| r.stage = "b.train".into()),
            Refusal::Invalid(Invalid::WrongStage { found: "b.train".into() })
        );
        assert_eq!(
            invalid(|r| r.kind = "b.train".into()),
            Refusal::Invalid(Invalid::WrongKind { found: "b.train".into() })
        );
        // Other parameters than the ones its key stands for.
        assert_eq!(
            invalid(|r| r.parts.params.insert("lr".into(), serde_json::json!(0.1)).map(drop).unwrap_or(())),
            Refusal::Invalid(Invalid::PartsDoNotHashToKey)
        );
        assert_eq!(invalid(|r| r.seconds = -1.0), Refusal::Invalid(Invalid::Duration { field: "seconds" }));
        assert_eq!(invalid(|r| r.device = "cpu\r".into()), Refusal::Invalid(Invalid::Text { field: "device" }));
        // Messages print what they quote without its control characters.
        let shown = invalid(|r| r.outputs.extend([out("x\u{1b}[2J", &good, 3)])).to_string();
        assert!(shown.contains("x\\u{1b}[2J") && !shown.contains('\u{1b}'), "{shown}");
    }

    /// What any accepted record must be, whatever bytes it came from.
    fn assert_safe(record: &Record, asked: &Asked) {
        assert_eq!(record.key, asked.key);
        assert!(!record.outputs.is_empty());
        for (name, object) in &record.outputs {
            assert!(check_relative_name(name).is_ok(), "{name:?}");
            assert!(is_object_hash(&object.hash) && object.size <= asked.max_object_bytes);
        }
    }

    /// Cases per property; `REPRO_FUZZ_CASES` runs more (the default keeps `make test` short).
    fn cases() -> u32 {
        std::env::var("REPRO_FUZZ_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(10_000)
    }

    /// A JSON string a hostile writer might put anywhere: the record's names and hashes included.
    fn hostile_text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("../../../escaped_evil.sh".to_string()),
            Just("/etc/passwd".to_string()),
            Just("a".to_string()),
            Just(String::new()),
            Just("ab".repeat(32)),
            Just("é".repeat(40)),
            "\\PC{0,80}",
            any::<String>(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

        /// Arbitrary bytes: never a panic, and nothing unsigned is accepted.
        #[test]
        fn fuzz_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let r = record();
            let ours = SecretKey::parse_or_read(&format!("ours:{}", "A".repeat(43) + "=")).unwrap();
            prop_assert!(open(&bytes, &asked(&r), &trusting(&[&ours])).is_err());
            let lax = Trust { require: false, ..Trust::default() };
            if let Ok((record, _)) = open(&bytes, &asked(&r), &lax) {
                assert_safe(&record, &asked(&r));
            }
        }

        /// A real signed envelope with bytes flipped, cut or inserted: never a panic, and a record
        /// is accepted only as it was signed.
        #[test]
        fn fuzz_mutated_envelopes(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
        ) {
            let r = record();
            let ours = SecretKey::parse_or_read(&format!("ours:{}A=", "B".repeat(42))).unwrap();
            let mut bytes = seal(&r, &signed_by(&ours)).unwrap();
            for (at, byte, how) in edits {
                let i = at.index(bytes.len().max(1));
                match how {
                    0 if i < bytes.len() => bytes[i] = byte,
                    1 if i < bytes.len() => { bytes.remove(i); }
                    _ => bytes.insert(i.min(bytes.len()), byte),
                }
            }
            if let Ok((record, _)) = open(&bytes, &asked(&r), &trusting(&[&ours])) {
                prop_assert_eq!(serde_json::to_string(&record).unwrap(), serde_json::to_string(&r).unwrap());
            }
            let lax = Trust { require: false, ..Trust::default() };
            if let Ok((record, _)) = open(&bytes, &asked(&r), &lax) {
                assert_safe(&record, &asked(&r));
            }
        }

        /// Well-formed envelopes around records with hostile names, hashes, sizes and fields.
        #[test]
        fn fuzz_hostile_records(
            outputs in proptest::collection::btree_map(hostile_text(), (hostile_text(), any::<u64>()), 0..4),
            stage in hostile_text(),
            backend in hostile_text(),
            seconds in any::<f64>(),
        ) {
            let mut r = record();
            let asked = asked(&r);
            r.outputs = outputs.into_iter().map(|(name, (hash, size))| (name, ObjectRef { hash, size })).collect();
            if !stage.is_empty() {
                r.stage = stage;
            }
            r.backend = backend;
            r.seconds = if seconds.is_finite() { seconds } else { 0.0 };
            let lax = Trust { require: false, ..Trust::default() };
            let bytes = seal(&r, &Signer::default()).unwrap();
            if let Ok((record, _)) = open(&bytes, &asked, &lax) {
                assert_safe(&record, &asked);
            }
            // Every refusal can be printed, and prints no control character.
            if let Err(why) = open(&bytes, &asked, &lax) {
                prop_assert!(!why.to_string().chars().any(char::is_control));
            }
        }
    }
}
