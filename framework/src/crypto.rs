//! Ed25519 keys and signatures as they appear in replicated data: lowercase hex everywhere.

use std::fmt;

use ed25519_dalek::Signer;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Why a key or signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("{what} is not lowercase hex")]
    NotHex { what: &'static str },
    #[error("{what} must be {expected} bytes, got {actual}")]
    WrongLength { what: &'static str, expected: usize, actual: usize },
    #[error("public key is not a valid ed25519 point")]
    InvalidPublicKey,
    #[error("signature does not verify under this public key")]
    BadSignature,
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// A signing key. Its secret never appears in `Debug` output.
#[derive(Clone)]
pub struct SigningKey(ed25519_dalek::SigningKey);

impl SigningKey {
    /// A key from a 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// A deterministic key for demo data and tests, derived from a label. Never for production:
    /// anyone who knows the label knows the key.
    pub fn demo(label: &str) -> Self {
        Self::from_seed(sha256(format!("bftws demo key (insecure): {label}").as_bytes()))
    }

    /// A fresh random key from the operating system's generator.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed)?;
        Ok(Self::from_seed(seed))
    }

    /// A key from its hex-encoded 32-byte seed.
    pub fn from_seed_hex(text: &str) -> Result<Self, CryptoError> {
        Ok(Self::from_seed(decode_fixed::<32>(text.trim(), "signing key seed")?))
    }

    pub fn seed_hex(&self) -> String {
        hex::encode(self.0.to_bytes())
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    pub fn sign(&self, message: &[u8]) -> SignatureHex {
        SignatureHex(hex::encode(self.0.sign(message).to_bytes()))
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey(public={})", self.public_key())
    }
}

/// An ed25519 public key; serialized as 64 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl PublicKey {
    pub fn from_hex(text: &str) -> Result<Self, CryptoError> {
        let bytes = decode_fixed::<32>(text, "public key")?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes).map(Self).map_err(|_| CryptoError::InvalidPublicKey)
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// Verifies a hex signature over `message` (strict: no malleable or small-order forms).
    pub fn verify(&self, message: &[u8], signature: &SignatureHex) -> Result<(), CryptoError> {
        let bytes = decode_fixed::<64>(&signature.0, "signature")?;
        let signature = ed25519_dalek::Signature::from_bytes(&bytes);
        self.0.verify_strict(message, &signature).map_err(|_| CryptoError::BadSignature)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0.to_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

/// A signature as carried in requests and transactions: hex text, checked when verified so a
/// malformed one yields a precise error at the point of use.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, example = "64-byte ed25519 signature as 128 lowercase hex characters")]
pub struct SignatureHex(pub String);

impl SignatureHex {
    /// Checks the form (hex, 64 bytes) without a key.
    pub fn check_form(&self) -> Result<(), CryptoError> {
        decode_fixed::<64>(&self.0, "signature").map(|_| ())
    }
}

impl fmt::Debug for SignatureHex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignatureHex({})", self.0)
    }
}

/// Decodes exactly `N` bytes of lowercase hex: the one accepted form, so a key or signature
/// never has two encodings (and a transaction never two hashes).
fn decode_fixed<const N: usize>(text: &str, what: &'static str) -> Result<[u8; N], CryptoError> {
    if !text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(CryptoError::NotHex { what });
    }
    let bytes = hex::decode(text).map_err(|_| CryptoError::NotHex { what })?;
    let actual = bytes.len();
    bytes.try_into().map_err(|_| CryptoError::WrongLength { what, expected: N, actual })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_message_and_key() {
        let key = SigningKey::demo("a");
        let sig = key.sign(b"hello");
        key.public_key().verify(b"hello", &sig).unwrap();
        assert_eq!(key.public_key().verify(b"hellO", &sig), Err(CryptoError::BadSignature));
        let other = SigningKey::demo("b").public_key();
        assert_eq!(other.verify(b"hello", &sig), Err(CryptoError::BadSignature));
    }

    #[test]
    fn malformed_signatures_and_keys_get_precise_errors() {
        let key = SigningKey::demo("a").public_key();
        let not_hex = SignatureHex("zz".repeat(64));
        assert_eq!(key.verify(b"m", &not_hex), Err(CryptoError::NotHex { what: "signature" }));
        let short = SignatureHex("ab".repeat(10));
        assert_eq!(
            key.verify(b"m", &short),
            Err(CryptoError::WrongLength { what: "signature", expected: 64, actual: 10 })
        );
        assert!(PublicKey::from_hex("00").is_err());
        // One form only: upper-case hex of a valid key and signature is refused.
        let signer = SigningKey::demo("a");
        let upper = SignatureHex(signer.sign(b"m").0.to_uppercase());
        assert_eq!(key.verify(b"m", &upper), Err(CryptoError::NotHex { what: "signature" }));
        assert!(PublicKey::from_hex(&key.to_string().to_uppercase()).is_err());
    }

    #[test]
    fn demo_keys_are_deterministic() {
        assert_eq!(SigningKey::demo("x").public_key(), SigningKey::demo("x").public_key());
        assert_ne!(SigningKey::demo("x").public_key(), SigningKey::demo("y").public_key());
    }
}
