//! Whom a reader trusts: ed25519 keys, written as Nix writes its binary caches' keys
//! (`NAME:BASE64`). A pusher holds a secret key and signs every record it publishes; a reader lists
//! the public keys it trusts (`[remote] trusted_keys`) and holds nothing that could forge a record.
//! The older shared secret (`REPRO_REMOTE_KEY`, an HMAC) is still read: every holder of it can
//! both check and forge, so it only keeps out those who hold nothing.

use std::path::Path;

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hmac::{Hmac, Mac};
use rand::TryRngCore;
use sha2::Sha256;

/// What a signature covers: this tag, then the record's exact text. The tag keeps a signature
/// made for anything else (another program, another format) from passing as a record's.
const SIGNED_PREFIX: &[u8] = b"repro-record/1\0";

/// A public key a reader trusts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedKey {
    pub name: String,
    key: VerifyingKey,
}

/// The secret key a pusher signs with.
pub struct SecretKey {
    pub name: String,
    key: SigningKey,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", self.name)
    }
}

/// `NAME:BASE64` into its parts, with the decoded bytes of the length `N` a key has.
fn split<const N: usize>(text: &str, what: &str) -> Result<(String, [u8; N])> {
    let text = text.trim();
    let (name, encoded) = text.rsplit_once(':').with_context(|| format!("a {what} is written NAME:BASE64"))?;
    if name.is_empty() || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        bail!("a {what}'s name is one word before the colon");
    }
    let bytes = BASE64.decode(encoded).with_context(|| format!("the {what} `{name}` is not base64"))?;
    let bytes: [u8; N] =
        bytes.try_into().map_err(|b: Vec<u8>| anyhow::anyhow!("the {what} `{name}` has {} bytes, not {N}", b.len()))?;
    Ok((name.to_string(), bytes))
}

impl TrustedKey {
    /// A public key as `repro keygen` prints it: `NAME:BASE64` of its 32 bytes.
    pub fn parse(text: &str) -> Result<TrustedKey> {
        let (name, bytes) = split::<32>(text, "public key")?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| anyhow::anyhow!("`{name}` is not an ed25519 point"))?;
        Ok(TrustedKey { name, key })
    }

    /// Whether `signature` (base64) is this key's over `record`.
    fn verifies(&self, record: &str, signature: &str) -> bool {
        let Ok(bytes) = BASE64.decode(signature) else { return false };
        let Ok(bytes) = <[u8; 64]>::try_from(bytes) else { return false };
        // Strict: no malleable or small-order forms, so one record has one valid signature per key.
        self.key.verify_strict(&signed_bytes(record), &Signature::from_bytes(&bytes)).is_ok()
    }
}

impl std::fmt::Display for TrustedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.name, BASE64.encode(self.key.as_bytes()))
    }
}

impl SecretKey {
    /// A secret key as `repro keygen` writes it (`NAME:BASE64` of its 32-byte seed), or the path
    /// of a file that holds one.
    pub fn parse_or_read(text: &str) -> Result<SecretKey> {
        let text = text.trim();
        let from_file = !text.contains(':') || Path::new(text).is_file();
        let text = if from_file {
            std::fs::read_to_string(text).with_context(|| format!("cannot read the secret key file {text}"))?
        } else {
            text.to_string()
        };
        let (name, seed) = split::<32>(&text, "secret key")?;
        Ok(SecretKey { name, key: SigningKey::from_bytes(&seed) })
    }

    /// A new key from the operating system's randomness.
    pub fn generate(name: &str) -> Result<SecretKey> {
        if name.is_empty() || name.contains(':') || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
            bail!("a key's name is one word without a colon (e.g. `ci-1`)");
        }
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.try_fill_bytes(&mut seed).context("cannot read the operating system's randomness")?;
        Ok(SecretKey { name: name.to_string(), key: SigningKey::from_bytes(&seed) })
    }

    pub fn public(&self) -> TrustedKey {
        TrustedKey { name: self.name.clone(), key: self.key.verifying_key() }
    }

    /// `NAME:BASE64` of the seed: what `REPRO_SIGNING_KEY` or a key file holds.
    pub fn to_text(&self) -> String {
        format!("{}:{}", self.name, BASE64.encode(self.key.to_bytes()))
    }

    /// `NAME:BASE64` of this key's signature over `record`.
    pub fn sign(&self, record: &str) -> String {
        format!("{}:{}", self.name, BASE64.encode(self.key.sign(&signed_bytes(record)).to_bytes()))
    }
}

fn signed_bytes(record: &str) -> Vec<u8> {
    [SIGNED_PREFIX, record.as_bytes()].concat()
}

/// What a reader accepts.
#[derive(Debug, Default)]
pub struct Trust {
    /// Records signed by one of these are used.
    pub keys: Vec<TrustedKey>,
    /// The shared secret of the HMAC mode: a record with a valid HMAC under it is used.
    pub hmac: Option<Vec<u8>>,
    /// Without a valid signature or HMAC, a record is refused (the default). Off, unsigned records
    /// are taken as found; a set HMAC secret still requires its HMAC.
    pub require: bool,
}

/// How a record's envelope was authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authenticity {
    /// Signed by this trusted key.
    Signed(String),
    /// Its HMAC under the shared secret matches.
    SharedSecret,
    /// Not checked: signatures are not required and the record carries none we can check.
    Unchecked,
}

/// Why an envelope's signatures do not make its record trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Untrusted {
    /// No signature, and one is required.
    Unsigned,
    /// Signed only by keys not in `trusted_keys` (their names, as the envelope gives them).
    UnknownSigners(Vec<String>),
    /// A signature by a trusted key, or the HMAC, does not match the record.
    BadSignature,
}

impl Trust {
    /// Whether a record with these signatures and HMAC is used; by which authority.
    pub fn check(&self, record: &str, signatures: &[String], hmac: Option<&str>) -> Result<Authenticity, Untrusted> {
        let mut unknown = Vec::new();
        for signature in signatures {
            let (name, value) = signature.rsplit_once(':').unwrap_or(("", signature));
            match self.keys.iter().find(|k| k.name == name) {
                Some(key) if key.verifies(record, value) => return Ok(Authenticity::Signed(key.name.clone())),
                Some(_) => return Err(Untrusted::BadSignature),
                None => unknown.push(name.to_string()),
            }
        }
        if let Some(secret) = &self.hmac {
            match hmac {
                Some(tag) if hmac_matches(secret, record, tag) => {
                    return Ok(Authenticity::SharedSecret);
                }
                Some(_) => return Err(Untrusted::BadSignature),
                None => {}
            }
        } else if !self.require {
            return Ok(Authenticity::Unchecked);
        }
        if unknown.is_empty() { Err(Untrusted::Unsigned) } else { Err(Untrusted::UnknownSigners(unknown)) }
    }
}

/// The HMAC-SHA256 of `text` under `key` (the older shared-secret mode).
pub(super) fn mac(key: &[u8], text: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(text);
    mac
}

/// Whether `tag` (hex) is the HMAC of `text` under `key`, compared in constant time: a forger
/// learns nothing from how long a refusal takes.
pub fn hmac_matches(key: &[u8], text: &str, tag: &str) -> bool {
    unhex(tag).is_some_and(|tag| mac(key, text.as_bytes()).verify_slice(&tag).is_ok())
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_8032_test_1_signs_and_verifies_as_published() {
        // RFC 8032, section 7.1, TEST 1: the empty message.
        let seed = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
        let seed: Vec<u8> = (0..64).step_by(2).map(|i| u8::from_str_radix(&seed[i..i + 2], 16).unwrap()).collect();
        let key = SigningKey::from_bytes(&seed.try_into().unwrap());
        let public: String = key.verifying_key().as_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(public, "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
        let signature: String = key.sign(b"").to_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            signature,
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
    }

    #[test]
    fn keys_round_trip_through_their_text() {
        let secret = SecretKey::generate("ci-1").unwrap();
        let again = SecretKey::parse_or_read(&secret.to_text()).unwrap();
        assert_eq!(again.public(), secret.public());
        assert_eq!(TrustedKey::parse(&secret.public().to_string()).unwrap(), secret.public());
        assert!(TrustedKey::parse("ci-1:AAAA").is_err(), "3 bytes");
        assert!(TrustedKey::parse("no colon").is_err());
        assert!(SecretKey::generate("a:b").is_err());
        assert_ne!(SecretKey::generate("x").unwrap().public(), SecretKey::generate("x").unwrap().public());
    }

    #[test]
    fn only_a_trusted_keys_signature_over_these_bytes_is_trusted() {
        let ours = SecretKey::generate("ours").unwrap();
        let theirs = SecretKey::generate("theirs").unwrap();
        let trust = Trust { keys: vec![ours.public()], hmac: None, require: true };
        let record = r#"{"key":"k"}"#;
        assert_eq!(trust.check(record, &[ours.sign(record)], None), Ok(Authenticity::Signed("ours".into())));
        assert_eq!(trust.check(r#"{"key":"j"}"#, &[ours.sign(record)], None), Err(Untrusted::BadSignature));
        assert_eq!(
            trust.check(record, &[theirs.sign(record)], None),
            Err(Untrusted::UnknownSigners(vec!["theirs".into()]))
        );
        // An untrusted signature beside a trusted one does not spoil it.
        assert_eq!(
            trust.check(record, &[theirs.sign(record), ours.sign(record)], None),
            Ok(Authenticity::Signed("ours".into()))
        );
        // Their key under our name is a bad signature, not an unknown one.
        let forged = theirs.sign(record).replacen("theirs", "ours", 1);
        assert_eq!(trust.check(record, &[forged], None), Err(Untrusted::BadSignature));
        assert_eq!(trust.check(record, &[], None), Err(Untrusted::Unsigned));
        assert_eq!(trust.check(record, &["garbage".into()], None), Err(Untrusted::UnknownSigners(vec!["".into()])));
        let lax = Trust { require: false, ..trust };
        assert_eq!(lax.check(record, &[], None), Ok(Authenticity::Unchecked));
        assert_eq!(lax.check(record, &[ours.sign("other")], None), Err(Untrusted::BadSignature));
    }
}
