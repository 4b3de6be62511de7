// jwtd console: plain DOM, no library and no build step. Every value from
// the API or a token is rendered with textContent, never as HTML. The API
// key lives in sessionStorage and goes only in the Authorization header.

const $ = (id) => document.getElementById(id);
const KEY = "jwtd.apikey";
let scopes = [];

function el(tag, text, className) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (className) e.className = className;
  return e;
}

// when shows an RFC 3339 time to the second, in UTC.
function when(iso) {
  const d = new Date(iso);
  return isNaN(d) ? String(iso) : d.toISOString().slice(0, 19).replace("T", " ") + " UTC";
}

// answers are what each screen shows of the last thing asked: emptied, and
// hidden, before something new is asked, so that an error or a shorter
// answer never stands next to an earlier one. Tables lose their rows.
const answers = {
  inspect: { hide: ["inspect-out"], empty: ["header-json", "claims-json", "times", "verdict", "verify-out"] },
  verify: { hide: [], empty: ["verify-out"] },
  xid: { hide: ["xid-out", "confirm-xid"], empty: ["xid-summary", "outcomes", "xid-records"] },
  phone: { hide: ["phone-out", "next-page"], empty: ["phone-summary", "phone-records"] },
  keys: { hide: [], empty: ["keys-summary", "key-states", "jwks"] },
  activity: { hide: [], empty: ["chart", "chart-label", "activity-table"] },
};

function clearAnswer(name) {
  const a = answers[name];
  for (const id of a.hide) $(id).hidden = true;
  for (const id of a.empty) {
    const e = $(id);
    (e.tBodies ? e.tBodies[0] : e).replaceChildren();
  }
}

// labelCells gives each cell of a table's body the name of its column, which
// the phone-width style shows before the value when rows are stacked.
function labelCells(table) {
  const names = [...table.tHead.rows[0].cells].map((th) => th.textContent);
  for (const tr of table.tBodies[0].rows) {
    [...tr.cells].forEach((td, i) => { if (names[i] && td.colSpan === 1) td.dataset.label = names[i]; });
  }
}

function showError(message) {
  const p = $("error");
  p.textContent = message || "";
  p.hidden = !message;
}

// api calls this jwtd with the key; it returns the parsed body or throws an
// Error whose message is the problem's title and detail.
async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  const key = sessionStorage.getItem(KEY);
  if (key) headers.set("Authorization", "Bearer " + key);
  const resp = await fetch(path, { ...options, headers, credentials: "omit", cache: "no-store" });
  const type = resp.headers.get("Content-Type") || "";
  const body = type.includes("json") ? await resp.json() : await resp.text();
  if (!resp.ok) {
    const msg = body && typeof body === "object" ? [body.title || body.description, body.detail].filter(Boolean).join(": ") : String(body);
    const err = new Error(msg || resp.status + " " + resp.statusText);
    err.status = resp.status;
    throw err;
  }
  return body;
}

function can(scope) { return scopes.includes(scope); }

function applyScopes() {
  for (const e of document.querySelectorAll("[data-scope]")) e.hidden = !can(e.dataset.scope);
}

async function signIn(key) {
  sessionStorage.setItem(KEY, key);
  try {
    const me = await api("/v1/whoami");
    scopes = me.scopes;
    $("who").textContent = `Signed in as ${me.name}: ${me.scopes.length ? "scopes " + me.scopes.join(", ") : "no scopes"}`;
    $("signin").hidden = true;
    $("session").hidden = false;
    $("tabs").hidden = false;
    applyScopes();
    showError("");
    selectTab("inspect");
  } catch (e) {
    sessionStorage.removeItem(KEY);
    showError("Sign-in failed: " + e.message);
  }
}

function signOut() {
  sessionStorage.removeItem(KEY);
  scopes = [];
  // Nothing of this session stays in the page for the next one.
  for (const id of ["token", "verify-key", "xid", "phone"]) $(id).value = "";
  for (const name of Object.keys(answers)) clearAnswer(name);
  $("signin").hidden = false;
  $("session").hidden = true;
  $("tabs").hidden = true;
  for (const s of document.querySelectorAll("main section")) s.hidden = true;
  $("apikey").value = "";
  $("apikey").focus();
}

function selectTab(name) {
  for (const b of document.querySelectorAll("#tabs button")) b.setAttribute("aria-selected", String(b.dataset.tab === name));
  for (const s of document.querySelectorAll("main section")) s.hidden = s.id !== name;
  showError("");
  if (name === "keys") loadKeys().catch((e) => showError(e.message));
  if (name === "activity") loadActivity().catch((e) => showError(e.message));
}

// Token inspector.

function b64urlDecode(s) {
  const b64 = s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4);
  const bin = atob(b64);
  return new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
}

function relative(seconds) {
  const abs = Math.abs(seconds);
  const unit = abs < 120 ? [Math.round(abs), "s"] : abs < 7200 ? [Math.round(abs / 60), "min"] : abs < 172800 ? [Math.round(abs / 3600), "h"] : [Math.round(abs / 86400), "d"];
  return unit[0] + " " + unit[1];
}

function timeLine(name, value, now) {
  const d = new Date(value * 1000);
  const delta = value - now;
  let rel = "";
  if (name === "exp") rel = delta >= 0 ? `expires in ${relative(delta)}` : `expired ${relative(delta)} ago`;
  else rel = delta >= 0 ? `in ${relative(delta)}` : `${relative(delta)} ago`;
  return [name, `${when(d.toISOString())} (${rel})`];
}

async function inspect(token) {
  clearAnswer("inspect");
  const parts = token.trim().split(".");
  if (parts.length !== 3) throw new Error("A JWT has three parts separated by dots.");
  let header, claims;
  try {
    header = JSON.parse(b64urlDecode(parts[0]));
    claims = JSON.parse(b64urlDecode(parts[1]));
  } catch {
    throw new Error("The header and claims are not base64url-encoded JSON.");
  }
  $("header-json").textContent = JSON.stringify(header, null, 2);
  $("claims-json").textContent = JSON.stringify(claims, null, 2);
  const times = $("times");
  const now = Date.now() / 1000;
  for (const name of ["iat", "nbf", "exp"]) {
    if (typeof claims[name] !== "number") continue;
    const [dt, dd] = timeLine(name, claims[name], now);
    times.append(el("dt", dt), el("dd", dd));
  }
  if (!times.children.length) times.append(el("dt", "none"), el("dd", "the token has no iat, nbf or exp"));
  const verdict = $("verdict");
  if (can("introspect")) {
    const r = await api("/v1/introspect", { method: "POST", body: new URLSearchParams({ token: token.trim() }) });
    verdict.textContent = r.active ? `Active: jwtd issued it and it is good now (key ${r.kid}).` : `Not active: ${r.reason}.`;
    verdict.className = r.active ? "verdict-good" : "verdict-bad";
  } else {
    verdict.textContent = "This key has no introspect scope: verify with a key below.";
    verdict.className = "";
  }
  $("inspect-out").hidden = false;
}

async function verifyWithKey(token, key) {
  clearAnswer("verify");
  const r = await api("/verifyToken", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ Token: token.trim(), Signing_key: key }) });
  const out = $("verify-out");
  out.textContent = r["Signature Verification"] ? "Verifies with this key." : `Does not verify: ${r.Error}`;
  out.className = r["Signature Verification"] ? "verdict-good" : "verdict-bad";
}

// Transactions.

function statusCell(status) { return el("td", status, "status-" + status); }

function recordRow(rec, second, onRevoked) {
  const tr = el("tr");
  tr.append(statusCell(rec.status), el("td", rec.jti, "jti"), el("td", second(rec) || ""), el("td", when(rec.issued_at)), el("td", when(rec.expires_at)));
  const td = el("td");
  if (can("admin") && rec.status === "active") {
    const b = el("button", "Revoke", "danger");
    b.type = "button";
    b.setAttribute("aria-label", "Revoke token " + rec.jti);
    b.addEventListener("click", () => confirmInline(td, b, "Revoke?", async () => {
      await api("/v1/revoke", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ jti: rec.jti }) });
      await onRevoked();
    }));
    td.append(b);
  }
  tr.append(td);
  return tr;
}

// confirmInline replaces a button by a question and Yes/Cancel buttons.
function confirmInline(container, button, question, action) {
  const box = el("span", question + " ");
  const yes = el("button", "Yes", "danger");
  const no = el("button", "Cancel");
  yes.type = no.type = "button";
  box.append(yes, " ", no);
  button.hidden = true;
  container.append(box);
  yes.focus();
  const done = () => { box.remove(); button.hidden = false; };
  no.addEventListener("click", () => { done(); button.focus(); });
  // Where focus goes once the table is drawn again without this row's button.
  const status = container.closest("div")?.querySelector("[role=status]");
  yes.addEventListener("click", async () => {
    try { await action(); } catch (e) { showError(e.message); done(); return; }
    status?.focus();
  });
}

let loadedXID = "";

async function loadTransaction(xid) {
  clearAnswer("xid");
  loadedXID = "";
  const t = await api("/v1/tokens/" + encodeURIComponent(xid));
  loadedXID = t.xid;
  const summary = t.summary ? `Latest outcome: ${t.summary.status}, ${when(t.summary.updated_on)}.` : "No outcome recorded yet.";
  $("xid-summary").textContent = `${t.records.length} token(s) for ${t.xid}. ${summary}`;
  const outcomes = $("outcomes").tBodies[0];
  for (const o of t.outcomes) {
    const tr = el("tr");
    tr.append(statusCell(o.status), el("td", o.code ?? ""), el("td", o.description ?? ""), el("td", when(o.updated_on)), el("td", o.source ?? ""));
    outcomes.append(tr);
  }
  if (!t.outcomes.length) outcomes.append(rowOf("none", 5));
  const body = $("xid-records").tBodies[0];
  body.replaceChildren(...t.records.map((r) => recordRow(r, (r) => r.phone, () => loadTransaction(xid))));
  labelCells($("outcomes"));
  labelCells($("xid-records"));
  $("revoke-xid").hidden = !can("admin") || !t.records.some((r) => r.status === "active");
  $("xid-out").hidden = false;
}

function rowOf(text, span) {
  const tr = el("tr");
  const td = el("td", text);
  td.colSpan = span;
  tr.append(td);
  return tr;
}

let phonePage = { phone: "", cursor: "", n: 0 };

async function loadPhone(phone, cursor) {
  clearAnswer("phone");
  const q = new URLSearchParams({ phone, limit: $("page-size").value });
  if (cursor) q.set("cursor", cursor);
  const page = await api("/v1/tokens?" + q);
  phonePage = { phone, cursor: page.next_cursor || "", n: cursor ? phonePage.n + 1 : 1 };
  $("phone-summary").textContent = `${page.phone}: page ${phonePage.n}, ${page.records.length} token(s)${page.next_cursor ? "" : ", the last page"}.`;
  const body = $("phone-records").tBodies[0];
  body.replaceChildren(...page.records.map((r) => recordRow(r, (r) => r.xid, () => loadPhone(phone, cursor))));
  labelCells($("phone-records"));
  $("next-page").hidden = !page.next_cursor;
  $("phone-out").hidden = false;
}

// Keys and activity.

async function loadKeys() {
  clearAnswer("keys");
  if (can("admin")) await loadKeyStates();
  const jwks = await api("/.well-known/jwks.json");
  const body = $("jwks").tBodies[0];
  body.replaceChildren(...jwks.keys.map((k) => {
    const tr = el("tr");
    tr.append(el("td", k.kid ?? "", "jti"), el("td", k.alg ?? ""), el("td", k.kty), el("td", k.use ?? ""));
    return tr;
  }));
  if (!jwks.keys.length) body.append(rowOf("No public keys: every profile signs with a secret.", 4));
  labelCells($("jwks"));
}

// loadKeyStates lists every key with its state and times, and offers a
// rotation for each managed profile not already rotating.
async function loadKeyStates() {
  const { keys } = await api("/v1/keys");
  const rotating = new Set(keys.filter((k) => k.state === "next").map((k) => k.profile));
  const at = (t) => (t ? when(t) : "–");
  const body = $("key-states").tBodies[0];
  body.replaceChildren(...keys.map((k) => {
    const tr = el("tr");
    const action = el("td");
    if (k.state === "current" && !rotating.has(k.profile)) {
      const b = el("button", "Rotate", "danger");
      b.type = "button";
      b.setAttribute("aria-label", "Rotate the keys of " + k.profile);
      b.addEventListener("click", () => confirmInline(action, b, rotateQuestion(k), async () => {
        await api("/v1/keys/rotate", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ profile: k.profile }) });
        await loadKeys();
      }));
      action.append(b);
    }
    tr.append(el("td", k.profile), el("td", k.kid, "jti"), el("td", k.alg), el("td", k.state, "state-" + k.state.split(",")[0]),
      el("td", at(k.activates)), el("td", k.state === "current" && !k.retires ? "until rotated by hand" : at(k.retires)), el("td", at(k.deletes)), action);
    return tr;
  }));
  labelCells($("key-states"));
  const next = keys.filter((k) => k.state === "next").map((k) => `${k.profile}'s next key signs from ${when(k.activates)}` +
    (isSecret(k) ? ` (a shared secret: give it to the clients before then; ${nextSecretCommand(k)})` : ""));
  $("keys-summary").textContent = `${keys.length} key(s).` + (next.length ? " " + next.join("; ") + "." : "");
}

// An HMAC key is a secret the clients that verify the profile's tokens hold
// too: they need the next one before it signs.
function isSecret(k) { return k.alg.startsWith("HS"); }

function nextSecretCommand(k) { return `get it with: jwtd keys show --profile ${k.profile} --next`; }

function rotateQuestion(k) {
  if (!isSecret(k)) return `Publish a new ${k.profile} key now?`;
  return `Make a new ${k.profile} secret (${k.alg}) now? It is shared: every client that verifies ${k.profile} tokens ` +
    `needs it before it starts signing, or those clients refuse the new tokens; ${nextSecretCommand(k)}.`;
}

const SVG = "http://www.w3.org/2000/svg";

async function loadActivity() {
  clearAnswer("activity");
  const { minutes } = await api("/v1/activity");
  const issued = minutes.map((m) => Object.values(m.issued).reduce((a, b) => a + b, 0));
  const limited = minutes.map((m) => m.rate_limited);
  const top = Math.max(1, ...issued, ...limited);
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${minutes.length * 10} 100`);
  svg.setAttribute("preserveAspectRatio", "none");
  minutes.forEach((m, i) => {
    for (const [value, cls, dx] of [[issued[i], "issued", 1], [limited[i], "limited", 5.5]]) {
      if (!value) continue;
      const r = document.createElementNS(SVG, "rect");
      const h = (value / top) * 100;
      r.setAttribute("x", String(i * 10 + dx));
      r.setAttribute("y", String(100 - h));
      r.setAttribute("width", "3.5");
      r.setAttribute("height", String(h));
      r.setAttribute("class", cls);
      const title = document.createElementNS(SVG, "title");
      title.textContent = `${when(m.start)}: ${value} ${cls === "issued" ? "issued" : "rate-limited"}`;
      r.append(title);
      svg.append(r);
    }
  });
  $("chart").append(svg);
  const totalIssued = issued.reduce((a, b) => a + b, 0);
  const totalLimited = limited.reduce((a, b) => a + b, 0);
  $("chart-label").textContent = `Last hour: ${totalIssued} token(s) issued (blue), ${totalLimited} request(s) rate-limited (red); the highest minute ${top}.`;
  const body = $("activity-table").tBodies[0];
  body.replaceChildren(...minutes.filter((m, i) => issued[i] || limited[i]).reverse().map((m) => {
    const tr = el("tr");
    const byProfile = Object.entries(m.issued).map(([p, n]) => `${p} ${n}`).join(", ");
    tr.append(el("td", when(m.start)), el("td", byProfile || "0"), el("td", m.rate_limited));
    return tr;
  }));
  if (!body.children.length) body.append(rowOf("Nothing in the last hour.", 3));
  labelCells($("activity-table"));
}

// Wiring.

function guard(fn) {
  return (ev) => {
    ev.preventDefault();
    showError("");
    Promise.resolve(fn()).catch((e) => showError(e.message));
  };
}

document.addEventListener("DOMContentLoaded", () => {
  $("signin").addEventListener("submit", guard(() => signIn($("apikey").value.trim())));
  $("signout").addEventListener("click", signOut);
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => selectTab(b.dataset.tab));
  $("inspect-form").addEventListener("submit", guard(() => inspect($("token").value)));
  $("verify-form").addEventListener("submit", guard(() => verifyWithKey($("token").value, $("verify-key").value)));
  $("xid-form").addEventListener("submit", guard(() => loadTransaction($("xid").value.trim())));
  $("phone-form").addEventListener("submit", guard(() => loadPhone($("phone").value.trim(), "")));
  $("next-page").addEventListener("click", guard(() => loadPhone(phonePage.phone, phonePage.cursor)));
  $("revoke-xid").addEventListener("click", () => {
    $("revoke-xid").hidden = true;
    $("confirm-xid").hidden = false;
    $("confirm-xid-yes").focus();
  });
  $("confirm-xid-no").addEventListener("click", () => {
    $("confirm-xid").hidden = true;
    $("revoke-xid").hidden = false;
    $("revoke-xid").focus();
  });
  // The transaction shown, whatever the XID field says now.
  $("confirm-xid-yes").addEventListener("click", guard(async () => {
    const xid = loadedXID;
    await api("/v1/revoke", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ xid }) });
    await loadTransaction(xid);
    $("xid-summary").focus();
  }));
  $("xid").addEventListener("input", () => { $("confirm-xid").hidden = true; });
  const saved = sessionStorage.getItem(KEY);
  if (saved) signIn(saved);
  else $("apikey").focus();
});

// For the screens in files of their own (audit.js).
export { api, el, when, rowOf, guard };
