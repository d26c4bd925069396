//! The escrow records kept in replicated state and the request bodies of each step.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A buyer's money, in cents; never negative.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub balance: u64,
}

/// A seller known to the service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Seller {
    pub id: String,
    pub name: String,
}

/// The genesis `app_state.service` of the escrow service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferenceData {
    #[serde(default)]
    pub accounts: Vec<Account>,
    #[serde(default)]
    pub sellers: Vec<Seller>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ListingStatus {
    /// Listed in a seller session that is not committed yet: nobody can reserve it.
    Pending,
    /// Committed on L1: open for a buyer to reserve.
    Listed,
    /// Held by an open buyer session.
    Reserved,
    /// Bought: the buyer session committed.
    Sold,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Listing {
    pub listing_id: String,
    pub seller_id: String,
    pub title: String,
    /// In cents.
    pub price: u64,
    pub status: ListingStatus,
    /// The buyer session holding it (reserved) or that bought it (sold).
    pub buyer_session: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    /// A seller lists items.
    Seller,
    /// A buyer reserves one item, pays for it from their balance and confirms.
    Buyer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    Open,
    Committing,
    Committed,
    Rejected,
    Aborted,
}

/// A session as the service stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EscrowSession {
    pub session_id: String,
    pub kind: SessionKind,
    pub owner: String,
    pub status: SessionStatus,
    /// Seller sessions: the listings made. Buyer sessions: the listing reserved.
    pub listings: Vec<String>,
    /// Buyer sessions: the amount paid into escrow (taken from the buyer's balance).
    pub paid: u64,
    pub confirmed: bool,
}

impl EscrowSession {
    /// The step this session accepts next.
    pub fn expected_step(&self) -> &'static str {
        if self.status != SessionStatus::Open {
            return "none";
        }
        match (self.kind, self.listings.is_empty(), self.paid > 0, self.confirmed) {
            (SessionKind::Seller, true, ..) => "list_item",
            (SessionKind::Seller, false, ..) => "list_item or commit",
            (SessionKind::Buyer, true, ..) => "reserve",
            (SessionKind::Buyer, false, false, _) => "pay",
            (SessionKind::Buyer, false, true, false) => "confirm",
            (SessionKind::Buyer, false, true, true) => "commit",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartSession {
    pub kind: SessionKind,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListItem {
    pub listing_id: String,
    pub title: String,
    /// In cents, at least 1.
    pub price: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reserve {
    pub listing_id: String,
}

/// A step without a body.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Empty {}
