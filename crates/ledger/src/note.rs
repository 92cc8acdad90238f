//! C2SP formats: tlog-checkpoint bodies, signed-note (Ed25519) signatures and verifier keys,
//! and tlog-cosignature (cosignature/v1) witness signatures.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::merkle::Hash;

const ED25519: u8 = 0x01;
const COSIGNATURE_V1: u8 = 0x04;
const DASH: &str = "\u{2014} ";

/// A checkpoint: the origin line, the tree size and the root hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The note text: `origin\nsize\nbase64(root)\n`.
    pub fn body(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, B64.encode(self.root))
    }

    pub fn parse(text: &str) -> Option<Checkpoint> {
        let mut lines = text.split('\n');
        let origin = lines.next().filter(|o| !o.is_empty())?.to_string();
        let size_text = lines.next()?;
        if size_text.is_empty() || (size_text.len() > 1 && size_text.starts_with('0')) {
            return None;
        }
        let size = size_text.parse().ok()?;
        let root: Hash = B64.decode(lines.next()?).ok()?.try_into().ok()?;
        Some(Checkpoint { origin, size, root })
    }
}

fn key_hash(name: &str, kind: u8, public: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([kind]);
    h.update(public);
    let d: [u8; 32] = h.finalize().into();
    let [a, b, c, e, ..] = d;
    [a, b, c, e]
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('+') && !name.chars().any(char::is_whitespace)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NoteError {
    #[error("malformed key")]
    Key,
    #[error("malformed note")]
    Malformed,
    #[error("no valid signature by {0}")]
    Unsigned(String),
    #[error("the note is not a checkpoint")]
    NotCheckpoint,
}

/// An Ed25519 note signer (a log's key, or a witness's for cosignatures).
pub struct NoteSigner {
    name: String,
    key: SigningKey,
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NoteSigner({})", self.name)
    }
}

impl NoteSigner {
    pub fn new(name: &str, seed: &[u8; 32]) -> Result<NoteSigner, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::Key);
        }
        Ok(NoteSigner { name: name.to_string(), key: SigningKey::from_bytes(seed) })
    }

    /// Parses `PRIVATE+KEY+name+hash+base64(0x01 ‖ seed)`, the format Go's `note` package writes.
    pub fn parse(text: &str) -> Result<NoteSigner, NoteError> {
        let text = text.trim();
        let rest = text.strip_prefix("PRIVATE+KEY+").ok_or(NoteError::Key)?;
        // The base64 key may itself contain '+': split off name and hash only.
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(hash), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::Key);
        };
        let raw = Zeroizing::new(B64.decode(key).map_err(|_| NoteError::Key)?);
        let (&kind, seed) = raw.split_first().ok_or(NoteError::Key)?;
        let seed: [u8; 32] = seed.try_into().map_err(|_| NoteError::Key)?;
        let signer = NoteSigner::new(name, &seed)?;
        if kind != ED25519 || hex::encode(signer.key_hash(ED25519)) != hash {
            return Err(NoteError::Key);
        }
        Ok(signer)
    }

    /// The private key in the same format (written to key files with mode 0600).
    pub fn private_key(&self) -> Zeroizing<String> {
        let mut raw = Zeroizing::new(vec![ED25519]);
        raw.extend_from_slice(self.key.as_bytes());
        Zeroizing::new(format!(
            "PRIVATE+KEY+{}+{}+{}",
            self.name,
            hex::encode(self.key_hash(ED25519)),
            B64.encode(&*raw)
        ))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A distinct key for `name`, derived from this one: each log signs with its own key, so
    /// a signature made for one log can never be passed off as another's.
    pub fn derive(&self, name: &str) -> Result<NoteSigner, NoteError> {
        let mut h = Sha256::new();
        h.update(b"tongban-note-key\0");
        h.update(self.key.as_bytes());
        h.update(name.as_bytes());
        let seed = Zeroizing::new(<[u8; 32]>::from(h.finalize()));
        NoteSigner::new(name, &seed)
    }

    fn key_hash(&self, kind: u8) -> [u8; 4] {
        key_hash(&self.name, kind, self.key.verifying_key().as_bytes())
    }

    /// `name+hash+base64(0x01 ‖ public key)`: what clients configure to verify this log.
    pub fn verifier_key(&self) -> String {
        let mut raw = vec![ED25519];
        raw.extend_from_slice(self.key.verifying_key().as_bytes());
        format!("{}+{}+{}", self.name, hex::encode(self.key_hash(ED25519)), B64.encode(raw))
    }

    /// The cosigner's verifier key (algorithm cosignature/v1).
    pub fn cosigner_verifier_key(&self) -> String {
        let mut raw = vec![COSIGNATURE_V1];
        raw.extend_from_slice(self.key.verifying_key().as_bytes());
        format!("{}+{}+{}", self.name, hex::encode(self.key_hash(COSIGNATURE_V1)), B64.encode(raw))
    }

    /// A signature line over `text` (which ends with a newline).
    pub fn sign(&self, text: &str) -> String {
        let sig = self.key.sign(text.as_bytes());
        let mut raw = self.key_hash(ED25519).to_vec();
        raw.extend_from_slice(&sig.to_bytes());
        format!("{DASH}{} {}\n", self.name, B64.encode(raw))
    }

    /// A tlog-cosignature line over a checkpoint body at `timestamp` (Unix seconds).
    pub fn cosign(&self, body: &str, timestamp: u64) -> String {
        let sig = self.key.sign(cosigned_message(body, timestamp).as_bytes());
        let mut raw = self.key_hash(COSIGNATURE_V1).to_vec();
        raw.extend_from_slice(&timestamp.to_be_bytes());
        raw.extend_from_slice(&sig.to_bytes());
        format!("{DASH}{} {}\n", self.name, B64.encode(raw))
    }
}

fn cosigned_message(body: &str, timestamp: u64) -> String {
    format!("cosignature/v1\ntime {timestamp}\n{body}")
}

/// A verifier for one key, from its `name+hash+base64` form.
#[derive(Debug, Clone)]
pub struct NoteVerifier {
    pub name: String,
    kind: u8,
    hash: [u8; 4],
    key: VerifyingKey,
}

impl NoteVerifier {
    pub fn parse(text: &str) -> Result<NoteVerifier, NoteError> {
        let mut parts = text.trim().splitn(3, '+');
        let (Some(name), Some(hash), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::Key);
        };
        let raw = B64.decode(key).map_err(|_| NoteError::Key)?;
        let (&kind, public) = raw.split_first().ok_or(NoteError::Key)?;
        let public: [u8; 32] = public.try_into().map_err(|_| NoteError::Key)?;
        if !valid_name(name) || !(kind == ED25519 || kind == COSIGNATURE_V1) {
            return Err(NoteError::Key);
        }
        let expected = key_hash(name, kind, &public);
        if hex::encode(expected) != hash {
            return Err(NoteError::Key);
        }
        let key = VerifyingKey::from_bytes(&public).map_err(|_| NoteError::Key)?;
        Ok(NoteVerifier { name: name.to_string(), kind, hash: expected, key })
    }

    /// Checks one signature line's payload against `text`; for cosignatures returns the
    /// timestamp.
    fn check(&self, text: &str, payload: &[u8]) -> Option<u64> {
        let (hash, rest) = payload.split_at_checked(4)?;
        if hash != self.hash {
            return None;
        }
        match self.kind {
            ED25519 => {
                let sig = Signature::from_slice(rest).ok()?;
                self.key.verify(text.as_bytes(), &sig).ok().map(|()| 0)
            }
            _ => {
                let (time, sig) = rest.split_at_checked(8)?;
                let timestamp = u64::from_be_bytes(time.try_into().ok()?);
                let sig = Signature::from_slice(sig).ok()?;
                self.key.verify(cosigned_message(text, timestamp).as_bytes(), &sig).ok().map(|()| timestamp)
            }
        }
    }
}

/// A signed note: the text, a blank line, then signature lines.
pub fn assemble(text: &str, signatures: &[String]) -> String {
    let mut note = format!("{text}\n");
    for s in signatures {
        note.push_str(s);
    }
    note
}

/// One signature line: the key name and the decoded payload (key hash, then signature).
pub type SignatureLine = (String, Vec<u8>);

/// Splits a note into its text and its signature lines.
pub fn split(note: &str) -> Result<(&str, Vec<SignatureLine>), NoteError> {
    let at = note.rfind("\n\n").ok_or(NoteError::Malformed)?;
    let (text, sigs) = note.split_at(at + 1);
    let sigs = sigs.strip_prefix('\n').ok_or(NoteError::Malformed)?;
    let mut out = Vec::new();
    for line in sigs.lines() {
        let line = line.strip_prefix(DASH).ok_or(NoteError::Malformed)?;
        let (name, b64) = line.rsplit_once(' ').ok_or(NoteError::Malformed)?;
        out.push((name.to_string(), B64.decode(b64).map_err(|_| NoteError::Malformed)?));
    }
    if out.is_empty() {
        return Err(NoteError::Malformed);
    }
    Ok((text, out))
}

/// Verifies that `note` carries a valid signature by `verifier`; returns the text.
pub fn verify<'a>(note: &'a str, verifier: &NoteVerifier) -> Result<&'a str, NoteError> {
    let (text, sigs) = split(note)?;
    let ok = sigs.iter().any(|(name, payload)| *name == verifier.name && verifier.check(text, payload).is_some());
    if ok { Ok(text) } else { Err(NoteError::Unsigned(verifier.name.clone())) }
}

/// The timestamp of a valid cosignature by `witness` on `note`, if any.
pub fn cosigned_at(note: &str, witness: &NoteVerifier) -> Option<u64> {
    let (text, sigs) = split(note).ok()?;
    sigs.iter().filter(|(name, _)| *name == witness.name).find_map(|(_, payload)| witness.check(text, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(name: &str) -> NoteSigner {
        NoteSigner::new(name, &[7u8; 32]).unwrap()
    }

    #[test]
    fn checkpoint_round_trip_and_strict_parsing() {
        let c = Checkpoint { origin: "tongban/audit".into(), size: 42, root: [9u8; 32] };
        assert_eq!(c.body(), "tongban/audit\n42\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n");
        assert_eq!(Checkpoint::parse(&c.body()), Some(c));
        assert_eq!(Checkpoint::parse("o\n042\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n"), None);
        assert_eq!(Checkpoint::parse("o\n1\nAAAA\n"), None);
    }

    #[test]
    fn keys_whose_base64_holds_a_plus_sign_parse() {
        for seed in 0..64u8 {
            let s = NoteSigner::new("tongban/audit", &[seed; 32]).unwrap();
            assert!(NoteVerifier::parse(&s.verifier_key()).is_ok(), "{}", s.verifier_key());
            assert!(NoteSigner::parse(&s.private_key()).is_ok());
        }
    }

    #[test]
    fn keys_round_trip_in_go_note_formats() {
        let s = signer("tongban/audit");
        let again = NoteSigner::parse(&s.private_key()).unwrap();
        assert_eq!(again.verifier_key(), s.verifier_key());
        let v = NoteVerifier::parse(&s.verifier_key()).unwrap();
        assert_eq!(v.name, "tongban/audit");
        // A key whose hash does not match its name is refused.
        let forged = s.verifier_key().replacen("tongban/audit", "tongban/public", 1);
        assert_eq!(NoteVerifier::parse(&forged).unwrap_err(), NoteError::Key);
        assert!(NoteSigner::new("has space", &[1; 32]).is_err());
    }

    #[test]
    fn signatures_verify_and_any_change_fails() {
        let s = signer("tongban/audit");
        let c = Checkpoint { origin: "tongban/audit".into(), size: 3, root: [1u8; 32] };
        let note = assemble(&c.body(), &[s.sign(&c.body())]);
        let v = NoteVerifier::parse(&s.verifier_key()).unwrap();
        assert_eq!(verify(&note, &v).unwrap(), c.body());
        let tampered = note.replacen("\n3\n", "\n4\n", 1);
        assert!(verify(&tampered, &v).is_err());
        let other = NoteVerifier::parse(&NoteSigner::new("tongban/audit", &[8u8; 32]).unwrap().verifier_key()).unwrap();
        assert!(verify(&note, &other).is_err());
        assert!(verify("no signatures\n", &v).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        /// Any single changed byte of a signed checkpoint breaks it: the signature fails, or
        /// the note no longer parses as the same checkpoint.
        #[test]
        fn every_changed_byte_of_a_checkpoint_is_caught(at in 0usize..200, replacement in 0x20u8..0x7f) {
            let s = signer("tongban/audit");
            let c = Checkpoint { origin: "tongban/audit".into(), size: 1_234_567, root: [0x5a; 32] };
            let note = assemble(&c.body(), &[s.sign(&c.body())]);
            let mut bytes = note.clone().into_bytes();
            let i = at % bytes.len();
            proptest::prop_assume!(bytes[i] != replacement);
            bytes[i] = replacement;
            let v = NoteVerifier::parse(&s.verifier_key()).unwrap();
            // Replacing part of the em dash leaves invalid UTF-8: such a note cannot even be read.
            let accepted = String::from_utf8(bytes).ok().and_then(|n| verify(&n, &v).ok().and_then(Checkpoint::parse));
            proptest::prop_assert_eq!(accepted, None);
        }
    }

    #[test]
    fn cosignatures() {
        let log = signer("tongban/audit");
        let witness = NoteSigner::new("audit-bureau.example/witness", &[3u8; 32]).unwrap();
        let c = Checkpoint { origin: "tongban/audit".into(), size: 10, root: [2u8; 32] };
        let note = assemble(&c.body(), &[log.sign(&c.body()), witness.cosign(&c.body(), 1_800_000_000)]);
        let wv = NoteVerifier::parse(&witness.cosigner_verifier_key()).unwrap();
        assert_eq!(cosigned_at(&note, &wv), Some(1_800_000_000));
        // The log's own verifier still accepts the note with the extra line.
        assert!(verify(&note, &NoteVerifier::parse(&log.verifier_key()).unwrap()).is_ok());
        // An Ed25519-typed key for the witness does not accept a cosignature.
        assert_eq!(cosigned_at(&note, &NoteVerifier::parse(&witness.verifier_key()).unwrap()), None);
    }
}
