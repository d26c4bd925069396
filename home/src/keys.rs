//! Ed25519 node and validator keys and the CometBFT v0.38 files that hold them.
//!
//! Formats follow CometBFT's own code (`p2p/key.go`, `privval/file.go`,
//! `crypto/ed25519`):
//! - the private key is the 64-byte Go ed25519 key, `seed ‖ public key`;
//! - the address is the first 20 bytes of SHA-256(public key): lowercase hex
//!   for a p2p node id, UPPERCASE hex for a validator address;
//! - `node_key.json` is compact JSON, `priv_validator_key.json` and
//!   `priv_validator_state.json` are indented with two spaces, and int64
//!   fields (the state's `height`) are JSON strings (amino-JSON convention).
//!
//! A node needs both keys: CometBFT loads `priv_validator_key.json` even on
//! full nodes, which simply are not in the genesis validator set.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::HomeError;

/// Length of an ed25519 seed (the secret half of a CometBFT private key).
pub const SEED_LEN: usize = 32;

/// Amino type names CometBFT uses in its JSON files.
const PRIV_KEY_TYPE: &str = "tendermint/PrivKeyEd25519";
const PUB_KEY_TYPE: &str = "tendermint/PubKeyEd25519";

/// Length of a CometBFT address (`crypto.AddressSize`).
const ADDRESS_LEN: usize = 20;

/// An ed25519 public key as CometBFT sees it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Accepts only bytes that decode to a valid ed25519 point, because
    /// CometBFT would otherwise reject the genesis at start.
    pub fn from_bytes(bytes: [u8; 32]) -> Result<Self, HomeError> {
        VerifyingKey::from_bytes(&bytes)
            .map_err(|err| HomeError::InvalidKey { what: "ed25519 public key", reason: err.to_string() })?;
        Ok(Self(bytes))
    }

    /// Parses the `value` of a `tendermint/PubKeyEd25519` JSON object (the
    /// output of `cometbft show-validator`).
    pub fn from_base64(value: &str) -> Result<Self, HomeError> {
        let bytes = BASE64.decode(value).map_err(|err| HomeError::InvalidKey {
            what: "ed25519 public key",
            reason: format!("not base64: {err}"),
        })?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|bytes: Vec<u8>| HomeError::InvalidKey {
            what: "ed25519 public key",
            reason: format!("expected 32 bytes, got {}", bytes.len()),
        })?;
        Self::from_bytes(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0)
    }

    /// CometBFT p2p node id: lowercase hex of SHA-256(pubkey)[..20].
    pub fn node_id(&self) -> String {
        hex::encode(self.address_bytes())
    }

    /// CometBFT validator address: UPPERCASE hex of SHA-256(pubkey)[..20].
    pub fn validator_address(&self) -> String {
        hex::encode_upper(self.address_bytes())
    }

    fn address_bytes(&self) -> [u8; ADDRESS_LEN] {
        let digest = Sha256::digest(self.0);
        let mut address = [0u8; ADDRESS_LEN];
        address.copy_from_slice(&digest[..ADDRESS_LEN]);
        address
    }

    /// The `{"type": "tendermint/PubKeyEd25519", "value": ...}` object.
    pub(crate) fn typed_json(&self) -> TypedKey {
        TypedKey { key_type: PUB_KEY_TYPE.to_owned(), value: self.to_base64() }
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.to_base64())
    }
}

/// Amino-JSON `{"type": ..., "value": ...}` wrapper used for every key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TypedKey {
    #[serde(rename = "type")]
    pub(crate) key_type: String,
    pub(crate) value: String,
}

/// Field order matches CometBFT's `p2p.NodeKey`.
#[derive(Serialize, Deserialize)]
struct NodeKeyFile {
    priv_key: TypedKey,
}

/// Field order matches CometBFT's `privval.FilePVKey`.
#[derive(Serialize, Deserialize)]
struct PrivValidatorKeyFile {
    address: String,
    pub_key: TypedKey,
    priv_key: TypedKey,
}

/// Field order and types match CometBFT's `privval.FilePVLastSignState`
/// (int64 height as a string; signature fields are omitted when empty).
#[derive(Serialize)]
struct PrivValidatorStateFile {
    height: String,
    round: i32,
    step: i8,
}

/// Contents of a fresh `data/priv_validator_state.json`:
/// `{"height":"0","round":0,"step":0}`, indented as CometBFT writes it.
///
/// This file is double-sign protection: it must only ever be created, never
/// overwritten (see [`crate::write_home`]).
pub fn initial_priv_validator_state_json() -> String {
    let state = PrivValidatorStateFile { height: "0".to_owned(), round: 0, step: 0 };
    serde_json::to_string_pretty(&state).expect("a struct of strings and integers serializes")
}

/// An ed25519 key pair built from a 32-byte seed; shared by both key kinds.
#[derive(Clone)]
struct KeyPair {
    signing: SigningKey,
}

impl KeyPair {
    fn from_seed(seed: [u8; SEED_LEN]) -> Self {
        Self { signing: SigningKey::from_bytes(&seed) }
    }

    fn generate(kind: &'static str) -> Result<Self, HomeError> {
        let mut seed = [0u8; SEED_LEN];
        getrandom::getrandom(&mut seed).map_err(|err| HomeError::Randomness(format!("{kind}: {err}")))?;
        Ok(Self::from_seed(seed))
    }

    fn from_seed_hex(kind: &'static str, seed_hex: &str) -> Result<Self, HomeError> {
        let bytes = hex::decode(seed_hex.trim())
            .map_err(|err| HomeError::InvalidSeed { key: kind, reason: format!("not hex: {err}") })?;
        let seed: [u8; SEED_LEN] = bytes.try_into().map_err(|bytes: Vec<u8>| HomeError::InvalidSeed {
            key: kind,
            reason: format!("expected {SEED_LEN} bytes, got {}", bytes.len()),
        })?;
        Ok(Self::from_seed(seed))
    }

    fn seed(&self) -> [u8; SEED_LEN] {
        self.signing.to_bytes()
    }

    fn public_key(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key().to_bytes())
    }

    /// Go's 64-byte ed25519 private key: seed ‖ public key.
    fn priv_key_json(&self) -> TypedKey {
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(&self.seed());
        bytes[32..].copy_from_slice(self.public_key().as_bytes());
        TypedKey { key_type: PRIV_KEY_TYPE.to_owned(), value: BASE64.encode(bytes) }
    }

    /// Inverse of [`Self::priv_key_json`]; rejects a public half that does
    /// not belong to the seed, since CometBFT would silently use the seed.
    fn from_priv_key_json(what: &'static str, key: &TypedKey) -> Result<Self, HomeError> {
        let invalid = |reason: String| HomeError::InvalidKey { what, reason };
        if key.key_type != PRIV_KEY_TYPE {
            return Err(invalid(format!("priv_key type is {:?}, expected {PRIV_KEY_TYPE:?}", key.key_type)));
        }
        let bytes = BASE64.decode(&key.value).map_err(|err| invalid(format!("priv_key value is not base64: {err}")))?;
        if bytes.len() != 64 {
            return Err(invalid(format!("priv_key value has {} bytes, expected 64", bytes.len())));
        }
        let mut seed = [0u8; SEED_LEN];
        seed.copy_from_slice(&bytes[..32]);
        let pair = Self::from_seed(seed);
        if pair.public_key().as_bytes()[..] != bytes[32..] {
            return Err(invalid("the public half of priv_key does not match its seed".to_owned()));
        }
        Ok(pair)
    }
}

/// Defines a key newtype with the constructors shared by both key kinds, so
/// a node key can never be passed where a validator key is expected.
macro_rules! key_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(KeyPair);

        impl $name {
            /// Deterministic key from a 32-byte ed25519 seed.
            pub fn from_seed(seed: [u8; SEED_LEN]) -> Self {
                Self(KeyPair::from_seed(seed))
            }

            /// Fresh random key from the operating system's RNG.
            pub fn generate() -> Result<Self, HomeError> {
                KeyPair::generate($kind).map(Self)
            }

            /// Key from a 64-character hex seed (surrounding whitespace is ignored).
            pub fn from_seed_hex(seed_hex: &str) -> Result<Self, HomeError> {
                KeyPair::from_seed_hex($kind, seed_hex).map(Self)
            }

            /// The seed as lowercase hex; this is the secret to store.
            pub fn seed_hex(&self) -> String {
                hex::encode(self.0.seed())
            }

            pub fn public_key(&self) -> PublicKey {
                self.0.public_key()
            }
        }

        impl std::fmt::Debug for $name {
            // Never print the seed.
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_tuple(stringify!($name))
                    .field(&self.public_key())
                    .finish()
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.0.seed() == other.0.seed()
            }
        }

        impl Eq for $name {}
    };
}

key_type!(
    /// The p2p identity of a node (`config/node_key.json`).
    NodeKey,
    "node key"
);

key_type!(
    /// The consensus signing key of a node (`config/priv_validator_key.json`).
    ValidatorKey,
    "validator key"
);

impl NodeKey {
    /// CometBFT node id: lowercase hex of SHA-256(pubkey)[..20].
    pub fn node_id(&self) -> String {
        self.public_key().node_id()
    }

    /// Contents of `config/node_key.json` (compact, as CometBFT writes it).
    pub fn node_key_json(&self) -> String {
        let file = NodeKeyFile { priv_key: self.0.priv_key_json() };
        serde_json::to_string(&file).expect("a struct of strings serializes")
    }

    /// Parses a `config/node_key.json`, e.g. one written by `cometbft init`.
    pub fn from_node_key_json(json: &str) -> Result<Self, HomeError> {
        let file: NodeKeyFile = serde_json::from_str(json)
            .map_err(|err| HomeError::InvalidKey { what: "node_key.json", reason: err.to_string() })?;
        KeyPair::from_priv_key_json("node_key.json", &file.priv_key).map(Self)
    }
}

impl ValidatorKey {
    /// CometBFT validator address: UPPERCASE hex of SHA-256(pubkey)[..20].
    pub fn address(&self) -> String {
        self.public_key().validator_address()
    }

    /// Contents of `config/priv_validator_key.json` (two-space indent, as
    /// CometBFT writes it).
    pub fn priv_validator_key_json(&self) -> String {
        let file = PrivValidatorKeyFile {
            address: self.address(),
            pub_key: self.public_key().typed_json(),
            priv_key: self.0.priv_key_json(),
        };
        serde_json::to_string_pretty(&file).expect("a struct of strings serializes")
    }

    /// Parses a `config/priv_validator_key.json` and checks that its address
    /// and public key agree with its private key.
    pub fn from_priv_validator_key_json(json: &str) -> Result<Self, HomeError> {
        const WHAT: &str = "priv_validator_key.json";
        let invalid = |reason: String| HomeError::InvalidKey { what: WHAT, reason };
        let file: PrivValidatorKeyFile = serde_json::from_str(json).map_err(|err| invalid(err.to_string()))?;
        let key = Self(KeyPair::from_priv_key_json(WHAT, &file.priv_key)?);
        if file.pub_key != key.public_key().typed_json() {
            return Err(invalid("pub_key does not match priv_key".to_owned()));
        }
        if file.address != key.address() {
            return Err(invalid(format!(
                "address {} does not match priv_key (expected {})",
                file.address,
                key.address()
            )));
        }
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Files written by the real `cometbft init` (v0.38.26); the seeds are the
    // first 32 bytes of their private keys. `cometbft show-node-id` on that
    // home printed INIT_NODE_ID.
    const INIT_NODE_KEY_JSON: &str = r#"{"priv_key":{"type":"tendermint/PrivKeyEd25519","value":"gIMiXLrG4m7eZ4FnfoomhBH+PoTCG+RuYjiFoxJxIzKlQuu3wBM9obbs5LKOXkIBGJjWZZXTMY6pEd6gktGc5A=="}}"#;
    const INIT_NODE_SEED: &str = "8083225cbac6e26ede6781677e8a268411fe3e84c21be46e623885a312712332";
    const INIT_NODE_ID: &str = "44660250b7f2524da9de7b8e766cb92b6aeaa587";

    const INIT_PRIV_VALIDATOR_KEY_JSON: &str = r#"{
  "address": "D1343A4C008D7C764BA82FFDFA07469559F1963C",
  "pub_key": {
    "type": "tendermint/PubKeyEd25519",
    "value": "nT3jWFzUHo1cn1SF5/c6g/n65Azwxvq4ufjrp3m1/OQ="
  },
  "priv_key": {
    "type": "tendermint/PrivKeyEd25519",
    "value": "Cayv7gMzYQs6+w33f4MUIRi8jJ2W7C9F4P0CEtN4L4WdPeNYXNQejVyfVIXn9zqD+frkDPDG+ri5+OunebX85A=="
  }
}"#;
    const INIT_VALIDATOR_SEED: &str = "09acafee0333610b3afb0df77f83142118bc8c9d96ec2f45e0fd0212d3782f85";

    const INIT_PRIV_VALIDATOR_STATE_JSON: &str = "{\n  \"height\": \"0\",\n  \"round\": 0,\n  \"step\": 0\n}";

    #[test]
    fn node_key_matches_cometbft_init_byte_for_byte() {
        let key = NodeKey::from_seed_hex(INIT_NODE_SEED).unwrap();
        assert_eq!(key.node_id(), INIT_NODE_ID);
        assert_eq!(key.node_key_json(), INIT_NODE_KEY_JSON);
    }

    #[test]
    fn validator_key_matches_cometbft_init_byte_for_byte() {
        let key = ValidatorKey::from_seed_hex(INIT_VALIDATOR_SEED).unwrap();
        assert_eq!(key.address(), "D1343A4C008D7C764BA82FFDFA07469559F1963C");
        assert_eq!(key.public_key().to_base64(), "nT3jWFzUHo1cn1SF5/c6g/n65Azwxvq4ufjrp3m1/OQ=");
        assert_eq!(key.priv_validator_key_json(), INIT_PRIV_VALIDATOR_KEY_JSON);
    }

    #[test]
    fn initial_state_matches_cometbft_init() {
        assert_eq!(initial_priv_validator_state_json(), INIT_PRIV_VALIDATOR_STATE_JSON);
    }

    #[test]
    fn node_id_is_lowercase_and_address_uppercase_of_same_hash() {
        let public_key = NodeKey::from_seed([7; 32]).public_key();
        assert_eq!(public_key.node_id().len(), 40);
        assert_eq!(public_key.node_id().to_uppercase(), public_key.validator_address());
        assert!(public_key.node_id().chars().all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()));
    }

    #[test]
    fn key_json_round_trips() {
        let node = NodeKey::from_seed([1; 32]);
        assert_eq!(NodeKey::from_node_key_json(&node.node_key_json()).unwrap(), node);
        let validator = ValidatorKey::from_seed([2; 32]);
        let parsed = ValidatorKey::from_priv_validator_key_json(&validator.priv_validator_key_json()).unwrap();
        assert_eq!(parsed, validator);
        assert_eq!(NodeKey::from_node_key_json(INIT_NODE_KEY_JSON).unwrap().seed_hex(), INIT_NODE_SEED);
        assert_eq!(
            ValidatorKey::from_priv_validator_key_json(INIT_PRIV_VALIDATOR_KEY_JSON).unwrap().seed_hex(),
            INIT_VALIDATOR_SEED
        );
    }

    #[test]
    fn seed_hex_round_trips() {
        let key = ValidatorKey::generate().unwrap();
        assert_eq!(ValidatorKey::from_seed_hex(&key.seed_hex()).unwrap(), key);
        assert_ne!(ValidatorKey::generate().unwrap(), key);
    }

    #[test]
    fn bad_seeds_are_errors_not_panics() {
        for bad in ["", "zz", "00", &"ab".repeat(33)] {
            let err = NodeKey::from_seed_hex(bad).unwrap_err();
            assert!(matches!(err, HomeError::InvalidSeed { key: "node key", .. }), "{err}");
        }
    }

    #[test]
    fn inconsistent_key_files_are_rejected() {
        let other = ValidatorKey::from_seed([3; 32]);
        let tampered_address =
            INIT_PRIV_VALIDATOR_KEY_JSON.replace("D1343A4C008D7C764BA82FFDFA07469559F1963C", &other.address());
        assert!(ValidatorKey::from_priv_validator_key_json(&tampered_address).is_err());
        let tampered_pub = INIT_PRIV_VALIDATOR_KEY_JSON
            .replace("nT3jWFzUHo1cn1SF5/c6g/n65Azwxvq4ufjrp3m1/OQ=", &other.public_key().to_base64());
        assert!(ValidatorKey::from_priv_validator_key_json(&tampered_pub).is_err());
        assert!(NodeKey::from_node_key_json("{}").is_err());
        assert!(
            NodeKey::from_node_key_json(r#"{"priv_key":{"type":"tendermint/PrivKeySecp256k1","value":""}}"#).is_err()
        );
    }

    #[test]
    fn public_key_base64_is_validated() {
        let key = ValidatorKey::from_seed([4; 32]).public_key();
        assert_eq!(PublicKey::from_base64(&key.to_base64()).unwrap(), key);
        assert!(PublicKey::from_base64("not base64!").is_err());
        assert!(PublicKey::from_base64("AAAA").is_err());
    }

    #[test]
    fn debug_never_shows_the_seed() {
        let key = NodeKey::from_seed([5; 32]);
        assert!(!format!("{key:?}").contains(&key.seed_hex()));
    }
}
