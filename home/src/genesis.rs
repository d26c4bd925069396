//! `config/genesis.json` for CometBFT v0.38 and its hash.
//!
//! The document is serialized by serde_json from structs whose field order
//! mirrors CometBFT's `types.GenesisDoc`, indented with two spaces like
//! `cometbft init`, so the same spec always yields the same bytes. As in
//! CometBFT's amino-JSON, int64/uint64 fields (heights, powers, byte limits,
//! the evidence max age in nanoseconds) are JSON strings.
//!
//! `genesis_time` is an input: it is the chain's identity, so it must never
//! come from the clock of whoever renders the file.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::keys::{PublicKey, TypedKey};
use crate::HomeError;

/// CometBFT's `MaxChainIDLen`.
const MAX_CHAIN_ID_LEN: usize = 50;
/// CometBFT's `MaxBlockSizeBytes` (100 MiB).
const MAX_BLOCK_SIZE_BYTES: i64 = 104_857_600;
/// CometBFT's `MaxTotalVotingPower` (`math.MaxInt64 / 8`).
const MAX_TOTAL_VOTING_POWER: i64 = i64::MAX / 8;

/// Consensus parameters written into the genesis.
///
/// Defaults: blocks up to 4 MiB with no gas limit, CometBFT's evidence
/// defaults, ed25519 validators only, vote extensions disabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsensusParams {
    pub block_max_bytes: i64,
    /// -1 means unlimited.
    pub block_max_gas: i64,
    pub evidence_max_age_num_blocks: i64,
    pub evidence_max_age: Duration,
    pub evidence_max_bytes: i64,
    pub app_version: u64,
    /// 0 disables vote extensions.
    pub vote_extensions_enable_height: i64,
}

impl Default for ConsensusParams {
    fn default() -> Self {
        Self {
            block_max_bytes: 4 * 1024 * 1024,
            block_max_gas: -1,
            evidence_max_age_num_blocks: 100_000,
            evidence_max_age: Duration::from_secs(48 * 3600),
            evidence_max_bytes: 1_048_576,
            app_version: 0,
            vote_extensions_enable_height: 0,
        }
    }
}

impl ConsensusParams {
    /// The checks of CometBFT's `ConsensusParams.ValidateBasic`.
    fn validate(&self) -> Result<(), HomeError> {
        let invalid = |reason: String| Err(HomeError::InvalidGenesis(reason));
        if self.block_max_bytes == 0 || self.block_max_bytes < -1 {
            return invalid(format!("block max_bytes must be -1 or positive, got {}", self.block_max_bytes));
        }
        if self.block_max_bytes > MAX_BLOCK_SIZE_BYTES {
            return invalid(format!("block max_bytes {} exceeds {MAX_BLOCK_SIZE_BYTES}", self.block_max_bytes));
        }
        if self.block_max_gas < -1 {
            return invalid(format!("block max_gas must be >= -1, got {}", self.block_max_gas));
        }
        if self.evidence_max_age_num_blocks <= 0 {
            return invalid("evidence max_age_num_blocks must be positive".to_owned());
        }
        if self.evidence_max_age.is_zero() {
            return invalid("evidence max_age_duration must be positive".to_owned());
        }
        let block_limit = if self.block_max_bytes == -1 { MAX_BLOCK_SIZE_BYTES } else { self.block_max_bytes };
        if self.evidence_max_bytes < 0 || self.evidence_max_bytes > block_limit {
            return invalid(format!(
                "evidence max_bytes must be within 0..={block_limit}, got {}",
                self.evidence_max_bytes
            ));
        }
        if self.vote_extensions_enable_height < 0 {
            return invalid("vote_extensions_enable_height must be >= 0".to_owned());
        }
        Ok(())
    }

    fn to_json(&self) -> Result<ConsensusParamsJson, HomeError> {
        let max_age_nanos = i64::try_from(self.evidence_max_age.as_nanos()).map_err(|_| {
            HomeError::InvalidGenesis("evidence max_age_duration overflows int64 nanoseconds".to_owned())
        })?;
        Ok(ConsensusParamsJson {
            block: BlockParamsJson {
                max_bytes: self.block_max_bytes.to_string(),
                max_gas: self.block_max_gas.to_string(),
            },
            evidence: EvidenceParamsJson {
                max_age_num_blocks: self.evidence_max_age_num_blocks.to_string(),
                max_age_duration: max_age_nanos.to_string(),
                max_bytes: self.evidence_max_bytes.to_string(),
            },
            validator: ValidatorParamsJson { pub_key_types: vec!["ed25519"] },
            version: VersionParamsJson { app: self.app_version.to_string() },
            abci: AbciParamsJson { vote_extensions_enable_height: self.vote_extensions_enable_height.to_string() },
        })
    }
}

/// One member of the initial validator set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenesisValidator {
    /// Informational; CometBFT shows it but does not use it.
    pub name: String,
    pub pub_key: PublicKey,
    pub power: i64,
}

/// Inputs of a `genesis.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct GenesisSpec {
    pub chain_id: String,
    /// RFC 3339 timestamp, e.g. `2025-01-01T00:00:00Z`. Fixed by the caller.
    pub genesis_time: String,
    pub consensus_params: ConsensusParams,
    /// In genesis order (CometBFT sorts the set by power, then address).
    pub validators: Vec<GenesisValidator>,
    /// Handed to the application in `InitChain` (object keys sorted);
    /// `null` omits it.
    pub app_state: serde_json::Value,
}

impl GenesisSpec {
    /// A spec with default consensus parameters.
    pub fn new(
        chain_id: impl Into<String>,
        genesis_time: impl Into<String>,
        validators: Vec<GenesisValidator>,
        app_state: serde_json::Value,
    ) -> Self {
        Self {
            chain_id: chain_id.into(),
            genesis_time: genesis_time.into(),
            consensus_params: ConsensusParams::default(),
            validators,
            app_state,
        }
    }

    /// Checks what CometBFT checks when loading a genesis, so that a bad spec
    /// fails here rather than at node start.
    fn validate(&self) -> Result<(), HomeError> {
        let invalid = |reason: String| Err(HomeError::InvalidGenesis(reason));
        if self.chain_id.is_empty() || self.chain_id.len() > MAX_CHAIN_ID_LEN {
            return invalid(format!("chain_id must be 1..={MAX_CHAIN_ID_LEN} bytes, got {:?}", self.chain_id));
        }
        if !is_rfc3339(&self.genesis_time) {
            return invalid(format!(
                "genesis_time {:?} is not an RFC 3339 timestamp like 2025-01-01T00:00:00Z",
                self.genesis_time
            ));
        }
        self.consensus_params.validate()?;
        if self.validators.is_empty() {
            return invalid("at least one validator is required".to_owned());
        }
        let mut seen = BTreeSet::new();
        let mut total_power: i64 = 0;
        for validator in &self.validators {
            if validator.power <= 0 {
                return invalid(format!(
                    "validator {:?} has power {}, must be positive",
                    validator.name, validator.power
                ));
            }
            if !seen.insert(validator.pub_key) {
                return invalid(format!(
                    "validator {:?} repeats public key {}",
                    validator.name,
                    validator.pub_key.to_base64()
                ));
            }
            total_power =
                total_power.checked_add(validator.power).filter(|total| *total <= MAX_TOTAL_VOTING_POWER).ok_or_else(
                    || HomeError::InvalidGenesis(format!("total voting power exceeds {MAX_TOTAL_VOTING_POWER}")),
                )?;
        }
        Ok(())
    }

    /// Renders `config/genesis.json` (no trailing newline, like CometBFT).
    pub fn to_json(&self) -> Result<String, HomeError> {
        self.validate()?;
        let doc = GenesisDocJson {
            genesis_time: &self.genesis_time,
            chain_id: &self.chain_id,
            initial_height: "1",
            consensus_params: self.consensus_params.to_json()?,
            validators: self
                .validators
                .iter()
                .map(|validator| GenesisValidatorJson {
                    address: validator.pub_key.validator_address(),
                    pub_key: validator.pub_key.typed_json(),
                    power: validator.power.to_string(),
                    name: &validator.name,
                })
                .collect(),
            app_hash: "",
            app_state: SortedKeys(&self.app_state),
        };
        serde_json::to_string_pretty(&doc).map_err(|source| HomeError::Json { what: "genesis.json", source })
    }
}

/// Lowercase hex SHA-256 of the exact `genesis.json` bytes, for the
/// operator's status.
///
/// CometBFT itself does not compare this: on first start it copies the
/// genesis into its state database and ignores `genesis.json` afterwards.
pub fn genesis_hash(genesis_json: &str) -> String {
    hex::encode(Sha256::digest(genesis_json.as_bytes()))
}

/// Strict RFC 3339 shape as Go's `time.Time` JSON decoding accepts it:
/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
fn is_rfc3339(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = text.get(range)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return false;
    }
    let (Some(_year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) =
        (digits(0..4), digits(5..7), digits(8..10), digits(11..13), digits(14..16), digits(17..19))
    else {
        return false;
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 59 {
        return false;
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let len = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if !(1..=9).contains(&len) {
            return false;
        }
        rest = &fraction[len..];
    }
    match rest.as_bytes() {
        [b'Z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit())
                && (*h1 - b'0') * 10 + (*h2 - b'0') <= 23
                && (*m1 - b'0') * 10 + (*m2 - b'0') <= 59
        }
        _ => false,
    }
}

// JSON shapes, field order as in CometBFT's types.GenesisDoc.

#[derive(Serialize)]
struct GenesisDocJson<'a> {
    genesis_time: &'a str,
    chain_id: &'a str,
    initial_height: &'static str,
    consensus_params: ConsensusParamsJson,
    validators: Vec<GenesisValidatorJson<'a>>,
    app_hash: &'static str,
    #[serde(skip_serializing_if = "SortedKeys::is_null")]
    app_state: SortedKeys<'a>,
}

/// Serializes a JSON value with object keys sorted at every level.
///
/// serde_json's map order depends on whether any crate in the build enables
/// its `preserve_order` feature; sorting here keeps the genesis bytes (and
/// hash) identical between the devnet and the operator binaries.
struct SortedKeys<'a>(&'a serde_json::Value);

impl SortedKeys<'_> {
    fn is_null(&self) -> bool {
        self.0.is_null()
    }
}

impl Serialize for SortedKeys<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap as _, SerializeSeq as _};
        match self.0 {
            serde_json::Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by_key(|(key, _)| *key);
                let mut out = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    out.serialize_entry(key, &SortedKeys(value))?;
                }
                out.end()
            }
            serde_json::Value::Array(items) => {
                let mut out = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    out.serialize_element(&SortedKeys(item))?;
                }
                out.end()
            }
            scalar => scalar.serialize(serializer),
        }
    }
}

#[derive(Serialize)]
struct GenesisValidatorJson<'a> {
    address: String,
    pub_key: TypedKey,
    power: String,
    name: &'a str,
}

#[derive(Serialize)]
struct ConsensusParamsJson {
    block: BlockParamsJson,
    evidence: EvidenceParamsJson,
    validator: ValidatorParamsJson,
    version: VersionParamsJson,
    abci: AbciParamsJson,
}

#[derive(Serialize)]
struct BlockParamsJson {
    max_bytes: String,
    max_gas: String,
}

#[derive(Serialize)]
struct EvidenceParamsJson {
    max_age_num_blocks: String,
    max_age_duration: String,
    max_bytes: String,
}

#[derive(Serialize)]
struct ValidatorParamsJson {
    pub_key_types: Vec<&'static str>,
}

#[derive(Serialize)]
struct VersionParamsJson {
    app: String,
}

#[derive(Serialize)]
struct AbciParamsJson {
    vote_extensions_enable_height: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ValidatorKey;

    fn validator(seed: u8, name: &str) -> GenesisValidator {
        GenesisValidator { name: name.to_owned(), pub_key: ValidatorKey::from_seed([seed; 32]).public_key(), power: 10 }
    }

    fn two_validator_spec() -> GenesisSpec {
        GenesisSpec::new(
            "bftws-l1",
            "2025-01-01T00:00:00Z",
            vec![validator(1, "l1-node0"), validator(2, "l1-node1")],
            serde_json::json!({"layer": "l1", "accounts": [{"id": "alice", "balance": 100}]}),
        )
    }

    #[test]
    fn genesis_json_snapshot() {
        let json = two_validator_spec().to_json().unwrap();
        insta::assert_snapshot!(json);
        assert_eq!(genesis_hash(&json), hex::encode(Sha256::digest(json.as_bytes())));
    }

    #[test]
    fn genesis_is_byte_stable() {
        let first = two_validator_spec().to_json().unwrap();
        let second = two_validator_spec().to_json().unwrap();
        assert_eq!(first, second);
        assert_eq!(genesis_hash(&first), genesis_hash(&second));
        let mut other_time = two_validator_spec();
        other_time.genesis_time = "2025-01-01T00:00:01Z".to_owned();
        assert_ne!(genesis_hash(&other_time.to_json().unwrap()), genesis_hash(&first));
    }

    #[test]
    fn null_app_state_is_omitted() {
        let mut spec = two_validator_spec();
        spec.app_state = serde_json::Value::Null;
        assert!(!spec.to_json().unwrap().contains("app_state"));
    }

    #[test]
    fn invalid_specs_are_errors() {
        type Mutation = Box<dyn Fn(&mut GenesisSpec)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("empty chain id", Box::new(|s| s.chain_id.clear())),
            ("long chain id", Box::new(|s| s.chain_id = "x".repeat(51))),
            ("clock-ish time", Box::new(|s| s.genesis_time = "now".to_owned())),
            ("no zone", Box::new(|s| s.genesis_time = "2025-01-01T00:00:00".to_owned())),
            ("month 13", Box::new(|s| s.genesis_time = "2025-13-01T00:00:00Z".to_owned())),
            ("no validators", Box::new(|s| s.validators.clear())),
            ("zero power", Box::new(|s| s.validators[0].power = 0)),
            ("duplicate key", Box::new(|s| s.validators[1].pub_key = s.validators[0].pub_key)),
            ("overflow power", Box::new(|s| s.validators[0].power = i64::MAX)),
            ("zero max bytes", Box::new(|s| s.consensus_params.block_max_bytes = 0)),
            ("evidence over block", Box::new(|s| s.consensus_params.evidence_max_bytes = 5 * 1024 * 1024)),
        ];
        for (name, mutate) in cases {
            let mut spec = two_validator_spec();
            mutate(&mut spec);
            assert!(matches!(spec.to_json(), Err(HomeError::InvalidGenesis(_))), "{name} should be rejected");
        }
    }

    #[test]
    fn rfc3339_shapes() {
        for good in [
            "2025-01-01T00:00:00Z",
            "2025-06-30T23:59:59.123456789Z",
            "2025-06-30T23:59:59+02:00",
            "2025-06-30T23:59:59.5-07:30",
        ] {
            assert!(is_rfc3339(good), "{good}");
        }
        for bad in [
            "",
            "2025-01-01",
            "2025-01-01 00:00:00Z",
            "2025-01-01T00:00:00.Z",
            "2025-01-01T00:00:00+0200",
            "2025-01-01T24:00:00Z",
            "2025-01-01T00:00:00Zjunk",
        ] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
    }
}
