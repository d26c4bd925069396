//! The replicated handlers of the supply-chain service. Pure functions of (state, request):
//! ids come from `request_id`, time from `time_ms`.

use std::collections::BTreeMap;

use serde_json::json;

use crate::{keys, roles};
use crate::{
    manifest,
    model::{
        Empty, Item, Label, LabelRecord, PackageRecord, PackageStatus, Party, QcRecord, QualityCheck, RegisterPackage,
        Scan, SessionKind, SessionRecord, SessionStatus, StartSession, Supplier, Validate,
    },
};
use bftws_framework::{
    crypto::CryptoError,
    registry::{ids, Actor, AppError, Ctx, Request, Response, ServiceState},
};

const MAX_ITEMS: usize = 100;
const MAX_ISSUES: usize = 20;
const MAX_TEXT: usize = 200;

pub(super) fn start(ctx: &mut Ctx<'_>, req: &Request) -> Result<Response, AppError> {
    let body: StartSession = req.parse_body()?;
    let (role, directory) = match body.kind {
        SessionKind::Supplier => (roles::SUPPLIER, keys::supplier(&req.actor.id)),
        SessionKind::Warehouse => (roles::OPERATOR, keys::operator(&req.actor.id)),
    };
    if !req.actor.role.is(role) {
        return Err(AppError::forbidden(format!("a {:?} session needs the '{role}' role", body.kind)));
    }
    if ctx.get_raw(&directory)?.is_none() {
        return Err(AppError::forbidden(format!("'{}' is not a registered {role}", req.actor.id)));
    }
    let session_id = req.session_id.clone().ok_or_else(|| AppError::internal("start without a session id"))?;
    if ctx.get_raw(&keys::session(&session_id))?.is_some() {
        return Err(AppError::conflict("session_exists", format!("session '{session_id}' already exists")));
    }
    let session = SessionRecord {
        session_id: session_id.clone(),
        kind: body.kind,
        owner: req.actor.id.clone(),
        status: SessionStatus::Open,
        packages: Vec::new(),
        validated: false,
        qc: None,
        label: None,
        started_at_ms: req.time_ms,
        updated_at_ms: req.time_ms,
    };
    let response = session_summary(&session);
    ctx.put(keys::session(&session_id), &session);
    Ok(Response::created(response))
}

pub(super) fn register_package(ctx: &mut Ctx<'_>, req: &Request) -> Result<Response, AppError> {
    let mut session = open_session(ctx, req, SessionKind::Supplier, "register_package")?;
    let body: RegisterPackage = req.parse_body()?;
    ids::check("package_id", &body.package_id)?;
    check_items(&body.items)?;
    body.signature.check_form().map_err(|e| AppError::bad_request("signature", e.to_string()))?;
    let supplier = supplier(ctx, &session.owner)?;
    manifest::verify(&supplier.public_key, &body.package_id, &supplier.id, &body.items, &body.signature)
        .map_err(|e| signature_error(e, "the manifest"))?;
    if ctx.get_raw(&keys::package(&body.package_id))?.is_some() {
        return Err(AppError::conflict(
            "package_exists",
            format!("package '{}' is already registered", body.package_id),
        )
        .with("package_id", body.package_id.as_str()));
    }
    let package = PackageRecord {
        package_id: body.package_id.clone(),
        supplier_id: supplier.id,
        items: body.items,
        signature: body.signature,
        status: PackageStatus::Pending,
        registered_in: session.session_id.clone(),
        claimed_by: None,
        label: None,
    };
    session.packages.push(body.package_id.clone());
    touch(&mut session, req);
    ctx.put(keys::package(&package.package_id), &package);
    let response = json!({
        "session_id": session.session_id,
        "package_id": package.package_id,
        "supplier_id": package.supplier_id,
        "items": package.items,
        "status": package.status,
        "next_step": session.expected_step(),
    });
    ctx.put(keys::session(&session.session_id), &session);
    Ok(Response::created(response))
}

pub(super) fn scan(ctx: &mut Ctx<'_>, req: &Request) -> Result<Response, AppError> {
    let mut session = open_session(ctx, req, SessionKind::Warehouse, "scan")?;
    let body: Scan = req.parse_body()?;
    ids::check("package_id", &body.package_id)?;
    let mut package = package(ctx, &body.package_id)?;
    match package.status {
        PackageStatus::Committed => {}
        PackageStatus::Pending => {
            return Err(AppError::conflict("package_not_committed", "the package is not committed on L1 yet")
                .with("package_id", body.package_id.as_str()))
        }
        PackageStatus::Processed => {
            return Err(AppError::conflict("package_processed", "the package was already processed")
                .with("package_id", body.package_id.as_str()))
        }
    }
    if let Some(other) = &package.claimed_by {
        return Err(AppError::conflict("package_claimed", "the package is claimed by another open session")
            .with("package_id", body.package_id.as_str())
            .with("claimed_by", other.as_str()));
    }
    let supplier = supplier(ctx, &package.supplier_id)?;
    package.claimed_by = Some(session.session_id.clone());
    session.packages.push(package.package_id.clone());
    touch(&mut session, req);
    let response = json!({
        "session_id": session.session_id,
        "package_id": package.package_id,
        "supplier": {"id": supplier.id, "name": supplier.name},
        "items": package.items,
        "next_step": session.expected_step(),
    });
    ctx.put(keys::package(&package.package_id), &package);
    ctx.put(keys::session(&session.session_id), &session);
    Ok(Response::ok(response))
}

pub(super) fn validate(ctx: &mut Ctx<'_>, req: &Request) -> Result<Response, AppError> {
    let mut session = open_session(ctx, req, SessionKind::Warehouse, "validate")?;
    let body: Validate = req.parse_body()?;
    body.signature.check_form().map_err(|e| AppError::bad_request("signature", e.to_string()))?;
    let package = package(ctx, scanned_package(&session)?)?;
    let supplier = supplier(ctx, &package.supplier_id)?;
    manifest::verify(&supplier.public_key, &package.package_id, &supplier.id, &package.items, &body.signature)
        .map_err(|e| signature_error(e, "the registered manifest"))?;
    session.validated = true;
    touch(&mut session, req);
    let response = json!({
        "session_id": session.session_id,
        "package_id": package.package_id,
        "supplier_id": supplier.id,
        "signature_valid": true,
        "next_step": session.expected_step(),
    });
    ctx.put(keys::session(&session.session_id), &session);
    Ok(Response::ok(response))
}

pub(super) fn quality_check(ctx: &mut Ctx<'_>, req: &Request) -> Result<Response, AppError> {
    let mut session = open_session(ctx, req, SessionKind::Warehouse, "qc")?;
    let body: QualityCheck = req.parse_body()?;
    if body.issues.len() > MAX_ISSUES {
        return Err(AppError::bad_request("issues", format!("at most {MAX_ISSUES} issues")));
    }
    for (i, issue) in body.issues.iter().enumerate() {
        check_text(&format!("issues[{i}]"), issue)?;
    }
    let qc = QcRecord { passed: body.passed, issues: body.issues };
    session.qc = Some(qc.clone());
    touch(&mut session, req);
    let response = json!({
        "session_id": session.session_id,
        "package_id": scanned_package(&session)?,
        "passed": qc.passed,
        "issues": qc.issues,
        "next_step": session.expected_step(),
    });
    ctx.put(keys::session(&session.session_id), &session);
    Ok(Response::ok(response))
}

pub(super) fn label(ctx: &mut Ctx<'_>, req: &Request) -> Result<Response, AppError> {
    let mut session = open_session(ctx, req, SessionKind::Warehouse, "label")?;
    let body: Label = req.parse_body()?;
    check_text("destination", &body.destination)?;
    ids::check("courier_id", &body.courier_id)?;
    let courier: Party =
        ctx.get(&keys::courier(&body.courier_id))?.ok_or_else(|| AppError::not_found("courier", &body.courier_id))?;
    let label = LabelRecord {
        label_id: ids::derive("lbl", &req.request_id),
        destination: body.destination,
        priority: body.priority,
        courier_id: courier.id.clone(),
    };
    session.label = Some(label.clone());
    touch(&mut session, req);
    let response = json!({
        "session_id": session.session_id,
        "package_id": scanned_package(&session)?,
        "label_id": label.label_id,
        "destination": label.destination,
        "priority": label.priority,
        "courier": {"id": courier.id, "name": courier.name},
        "next_step": session.expected_step(),
    });
    ctx.put(keys::session(&session.session_id), &session);
    Ok(Response::ok(response))
}

pub(super) fn commit(ctx: &mut Ctx<'_>, req: &Request) -> Result<Response, AppError> {
    let mut session = load_session(ctx, req)?;
    require_open(&session)?;
    let _: Empty = req.parse_body()?;
    let ready = match session.kind {
        SessionKind::Supplier => !session.packages.is_empty(),
        SessionKind::Warehouse => session.label.is_some(),
    };
    if !ready {
        return Err(AppError::wrong_step("commit", session.expected_step()));
    }
    session.status = SessionStatus::Committing;
    touch(&mut session, req);
    let response = session_summary(&session);
    ctx.put(keys::session(&session.session_id), &session);
    Ok(Response::ok(response))
}

pub(super) fn abort(ctx: &mut Ctx<'_>, req: &Request) -> Result<Response, AppError> {
    let mut session = load_session(ctx, req)?;
    require_open(&session)?;
    let _: Empty = req.parse_body()?;
    release(ctx, &session)?;
    session.status = SessionStatus::Aborted;
    touch(&mut session, req);
    let response = session_summary(&session);
    ctx.put(keys::session(&session.session_id), &session);
    Ok(Response::ok(response))
}

/// The session's bundle was re-executed in full on L1 and is being applied there; or L1's
/// receipt is being recorded on L2.
pub(super) fn session_committed(ctx: &mut Ctx<'_>, session_id: &str) -> Result<(), AppError> {
    let mut session: SessionRecord = ctx
        .get(&keys::session(session_id))?
        .ok_or_else(|| AppError::internal("committed bundle without its session"))?;
    finalize_committed(ctx, &mut session)?;
    ctx.put(keys::session(session_id), &session);
    Ok(())
}

/// L1 refused the session's bundle (recorded on L2): release what it holds.
pub(super) fn session_rejected(ctx: &mut Ctx<'_>, session_id: &str) -> Result<(), AppError> {
    let mut session: SessionRecord = ctx
        .get(&keys::session(session_id))?
        .ok_or_else(|| AppError::internal("a rejected session without its record"))?;
    release(ctx, &session)?;
    session.status = SessionStatus::Rejected;
    ctx.put(keys::session(session_id), &session);
    Ok(())
}

/// What a committed session makes final: supplier packages become available, a warehouse
/// session's package is processed (its claim stays).
fn finalize_committed(ctx: &mut Ctx<'_>, session: &mut SessionRecord) -> Result<(), AppError> {
    for package_id in &session.packages {
        let mut package = package(ctx, package_id)?;
        match session.kind {
            SessionKind::Supplier => package.status = PackageStatus::Committed,
            SessionKind::Warehouse => {
                package.status = PackageStatus::Processed;
                package.label = session.label.clone();
            }
        }
        ctx.put(keys::package(package_id), &package);
    }
    session.status = SessionStatus::Committed;
    Ok(())
}

/// Undoes what an unfinished session holds: pending packages go, claims are released.
fn release(ctx: &mut Ctx<'_>, session: &SessionRecord) -> Result<(), AppError> {
    for package_id in &session.packages {
        match session.kind {
            SessionKind::Supplier => ctx.delete(keys::package(package_id)),
            SessionKind::Warehouse => {
                let mut package = package(ctx, package_id)?;
                if package.claimed_by.as_deref() == Some(session.session_id.as_str()) {
                    package.claimed_by = None;
                    ctx.put(keys::package(package_id), &package);
                }
            }
        }
    }
    Ok(())
}

fn session_summary(session: &SessionRecord) -> serde_json::Value {
    json!({
        "session_id": session.session_id,
        "kind": session.kind,
        "status": session.status,
        "next_step": session.expected_step(),
    })
}

/// Loads the request's session and checks the actor owns it.
fn load_session(ctx: &Ctx<'_>, req: &Request) -> Result<SessionRecord, AppError> {
    let session_id = req.param("id")?;
    ids::check("id", session_id)?;
    let session: SessionRecord =
        ctx.get(&keys::session(session_id))?.ok_or_else(|| AppError::not_found("session", session_id))?;
    if session.owner != req.actor.id {
        return Err(AppError::forbidden("only the session's owner may act on it"));
    }
    Ok(session)
}

fn require_open(session: &SessionRecord) -> Result<(), AppError> {
    if session.status != SessionStatus::Open {
        return Err(AppError::conflict(
            "session_closed",
            format!("session is {} and takes no further operations", session.status.as_str()),
        )
        .with("status", session.status.as_str()));
    }
    Ok(())
}

/// Loads an open session of `kind` that is ready for `step`.
fn open_session(ctx: &Ctx<'_>, req: &Request, kind: SessionKind, step: &str) -> Result<SessionRecord, AppError> {
    let session = load_session(ctx, req)?;
    require_open(&session)?;
    let expected = session.expected_step();
    let allowed = session.kind == kind && (expected == step || expected.starts_with(&format!("{step} or ")));
    if !allowed {
        return Err(AppError::wrong_step(step, expected));
    }
    Ok(session)
}

fn scanned_package(session: &SessionRecord) -> Result<&str, AppError> {
    session.packages.first().map(String::as_str).ok_or_else(|| AppError::wrong_step("validate", "scan"))
}

fn touch(session: &mut SessionRecord, req: &Request) {
    session.updated_at_ms = req.time_ms;
}

fn package(ctx: &Ctx<'_>, package_id: &str) -> Result<PackageRecord, AppError> {
    ctx.get(&keys::package(package_id))?.ok_or_else(|| AppError::not_found("package", package_id))
}

fn supplier(ctx: &Ctx<'_>, supplier_id: &str) -> Result<Supplier, AppError> {
    ctx.get(&keys::supplier(supplier_id))?.ok_or_else(|| AppError::not_found("supplier", supplier_id))
}

fn check_items(items: &[Item]) -> Result<(), AppError> {
    if items.is_empty() || items.len() > MAX_ITEMS {
        return Err(AppError::bad_request("items", format!("a package lists 1-{MAX_ITEMS} items")));
    }
    for (i, item) in items.iter().enumerate() {
        ids::check(&format!("items[{i}].sku"), &item.sku)?;
        if item.qty == 0 {
            return Err(AppError::bad_request(&format!("items[{i}].qty"), "quantity must be at least 1"));
        }
    }
    Ok(())
}

fn check_text(field: &str, text: &str) -> Result<(), AppError> {
    if text.trim().is_empty() || text.chars().count() > MAX_TEXT {
        return Err(AppError::bad_request(field, format!("'{field}' must be 1-{MAX_TEXT} characters")));
    }
    Ok(())
}

fn signature_error(err: CryptoError, over: &str) -> AppError {
    match err {
        CryptoError::BadSignature => AppError::unprocessable(
            "invalid_signature",
            format!("the signature does not verify against the supplier's registered key over {over}"),
        ),
        other => AppError::bad_request("signature", other.to_string()),
    }
}

/// `GET /v1/packages/{id}`: the manifest signature only for its supplier, admins and auditors.
pub(super) fn read_package(
    state: &ServiceState<'_>,
    actor: &Actor,
    params: &BTreeMap<String, String>,
) -> Result<serde_json::Value, AppError> {
    let id = params.get("id").map(String::as_str).unwrap_or_default();
    ids::check("id", id)?;
    let package: PackageRecord = state.get(&keys::package(id))?.ok_or_else(|| AppError::not_found("package", id))?;
    let sees_signature = [roles::ADMIN, roles::AUDITOR].iter().any(|role| actor.role.is(role))
        || (actor.role.is(roles::SUPPLIER) && actor.id == package.supplier_id);
    let mut data = serde_json::to_value(&package).map_err(|e| AppError::internal(e.to_string()))?;
    if !sees_signature {
        if let Some(fields) = data.as_object_mut() {
            fields.remove("signature");
        }
    }
    Ok(data)
}
