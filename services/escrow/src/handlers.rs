//! The replicated handlers of the escrow service: pure functions of (state, request).

use std::collections::BTreeMap;

use bftws_framework::registry::{ids, Actor, AppError, Ctx, Request, Response, ServiceState};
use serde_json::{json, Value};

use crate::{
    keys,
    model::{
        Account, Empty, EscrowSession, ListItem, Listing, ListingStatus, Reserve, SessionKind, SessionStatus,
        StartSession,
    },
    roles,
};

const MAX_TITLE: usize = 100;
/// A price cap that keeps every sum of balances far from overflowing.
const MAX_PRICE: u64 = 1_000_000_000_000;

pub(crate) fn start(ctx: &mut Ctx<'_>, req: &Request) -> Result<Response, AppError> {
    let body: StartSession = req.parse_body()?;
    let (role, registered) = match body.kind {
        SessionKind::Seller => (roles::SELLER, ctx.get_raw(&keys::seller(&req.actor.id))?.is_some()),
        SessionKind::Buyer => (roles::BUYER, ctx.get_raw(&keys::account(&req.actor.id))?.is_some()),
    };
    if !req.actor.role.is(role) {
        return Err(AppError::forbidden(format!("a {:?} session needs the '{role}' role", body.kind)));
    }
    if !registered {
        return Err(AppError::forbidden(format!("'{}' is not a registered {role}", req.actor.id)));
    }
    let session_id = req.session_id.clone().ok_or_else(|| AppError::bad_request("", "start without a session id"))?;
    let session = EscrowSession {
        session_id: session_id.clone(),
        kind: body.kind,
        owner: req.actor.id.clone(),
        status: SessionStatus::Open,
        listings: Vec::new(),
        paid: 0,
        confirmed: false,
    };
    ctx.put(keys::session(&session_id), &session);
    Ok(Response::created(summary(&session)))
}

pub(crate) fn list_item(ctx: &mut Ctx<'_>, req: &Request) -> Result<Response, AppError> {
    let mut session = open_session(ctx, req, SessionKind::Seller, "list_item")?;
    let body: ListItem = req.parse_body()?;
    ids::check("listing_id", &body.listing_id)?;
    if body.title.trim().is_empty() || body.title.chars().count() > MAX_TITLE {
        return Err(AppError::bad_request("title", format!("'title' must be 1-{MAX_TITLE} characters")));
    }
    if body.price == 0 || body.price > MAX_PRICE {
        return Err(AppError::bad_request("price", format!("'price' must be 1-{MAX_PRICE} cents")));
    }
    if ctx.get_raw(&keys::listing(&body.listing_id))?.is_some() {
        return Err(AppError::conflict("listing_exists", format!("listing '{}' already exists", body.listing_id)));
    }
    let listing = Listing {
        listing_id: body.listing_id.clone(),
        seller_id: session.owner.clone(),
        title: body.title,
        price: body.price,
        status: ListingStatus::Pending,
        buyer_session: None,
    };
    session.listings.push(listing.listing_id.clone());
    ctx.put(keys::listing(&listing.listing_id), &listing);
    ctx.put(keys::session(&session.session_id), &session);
    Ok(Response::created(json!({"listing": listing, "next_step": session.expected_step()})))
}

pub(crate) fn reserve(ctx: &mut Ctx<'_>, req: &Request) -> Result<Response, AppError> {
    let mut session = open_session(ctx, req, SessionKind::Buyer, "reserve")?;
    let body: Reserve = req.parse_body()?;
    ids::check("listing_id", &body.listing_id)?;
    let mut listing = listing(ctx, &body.listing_id)?;
    if listing.status != ListingStatus::Listed {
        return Err(AppError::conflict("listing_unavailable", "the listing is not open for reservation")
            .with("listing_id", body.listing_id.as_str())
            .with("listing_status", json!(listing.status)));
    }
    listing.status = ListingStatus::Reserved;
    listing.buyer_session = Some(session.session_id.clone());
    session.listings.push(listing.listing_id.clone());
    ctx.put(keys::listing(&listing.listing_id), &listing);
    ctx.put(keys::session(&session.session_id), &session);
    Ok(Response::ok(json!({"listing": listing, "next_step": session.expected_step()})))
}

pub(crate) fn pay(ctx: &mut Ctx<'_>, req: &Request) -> Result<Response, AppError> {
    let mut session = open_session(ctx, req, SessionKind::Buyer, "pay")?;
    let _: Empty = req.parse_body()?;
    let listing = listing(ctx, reserved(&session)?)?;
    let mut account = account(ctx, &session.owner)?;
    // The balance never goes negative: L1 re-executes this against its own balances, so two
    // sessions spending the same money cannot both commit there.
    let Some(balance) = account.balance.checked_sub(listing.price) else {
        return Err(AppError::conflict("insufficient_funds", "the balance does not cover the price")
            .with("balance", account.balance)
            .with("price", listing.price));
    };
    account.balance = balance;
    session.paid = listing.price;
    ctx.put(keys::account(&account.id), &account);
    ctx.put(keys::session(&session.session_id), &session);
    Ok(Response::ok(json!({"paid": session.paid, "balance": balance, "next_step": session.expected_step()})))
}

pub(crate) fn confirm(ctx: &mut Ctx<'_>, req: &Request) -> Result<Response, AppError> {
    let mut session = open_session(ctx, req, SessionKind::Buyer, "confirm")?;
    let _: Empty = req.parse_body()?;
    session.confirmed = true;
    ctx.put(keys::session(&session.session_id), &session);
    Ok(Response::ok(summary(&session)))
}

pub(crate) fn commit(ctx: &mut Ctx<'_>, req: &Request) -> Result<Response, AppError> {
    let mut session = owned_session(ctx, req)?;
    require_open(&session)?;
    let _: Empty = req.parse_body()?;
    let ready = match session.kind {
        SessionKind::Seller => !session.listings.is_empty(),
        SessionKind::Buyer => session.confirmed,
    };
    if !ready {
        return Err(AppError::wrong_step("commit", session.expected_step()));
    }
    session.status = SessionStatus::Committing;
    ctx.put(keys::session(&session.session_id), &session);
    Ok(Response::ok(summary(&session)))
}

pub(crate) fn abort(ctx: &mut Ctx<'_>, req: &Request) -> Result<Response, AppError> {
    let mut session = owned_session(ctx, req)?;
    require_open(&session)?;
    let _: Empty = req.parse_body()?;
    release(ctx, &session)?;
    session.status = SessionStatus::Aborted;
    ctx.put(keys::session(&session.session_id), &session);
    Ok(Response::ok(summary(&session)))
}

/// What a commit makes final: a seller's listings open for buyers; a buyer's item is sold and
/// the seller is paid from escrow.
pub(crate) fn session_committed(ctx: &mut Ctx<'_>, session_id: &str) -> Result<(), AppError> {
    let mut session = stored_session(ctx, session_id)?;
    for listing_id in &session.listings {
        let mut listing = listing(ctx, listing_id)?;
        match session.kind {
            SessionKind::Seller => listing.status = ListingStatus::Listed,
            SessionKind::Buyer => {
                listing.status = ListingStatus::Sold;
                let mut seller: Account = ctx.get(&keys::account(&listing.seller_id))?.unwrap_or(Account {
                    id: listing.seller_id.clone(),
                    name: listing.seller_id.clone(),
                    balance: 0,
                });
                seller.balance = seller
                    .balance
                    .checked_add(session.paid)
                    .ok_or_else(|| AppError::conflict("balance_overflow", "the seller's balance would overflow"))?;
                ctx.put(keys::account(&seller.id), &seller);
            }
        }
        ctx.put(keys::listing(listing_id), &listing);
    }
    session.status = SessionStatus::Committed;
    ctx.put(keys::session(session_id), &session);
    Ok(())
}

/// L1 refused the session: what it holds goes back.
pub(crate) fn session_rejected(ctx: &mut Ctx<'_>, session_id: &str) -> Result<(), AppError> {
    let mut session = stored_session(ctx, session_id)?;
    release(ctx, &session)?;
    session.status = SessionStatus::Rejected;
    ctx.put(keys::session(session_id), &session);
    Ok(())
}

/// `GET /v1/listings/{id}`: any authenticated caller.
pub(crate) fn read_listing(
    state: &ServiceState<'_>,
    _actor: &Actor,
    params: &BTreeMap<String, String>,
) -> Result<Value, AppError> {
    let id = params.get("id").map(String::as_str).unwrap_or_default();
    ids::check("id", id)?;
    let listing: Listing = state.get(&keys::listing(id))?.ok_or_else(|| AppError::not_found("listing", id))?;
    serde_json::to_value(listing).map_err(|e| AppError::internal(e.to_string()))
}

/// `GET /v1/accounts/{id}`: the account's owner, admins and auditors.
pub(crate) fn read_account(
    state: &ServiceState<'_>,
    actor: &Actor,
    params: &BTreeMap<String, String>,
) -> Result<Value, AppError> {
    let id = params.get("id").map(String::as_str).unwrap_or_default();
    ids::check("id", id)?;
    if actor.id != id && !actor.role.is(roles::ADMIN) && !actor.role.is(roles::AUDITOR) {
        return Err(AppError::forbidden("only the account's owner, admins and auditors may read it"));
    }
    let account: Account = state.get(&keys::account(id))?.ok_or_else(|| AppError::not_found("account", id))?;
    serde_json::to_value(account).map_err(|e| AppError::internal(e.to_string()))
}

/// Undoes what an unfinished session holds: a seller's pending listings go; a buyer's
/// reservation is released and the payment refunded.
fn release(ctx: &mut Ctx<'_>, session: &EscrowSession) -> Result<(), AppError> {
    match session.kind {
        SessionKind::Seller => {
            for listing_id in &session.listings {
                ctx.delete(keys::listing(listing_id));
            }
        }
        SessionKind::Buyer => {
            for listing_id in &session.listings {
                let mut listing = listing(ctx, listing_id)?;
                if listing.buyer_session.as_deref() == Some(session.session_id.as_str()) {
                    listing.status = ListingStatus::Listed;
                    listing.buyer_session = None;
                    ctx.put(keys::listing(listing_id), &listing);
                }
            }
            if session.paid > 0 {
                let mut account = account(ctx, &session.owner)?;
                account.balance = account
                    .balance
                    .checked_add(session.paid)
                    .ok_or_else(|| AppError::conflict("balance_overflow", "the refund would overflow"))?;
                ctx.put(keys::account(&account.id), &account);
            }
        }
    }
    Ok(())
}

fn summary(session: &EscrowSession) -> Value {
    json!({
        "session_id": session.session_id,
        "kind": session.kind,
        "status": session.status,
        "next_step": session.expected_step(),
    })
}

fn stored_session(ctx: &Ctx<'_>, session_id: &str) -> Result<EscrowSession, AppError> {
    ctx.get(&keys::session(session_id))?.ok_or_else(|| AppError::not_found("session", session_id))
}

fn owned_session(ctx: &Ctx<'_>, req: &Request) -> Result<EscrowSession, AppError> {
    let session_id = req.param("id")?;
    ids::check("id", session_id)?;
    let session = stored_session(ctx, session_id)?;
    if session.owner != req.actor.id {
        return Err(AppError::forbidden("only the session's owner may act on it"));
    }
    Ok(session)
}

fn require_open(session: &EscrowSession) -> Result<(), AppError> {
    if session.status != SessionStatus::Open {
        return Err(AppError::conflict("session_closed", "the session takes no further operations")
            .with("status", json!(session.status)));
    }
    Ok(())
}

fn open_session(ctx: &Ctx<'_>, req: &Request, kind: SessionKind, step: &str) -> Result<EscrowSession, AppError> {
    let session = owned_session(ctx, req)?;
    require_open(&session)?;
    let expected = session.expected_step();
    if session.kind != kind || !(expected == step || expected.starts_with(&format!("{step} or "))) {
        return Err(AppError::wrong_step(step, expected));
    }
    Ok(session)
}

fn reserved(session: &EscrowSession) -> Result<&str, AppError> {
    session.listings.first().map(String::as_str).ok_or_else(|| AppError::wrong_step("pay", "reserve"))
}

fn listing(ctx: &Ctx<'_>, listing_id: &str) -> Result<Listing, AppError> {
    ctx.get(&keys::listing(listing_id))?.ok_or_else(|| AppError::not_found("listing", listing_id))
}

fn account(ctx: &Ctx<'_>, account_id: &str) -> Result<Account, AppError> {
    ctx.get(&keys::account(account_id))?.ok_or_else(|| AppError::not_found("account", account_id))
}
