// bftws console: one page, no build step, no dependency. Every view reads the node's own API
// with the bearer token the person signs in with; the token lives in this tab's sessionStorage
// only, never in a URL. Pages and forms come from the node's OpenAPI document, so any service
// gets them; the one service-specific piece is MESSAGE_SIGNERS below.
"use strict";

const TOKEN_KEY = "bftws-token";
const NETWORK_POLL_MS = 2000;

const state = { token: sessionStorage.getItem(TOKEN_KEY), me: null, api: null, pollTimer: null };

// ---------------------------------------------------------------------------------------------
// DOM: elements are built, never parsed from strings, so data from the API cannot become markup.

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function announce(text) {
  const el = document.getElementById("announce");
  el.textContent = "";
  setTimeout(() => { el.textContent = text; }, 30);
}

let uniqueIds = 0;
const uid = (prefix) => `${prefix}-${++uniqueIds}`;

function shortHash(hash) {
  return hash && hash.length > 16 ? `${hash.slice(0, 8)}…${hash.slice(-6)}` : hash || "";
}

function ms(value) {
  return value === null || value === undefined ? "–" : `${Number(value).toFixed(1)} ms`;
}

// ---------------------------------------------------------------------------------------------
// API

class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || "http_error";
    this.body = body;
    this.expectedStep = error.expected_step;
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const started = performance.now();
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new ApiError(0, { error: { code: "unreachable", message: `the node did not answer: ${err.message}` } });
  }
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { json = { error: { message: text.slice(0, 300) } }; }
  const roundTripMs = performance.now() - started;
  if (!response.ok) {
    const err = new ApiError(response.status, json);
    err.roundTripMs = roundTripMs;
    throw err;
  }
  return { status: response.status, body: json, roundTripMs };
}

// ---------------------------------------------------------------------------------------------
// The API document: session kinds, step routes and their request schemas, audit reads.

function resolve(schema) {
  let seen = 0;
  while (schema && schema.$ref && seen++ < 16) {
    schema = state.api.components.schemas[schema.$ref.split("/").pop()];
  }
  return schema || {};
}

function refName(schema) {
  return schema && schema.$ref ? schema.$ref.split("/").pop() : null;
}

function requestSchema(operation) {
  const content = operation.requestBody && operation.requestBody.content["application/json"];
  return content ? content.schema : null;
}

function describeApi(doc) {
  const steps = [];
  let start = null;
  const audits = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    const post = item.post;
    if (post && path === "/v1/sessions") start = { path, operation: post };
    else if (post && path.startsWith("/v1/sessions/{id}/")) {
      const name = path.split("/").pop();
      const kind = name === "commit" ? "commit" : name === "abort" ? "abort" : "step";
      steps.push({ path, name, op: post.operationId || name, kind, operation: post, order: post["x-bftws-order"] ?? 0 });
    }
    if (item.get && path.endsWith("/history")) audits.push({ path, operation: item.get });
  }
  steps.sort((a, b) => a.order - b.order);
  let kinds = [];
  if (start) {
    const schema = resolve(requestSchema(start.operation));
    const kindField = schema.properties && schema.properties.kind;
    kinds = (kindField && resolve(kindField).enum) || [];
  }
  return { title: doc.info.title, steps, start, kinds, audits };
}

// The steps a session of `kind` takes: those whose op is named after the kind (`warehouse.scan`),
// and the ones named after no kind (`session.commit`); a service whose ops name no kind gets all.
function stepsFor(kind) {
  const { steps, kinds } = state.service;
  const prefix = (step) => step.op.split(".")[0];
  const named = steps.some((step) => kinds.includes(prefix(step)));
  return steps.filter((step) => !named || prefix(step) === kind || !kinds.includes(prefix(step)));
}

// ---------------------------------------------------------------------------------------------
// Forms from JSON schemas. Each field reads back its value; required fields are marked.

function field(name, schema, required) {
  const resolved = resolve(schema);
  const id = uid(`f-${name}`);
  const label = (text) => h("label", { for: id }, text, required ? h("span", { class: "req", "aria-hidden": "true" }, " *") : null);
  const help = schema.description || resolved.description;
  const helpId = help ? uid("help") : null;
  const helpEl = help ? h("p", { id: helpId, class: "help" }, help.split("\n")[0]) : null;
  if (resolved.enum) {
    const select = h("select", { id, name, "aria-describedby": helpId }, resolved.enum.map((v) => h("option", { value: v }, v)));
    return { el: h("div", { class: "field" }, label(name), select, helpEl), read: () => select.value };
  }
  if (resolved.type === "boolean") {
    const input = h("input", { id, name, type: "checkbox", "aria-describedby": helpId });
    return {
      el: h("div", { class: "field check" }, input, h("label", { for: id }, name), helpEl),
      read: () => input.checked,
    };
  }
  if (resolved.type === "integer" || resolved.type === "number") {
    const input = h("input", { id, name, type: "number", min: resolved.minimum, step: resolved.type === "integer" ? 1 : "any", required, "aria-describedby": helpId });
    return {
      el: h("div", { class: "field" }, label(name), input, helpEl),
      read: () => (input.value === "" ? undefined : Number(input.value)),
    };
  }
  if (resolved.type === "array") {
    const items = resolve(resolved.items);
    if (items.type === "object") return arrayOfObjects(name, resolved.items, required, help);
    const area = h("textarea", { id, name, rows: 2, "aria-describedby": helpId });
    return {
      el: h("div", { class: "field" }, label(`${name} (one per line)`), area, helpEl),
      read: () => area.value.split("\n").map((s) => s.trim()).filter(Boolean),
    };
  }
  if (resolved.type === "object") {
    const form = objectFields(schema);
    return { el: h("fieldset", {}, h("legend", {}, name), form.el), read: form.read };
  }
  const input = h("input", { id, name, type: "text", required, autocomplete: "off", spellcheck: "false", "aria-describedby": helpId });
  return { el: h("div", { class: "field" }, label(name), input, helpEl), read: () => (input.value === "" ? undefined : input.value), input };
}

function arrayOfObjects(name, itemSchema, required, help) {
  const rows = [];
  const list = h("div", { class: "rows" });
  const add = () => {
    const row = objectFields(itemSchema);
    const remove = h("button", { type: "button", class: "link", onclick: () => { rows.splice(rows.indexOf(row), 1); wrapper.remove(); } }, `Remove ${name.replace(/s$/, "")}`);
    const wrapper = h("div", { class: "row" }, row.el, remove);
    rows.push(row);
    list.append(wrapper);
  };
  add();
  const el = h("fieldset", {}, h("legend", {}, name, required ? " *" : ""), help ? h("p", { class: "help" }, help) : null, list,
    h("button", { type: "button", class: "secondary", onclick: add }, `Add ${name.replace(/s$/, "")}`));
  return { el, read: () => rows.map((row) => row.read()) };
}

function objectFields(schema) {
  const resolved = resolve(schema);
  const required = resolved.required || [];
  const fields = Object.entries(resolved.properties || {}).map(([name, sub]) => [name, field(name, sub, required.includes(name))]);
  return {
    el: h("div", { class: "fields" }, fields.map(([, f]) => f.el)),
    read: () => {
      const out = {};
      for (const [name, f] of fields) {
        const value = f.read();
        if (value !== undefined) out[name] = value;
      }
      return out;
    },
    fields: Object.fromEntries(fields),
  };
}

// ---------------------------------------------------------------------------------------------
// Signing in the browser. A signature field of a step listed here gets a "sign" helper: the
// message is the service's canonical JSON (sorted keys, no whitespace), signed with Ed25519 by
// WebCrypto from a 32-byte seed that never leaves this page.

const MESSAGE_SIGNERS = {
  // supply-chain: the supplier's manifest (services/supply-chain/src/manifest.rs).
  "supplier.register_package": {
    field: "signature",
    message: (body, me) => ({ items: body.items || [], package_id: body.package_id || "", supplier_id: me.id }),
  },
};

function canonicalJson(value) {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

function hexToBytes(hex) {
  if (!/^([0-9a-fA-F]{2})*$/.test(hex)) throw new Error("not hex");
  return new Uint8Array(hex.match(/../g)?.map((b) => parseInt(b, 16)) || []);
}

function bytesToHex(bytes) {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function signEd25519(seedHex, message) {
  if (!crypto.subtle) throw new Error("this page is not a secure context (use https or localhost): paste the signature instead");
  const seed = hexToBytes(seedHex.trim());
  if (seed.length !== 32) throw new Error("the key must be a 32-byte seed: 64 hex characters");
  // PKCS#8 wrapping of a raw Ed25519 seed (RFC 8410).
  const pkcs8 = new Uint8Array([...hexToBytes("302e020100300506032b657004220420"), ...seed]);
  const key = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, false, ["sign"]);
  return bytesToHex(await crypto.subtle.sign({ name: "Ed25519" }, key, new TextEncoder().encode(message)));
}

function signerHelper(step, form) {
  const signer = MESSAGE_SIGNERS[step.op];
  const target = signer && form.fields[signer.field];
  if (!target || !target.input) return null;
  const seedId = uid("seed");
  const seed = h("input", { id: seedId, type: "password", autocomplete: "off", spellcheck: "false" });
  const status = h("p", { class: "help", role: "status" });
  const sign = async () => {
    try {
      const body = form.read();
      const message = canonicalJson(signer.message(body, state.me));
      target.input.value = await signEd25519(seed.value, message);
      status.textContent = "Signed in this browser; the key was not sent anywhere.";
    } catch (err) {
      status.textContent = `Cannot sign: ${err.message}`;
    }
  };
  return h("details", { class: "signer" }, h("summary", {}, "Sign with my key"),
    h("div", { class: "field" }, h("label", { for: seedId }, "Signing key (hex seed, stays in this page)"), seed),
    h("button", { type: "button", class: "secondary", onclick: sign }, `Sign ${signer.field}`), status);
}

// ---------------------------------------------------------------------------------------------
// Receipts checked in the browser: the proof's transaction hashes to the receipt's, and is a
// leaf of the block's transaction tree whose root the signed header carries. Finality (2/3+ of
// L1's genesis validators signed) is checked by the node that passed the proof on.

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

// CometBFT's simple Merkle tree (RFC 6962 hashing, split at the largest power of two below n).
async function merkleRoot(leaves) {
  if (leaves.length === 0) return sha256(new Uint8Array());
  if (leaves.length === 1) return sha256(new Uint8Array([0, ...leaves[0]]));
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  const left = await merkleRoot(leaves.slice(0, k));
  const right = await merkleRoot(leaves.slice(k));
  return sha256(new Uint8Array([1, ...left, ...right]));
}

function base64ToBytes(text) {
  const raw = atob(text);
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

async function checkProof(proof, receipt) {
  const checks = [];
  const check = (name, ok, detail) => checks.push({ name, ok, detail });
  if (!crypto.subtle) {
    check("checked in this browser", false, "not a secure context: WebCrypto is unavailable");
    return checks;
  }
  const txHash = bytesToHex(await sha256(base64ToBytes(proof.tx))).toUpperCase();
  check("transaction hashes to the receipt's tx hash", txHash === (receipt.tx_hash || "").toUpperCase(), shortHash(txHash));
  check("same height as the receipt", Number(proof.height) === Number(receipt.height), `height ${proof.height}`);
  const leaves = proof.block_tx_hashes.map(hexToBytes);
  check("transaction is in the block", (proof.block_tx_hashes[proof.tx_index] || "").toUpperCase() === txHash,
    `index ${proof.tx_index} of ${leaves.length}`);
  const header = (proof.signed_header && proof.signed_header.header) || {};
  const root = bytesToHex(await merkleRoot(leaves)).toUpperCase();
  check("block's transactions hash to the signed header's data_hash", root === (header.data_hash || "").toUpperCase(), shortHash(root));
  const commit = (proof.signed_header && proof.signed_header.commit) || {};
  const signers = (commit.signatures || []).filter((s) => s.block_id_flag === 2).length;
  check("signed header is for this block", Number(header.height) === Number(proof.height) && header.chain_id === proof.chain_id,
    `${header.chain_id} #${header.height}, ${signers} validator signatures`);
  return checks;
}

function proofView(checks) {
  return h("ul", { class: "checks" }, checks.map((c) =>
    h("li", { class: c.ok ? "ok" : "bad" }, h("span", { "aria-hidden": "true" }, c.ok ? "✓ " : "✗ "),
      h("span", { class: "visually-hidden" }, c.ok ? "passed: " : "failed: "), c.name, c.detail ? h("span", { class: "muted" }, ` — ${c.detail}`) : null)));
}

async function receiptView(sessionId, receipt) {
  const box = h("div", { class: "receipt", "aria-live": "polite" },
    h("h4", {}, "L1 receipt"),
    h("dl", {},
      h("dt", {}, "chain"), h("dd", {}, receipt.chain_id),
      h("dt", {}, "height"), h("dd", { "data-field": "height" }, String(receipt.height)),
      h("dt", {}, "tx hash"), h("dd", { class: "mono", "data-field": "tx_hash" }, receipt.tx_hash),
      h("dt", {}, "code"), h("dd", { "data-field": "code" }, `${receipt.code}${receipt.code === 0 ? " (committed)" : ""}`)),
    h("p", { class: "muted pending-proof" }, "Fetching the proof of finality…"));
  try {
    const { body } = await api("GET", `/v1/sessions/${encodeURIComponent(sessionId)}/proof`);
    const checks = await checkProof(body.data, receipt);
    const all = checks.every((c) => c.ok);
    box.querySelector(".pending-proof").replaceWith(
      h("p", { class: all ? "verdict ok" : "verdict bad", "data-field": "verification" },
        all ? "Verified: final on L1" : "NOT verified"),
      h("p", { class: "help" }, "The node passed this proof on only after checking 2/3+ of L1's genesis validators signed it; this browser checked:"),
      proofView(checks));
  } catch (err) {
    box.querySelector(".pending-proof").textContent = `No proof yet: ${err.message}`;
  }
  return box;
}

// ---------------------------------------------------------------------------------------------
// Pages

function setMain(title, ...content) {
  stopPolling();
  const main = document.getElementById("main");
  main.replaceChildren(h("h1", { id: "page-title" }, title), ...content);
  document.title = `${title} · bftws console`;
  main.focus({ preventScroll: true });
}

function errorBox(err) {
  return h("div", { class: "error", role: "alert" },
    h("strong", {}, `${err.status ? `${err.status} ` : ""}${err.code}`), ": ", err.message,
    err.expectedStep ? h("span", { "data-field": "expected-step" }, ` — expected step: ${err.expectedStep}`) : null);
}

function signInPage(message) {
  const id = uid("token");
  const input = h("input", { id, type: "password", autocomplete: "current-password", required: true });
  const out = h("div", { class: "result", "aria-live": "polite" }, message ? h("div", { class: "error", role: "alert" }, message) : null);
  const form = h("form", {
    class: "card narrow",
    onsubmit: async (event) => {
      event.preventDefault();
      state.token = input.value.trim();
      try {
        await loadIdentity();
        sessionStorage.setItem(TOKEN_KEY, state.token);
        location.hash = defaultPage();
        render();
      } catch (err) {
        state.token = null;
        out.replaceChildren(errorBox(err));
      }
    },
  }, h("div", { class: "field" }, h("label", { for: id }, "API token"), input,
    h("p", { class: "help" }, "Kept in this tab only, and sent to this node as a bearer token.")),
  h("button", { type: "submit" }, "Sign in"), out);
  setMain("Sign in", form);
}

function defaultPage() {
  const kinds = state.service.kinds;
  const role = state.me && state.me.role;
  return kinds.includes(role) ? `#/session/${role}` : kinds.length ? `#/session/${kinds[0]}` : "#/network";
}

function stepCard(step, session, onAnswer) {
  const schema = requestSchema(step.operation);
  const form = schema ? objectFields(schema) : { el: h("div"), read: () => ({}), fields: {} };
  const result = h("div", { class: "result", "aria-live": "polite", "data-step-result": step.name });
  const button = h("button", { type: "submit" }, step.kind === "commit" ? "Commit to L1" : step.kind === "abort" ? "Abort session" : `Send ${step.name}`);
  const card = h("form", {
    class: `card step step-${step.kind}`, "data-step": step.name,
    onsubmit: async (event) => {
      event.preventDefault();
      button.disabled = true;
      card.setAttribute("aria-busy", "true");
      result.replaceChildren(h("p", { class: "pending" }, h("span", { class: "spinner", "aria-hidden": "true" }),
        step.kind === "commit" ? " Committing to L1: the validators re-execute every step…" : " Waiting for L2…"));
      try {
        const path = step.path.replace("{id}", encodeURIComponent(session.id));
        const answer = await api("POST", path, form.read());
        const meta = answer.body.meta || {};
        const onL1 = step.kind === "commit" && answer.body.data && answer.body.data.receipt;
        result.replaceChildren(h("p", { class: "ok" }, h("span", { "aria-hidden": "true" }, "✓ "),
          `${answer.status} · final on ${onL1 ? "L1" : (meta.layer || "l2").toUpperCase()} in ${ms(meta.duration_ms)} `,
          h("span", { class: "muted" }, `(height ${meta.height ?? "–"}, round trip ${ms(answer.roundTripMs)})`)),
        h("pre", { class: "data", tabindex: 0 }, JSON.stringify(answer.body.data, null, 2)));
        announce(`${step.name}: done in ${ms(meta.duration_ms)}`);
        await onAnswer(step, answer, result);
      } catch (err) {
        result.replaceChildren(errorBox(err));
        announce(`${step.name} refused: ${err.message}`);
        await onAnswer(step, null, result);
      } finally {
        button.disabled = false;
        card.removeAttribute("aria-busy");
      }
    },
  }, h("h3", {}, step.name.replace(/_/g, " "), h("span", { class: "badge", hidden: true }, "next")),
  h("p", { class: "help" }, step.operation.summary || ""), form.el, signerHelper(step, form), button, result);
  return card;
}

function sessionPage(kind) {
  const title = `${kind[0].toUpperCase()}${kind.slice(1)} session`;
  const panel = h("div", { id: "session-panel" });
  const startOut = h("div", { class: "result", "aria-live": "polite" });
  const start = h("button", { type: "button", onclick: () => startSession(kind, panel, startOut) }, `Start a ${kind} session`);
  const resumeId = uid("resume");
  const resume = h("input", { id: resumeId, type: "text", autocomplete: "off", spellcheck: "false" });
  const resumeForm = h("form", {
    class: "inline",
    onsubmit: async (event) => {
      event.preventDefault();
      await showSession({ id: resume.value.trim() }, kind, panel, startOut);
    },
  }, h("label", { for: resumeId }, "or open session"), resume, h("button", { type: "submit", class: "secondary" }, "Open"));
  setMain(title, h("div", { class: "card toolbar" }, start, resumeForm, startOut), panel);
}

async function startSession(kind, panel, out) {
  out.replaceChildren(h("p", { class: "pending" }, h("span", { class: "spinner", "aria-hidden": "true" }), " Starting…"));
  try {
    const answer = await api("POST", state.service.start.path, { kind });
    const data = answer.body.data || {};
    const id = data.session_id || (data.session && data.session.session_id);
    out.replaceChildren(h("p", { class: "ok" }, `Session ${id} started · final on L2 in ${ms(answer.body.meta.duration_ms)}`));
    await showSession({ id }, kind, panel, out);
  } catch (err) {
    out.replaceChildren(errorBox(err));
  }
}

async function showSession(session, kind, panel, out) {
  const header = h("div", { class: "card session-head" });
  const steps = stepsFor(kind).map((step) => stepCard(step, session, onAnswer));
  const receipt = h("div", { id: "receipt-slot" });
  panel.replaceChildren(header, receipt, h("div", { class: "steps" }, steps));
  async function refresh() {
    try {
      const { body } = await api("GET", `/v1/sessions/${encodeURIComponent(session.id)}`);
      const data = body.data || {};
      const expected = (body.meta && body.meta.expected_step) || "none";
      header.replaceChildren(
        h("h2", {}, "Session ", h("span", { class: "mono", "data-field": "session-id" }, session.id)),
        h("p", {}, "Status: ", h("strong", { "data-field": "status" }, data.status || "?"), " · next: ",
          h("strong", { "data-field": "next" }, expected)));
      for (const card of steps) {
        const next = expected.split(/\s+or\s+|\s+/).includes(card.dataset.step);
        card.classList.toggle("expected", next);
        card.querySelector(".badge").hidden = !next;
      }
      return data;
    } catch (err) {
      header.replaceChildren(errorBox(err));
      return null;
    }
  }
  async function onAnswer(step, answer) {
    const data = await refresh();
    if (step.kind !== "commit" || !answer) return;
    let current = data;
    const slot = document.getElementById("receipt-slot");
    slot.replaceChildren(h("div", { class: "card pending", "aria-busy": "true" }, h("span", { class: "spinner", "aria-hidden": "true" }), " Waiting for L1 to make the session final…"));
    for (let i = 0; i < 120 && current && !current.receipt && current.status === "committing"; i++) {
      await new Promise((resolveTimer) => setTimeout(resolveTimer, 1000));
      current = await refresh();
    }
    const receipt = (answer.body.data && answer.body.data.receipt) || (current && current.receipt);
    if (receipt) {
      slot.replaceChildren(h("div", { class: "card" }, await receiptView(session.id, receipt)));
    } else {
      slot.replaceChildren(h("div", { class: "card error", role: "alert" }, `Not committed: ${(current && (current.rejection || current.status)) || "unknown"}`));
    }
  }
  if (!(await refresh())) out.replaceChildren(h("p", { class: "muted" }, "No such session readable with this token."));
}

function chainCard(title, chain) {
  if (!chain) return h("section", { class: "card" }, h("h2", {}, title), h("p", { class: "muted" }, "Not reported."));
  const heights = chain.signed_heights || [];
  const table = chain.validators.length
    ? h("table", {},
      h("caption", {}, `Validators (signatures on the last ${heights.length} blocks, newest first)`),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "address"), h("th", { scope: "col" }, "power"), h("th", { scope: "col" }, "signed"))),
      h("tbody", {}, chain.validators.map((v) => h("tr", {},
        h("td", { class: "mono" }, shortHash(v.address)), h("td", {}, String(v.voting_power)),
        h("td", {}, v.signed.map((s) => h("span", { class: s ? "dot on" : "dot off", "aria-hidden": "true" }, s ? "●" : "○")),
          h("span", { class: "visually-hidden" }, v.signed.map((s, i) => `${heights[i]}: ${s ? "signed" : "missing"}`).join(", ")))))))
    : h("p", { class: "muted" }, "No validator set (in-process sequencer).");
  return h("section", { class: "card", "data-chain": chain.chain_id },
    h("h2", {}, title),
    h("dl", { class: "stats" },
      h("dt", {}, "chain"), h("dd", {}, chain.chain_id),
      h("dt", {}, "height"), h("dd", { "data-field": "height" }, String(chain.height)),
      h("dt", {}, "blocks in the last minute"), h("dd", {}, chain.blocks_last_minute ?? "–"),
      h("dt", {}, "last block"), h("dd", {}, chain.last_block_time ? new Date(chain.last_block_time).toLocaleTimeString() : "–")),
    table);
}

function networkView(report) {
  const l2 = report.node.layer === "l2" ? report.chain : null;
  const l1 = report.node.layer === "l1" ? report.chain : report.l1;
  const latency = report.latency;
  const sessions = Object.entries(report.sessions);
  return [
    h("p", { class: "muted" }, `Node ${report.node.id} (${report.node.layer.toUpperCase()}, ${report.node.chain_id}); refreshed every ${NETWORK_POLL_MS / 1000} s.`),
    h("div", { class: "grid" },
      l2 ? chainCard("Layer 2", l2) : null,
      chainCard("Layer 1", l1),
      report.l1_error ? h("div", { class: "card error", role: "alert" }, `L1: ${report.l1_error}`) : null,
      h("section", { class: "card" }, h("h2", {}, "Latency"),
        h("table", {}, h("caption", {}, `On this node, last ${Math.round(latency.window_seconds / 60)} minutes`),
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "what"), h("th", { scope: "col" }, "count"), h("th", { scope: "col" }, "p50"), h("th", { scope: "col" }, "p99"))),
          h("tbody", {}, [["L2 op", latency.l2_op], ["L1 commit", latency.l1_commit]].map(([name, s]) =>
            h("tr", {}, h("th", { scope: "row" }, name), h("td", {}, String(s.count)), h("td", {}, ms(s.p50_ms)), h("td", {}, ms(s.p99_ms))))))),
      h("section", { class: "card" }, h("h2", {}, "Sessions"),
        sessions.length ? h("dl", { class: "stats" }, sessions.map(([k, v]) => [h("dt", {}, k), h("dd", { "data-status": k }, String(v))]))
          : h("p", { class: "muted" }, "None yet."),
        h("h3", {}, "Committing"),
        report.committing.length
          ? h("ul", {}, report.committing.map((c) => h("li", {}, h("span", { class: "mono" }, c.session_id),
            ` · ${c.driving ? "being driven" : "waiting"} · ${c.failed_attempts} failed attempts`,
            c.last_error ? h("span", { class: "muted" }, ` — ${c.last_error}`) : null)))
          : h("p", { class: "muted" }, "No session waiting for L1."))),
  ];
}

function networkPage() {
  const body = h("div", { "aria-live": "off" }, h("p", { class: "muted" }, "Loading…"));
  setMain("Network", body);
  const tick = async () => {
    try {
      const { body: answer } = await api("GET", "/v1/network");
      body.replaceChildren(...networkView(answer.data));
    } catch (err) {
      body.replaceChildren(errorBox(err));
    }
  };
  tick();
  state.pollTimer = setInterval(tick, NETWORK_POLL_MS);
}

function stopPolling() {
  if (state.pollTimer) clearInterval(state.pollTimer);
  state.pollTimer = null;
}

async function historyEntry(entry) {
  const item = h("li", { class: "card" }, h("h3", {}, "Session ", h("span", { class: "mono" }, entry.session_id)));
  if (!entry.committed) {
    item.append(h("p", { class: "muted" }, "Not committed on L1 yet."));
    return item;
  }
  const proof = entry.proof;
  const receipt = { chain_id: proof.chain_id, height: proof.height, tx_hash: proof.tx_hash, code: 0 };
  const checks = await checkProof(proof, receipt);
  const verified = checks.every((c) => c.ok);
  item.append(h("p", {}, `Final on ${proof.chain_id} at height ${proof.height}, tx `, h("span", { class: "mono" }, shortHash(proof.tx_hash))),
    h("p", { class: verified ? "verdict ok" : "verdict bad" }, verified ? "Verified" : "NOT verified"),
    proofView(checks));
  return item;
}

function auditPage() {
  const forms = [];
  const out = h("div", { id: "audit-result", "aria-live": "polite" });
  const sessionId = uid("audit-session");
  const sessionInput = h("input", { id: sessionId, type: "text", autocomplete: "off", spellcheck: "false", required: true });
  forms.push(h("form", {
    class: "card",
    onsubmit: async (event) => {
      event.preventDefault();
      out.replaceChildren(h("p", { class: "pending" }, h("span", { class: "spinner", "aria-hidden": "true" }), " Reading…"));
      try {
        const id = sessionInput.value.trim();
        const { body } = await api("GET", `/v1/sessions/${encodeURIComponent(id)}`);
        const data = body.data;
        const parts = [h("h2", {}, "Session ", h("span", { class: "mono" }, id)), h("p", {}, `Status: ${data.status}`), h("pre", { class: "data", tabindex: 0 }, JSON.stringify(data, null, 2))];
        if (data.receipt) parts.push(await receiptView(id, data.receipt));
        out.replaceChildren(h("div", { class: "card" }, parts));
      } catch (err) {
        out.replaceChildren(errorBox(err));
      }
    },
  }, h("h2", {}, "A session"), h("div", { class: "field" }, h("label", { for: sessionId }, "session id"), sessionInput), h("button", { type: "submit" }, "Look up")));
  for (const audit of state.service.audits) {
    const params = (audit.operation.parameters || []).filter((p) => p.in === "path");
    const inputs = params.map((p) => {
      const id = uid(`audit-${p.name}`);
      return [p.name, h("input", { id, type: "text", autocomplete: "off", spellcheck: "false", required: true }), id];
    });
    const what = audit.path.split("/").filter((s) => s && !s.startsWith("{") && s !== "v1" && s !== "history").join(" ");
    forms.push(h("form", {
      class: "card", "data-audit": audit.path,
      onsubmit: async (event) => {
        event.preventDefault();
        out.replaceChildren(h("p", { class: "pending" }, h("span", { class: "spinner", "aria-hidden": "true" }), " Reading the history and its proofs…"));
        try {
          let path = audit.path;
          for (const [name, input] of inputs) path = path.replace(`{${name}}`, encodeURIComponent(input.value.trim()));
          const { body } = await api("GET", path);
          const entries = await Promise.all(body.data.sessions.map(historyEntry));
          out.replaceChildren(h("div", { class: "card" }, h("h2", {}, `History of ${what.replace(/s$/, "")} `, h("span", { class: "mono" }, inputs.map(([, input]) => input.value.trim()).join(" "))),
            h("pre", { class: "data", tabindex: 0 }, JSON.stringify(body.data.record, null, 2)),
            h("ol", { class: "history" }, entries)));
        } catch (err) {
          out.replaceChildren(errorBox(err));
        }
      },
    }, h("h2", {}, `A ${what.replace(/s$/, "")}'s history`), inputs.map(([name, input, id]) => h("div", { class: "field" }, h("label", { for: id }, name), input)),
    h("button", { type: "submit" }, "Show history")));
  }
  setMain("Audit", h("div", { class: "grid" }, forms), out);
}

// ---------------------------------------------------------------------------------------------
// Shell

async function loadIdentity() {
  const { body } = await api("GET", "/v1/me");
  state.me = body.data;
}

function renderShell() {
  const nav = document.getElementById("nav");
  const links = [];
  if (state.me) {
    for (const kind of state.service.kinds) links.push([`#/session/${kind}`, `${kind[0].toUpperCase()}${kind.slice(1)}`]);
    links.push(["#/network", "Network"], ["#/audit", "Audit"]);
  }
  const current = location.hash || "";
  nav.replaceChildren(h("ul", {}, links.map(([href, text]) =>
    h("li", {}, h("a", { href, "aria-current": current.startsWith(href) ? "page" : null }, text)))));
  const who = document.getElementById("who");
  who.replaceChildren(state.me
    ? h("span", {}, h("span", { "data-field": "me" }, `${state.me.id} (${state.me.role})`), " ",
      h("button", { type: "button", class: "link", onclick: signOut }, "Sign out"))
    : "");
  document.getElementById("service-name").textContent = state.service.title.replace(/^bftws:\s*/, "");
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.me = null;
  location.hash = "#/sign-in";
  render();
}

function render() {
  renderShell();
  if (!state.me) return signInPage();
  const [, page, arg] = (location.hash || "").split("/");
  if (page === "session" && state.service.kinds.includes(arg)) return sessionPage(arg);
  if (page === "network") return networkPage();
  if (page === "audit") return auditPage();
  location.replace(defaultPage());
  return undefined;
}

async function boot() {
  try {
    const doc = await api("GET", "/openapi.json");
    state.api = doc.body;
    state.service = describeApi(state.api);
  } catch (err) {
    document.getElementById("main").replaceChildren(errorBox(err));
    return;
  }
  if (state.token) {
    try {
      await loadIdentity();
    } catch (err) {
      sessionStorage.removeItem(TOKEN_KEY);
      state.token = null;
      renderShell();
      return signInPage(`Signed out: ${err.message}`);
    }
  }
  window.addEventListener("hashchange", render);
  render();
  return undefined;
}

boot();
