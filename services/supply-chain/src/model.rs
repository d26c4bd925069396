//! The supply-chain records kept in replicated state and the request bodies of each step.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use bftws_framework::crypto::{PublicKey, SignatureHex};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    /// A supplier registers signed packages.
    Supplier,
    /// A warehouse operator scans, validates, inspects and labels one package.
    Warehouse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    Open,
    /// Frozen: its bundle is on its way to L1.
    Committing,
    Committed,
    /// L1 refused the bundle; the session's claims were released.
    Rejected,
    Aborted,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Open => "open",
            SessionStatus::Committing => "committing",
            SessionStatus::Committed => "committed",
            SessionStatus::Rejected => "rejected",
            SessionStatus::Aborted => "aborted",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QcRecord {
    pub passed: bool,
    pub issues: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Standard,
    Express,
    Overnight,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LabelRecord {
    pub label_id: String,
    pub destination: String,
    pub priority: Priority,
    pub courier_id: String,
}

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SessionRecord {
    pub session_id: String,
    pub kind: SessionKind,
    pub owner: String,
    pub status: SessionStatus,
    /// Supplier sessions: the packages registered. Warehouse sessions: the package scanned.
    pub packages: Vec<String>,
    pub validated: bool,
    pub qc: Option<QcRecord>,
    pub label: Option<LabelRecord>,
    pub started_at_ms: u64,
    pub updated_at_ms: u64,
}

impl SessionRecord {
    /// The step this session accepts next (what a 409 reports as `expected_step`).
    pub fn expected_step(&self) -> &'static str {
        if self.status != SessionStatus::Open {
            return "none";
        }
        match self.kind {
            SessionKind::Supplier if self.packages.is_empty() => "register_package",
            SessionKind::Supplier => "register_package or commit",
            SessionKind::Warehouse => match (&self.packages.first(), self.validated, &self.qc, &self.label) {
                (None, ..) => "scan",
                (Some(_), false, ..) => "validate",
                (Some(_), true, None, _) => "qc",
                (Some(_), true, Some(qc), _) if !qc.passed => "abort",
                (Some(_), true, Some(_), None) => "label",
                (Some(_), true, Some(_), Some(_)) => "commit",
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PackageStatus {
    /// Registered in a supplier session that is not committed yet.
    Pending,
    /// Committed on L1 and available to warehouse sessions.
    Committed,
    /// Labelled by a committed warehouse session.
    Processed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub sku: String,
    pub qty: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PackageRecord {
    pub package_id: String,
    pub supplier_id: String,
    pub items: Vec<Item>,
    pub signature: SignatureHex,
    pub status: PackageStatus,
    pub registered_in: String,
    /// The open or committed warehouse session that scanned it.
    pub claimed_by: Option<String>,
    pub label: Option<LabelRecord>,
}

/// Reference data: a supplier and the key its manifests are signed with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Supplier {
    pub id: String,
    pub name: String,
    #[schema(value_type = String)]
    pub public_key: PublicKey,
}

/// Reference data: a warehouse operator or a courier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Party {
    pub id: String,
    pub name: String,
}

/// The service part of the genesis `app_state`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceData {
    #[serde(default)]
    pub suppliers: Vec<Supplier>,
    #[serde(default)]
    pub operators: Vec<Party>,
    #[serde(default)]
    pub couriers: Vec<Party>,
}

// Request bodies.

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartSession {
    pub kind: SessionKind,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterPackage {
    pub package_id: String,
    pub items: Vec<Item>,
    /// The supplier's ed25519 signature over the canonical manifest.
    pub signature: SignatureHex,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Scan {
    pub package_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Validate {
    /// The supplier signature presented with the package.
    pub signature: SignatureHex,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QualityCheck {
    pub passed: bool,
    #[serde(default)]
    pub issues: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Label {
    pub destination: String,
    pub priority: Priority,
    pub courier_id: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Empty {}
