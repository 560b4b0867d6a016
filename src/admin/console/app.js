// voxgate admin console: a hash-routed single page over the admin API (no build step).
const $ = (id) => document.getElementById(id);
const KEY = "voxgate-token";
const PAGES = ["overview", "numbers", "speech", "advanced", "calls", "usage", "logs"];
let settings = null;
let liveTimer = null;
let liveCount = 0;

/** An API failure, with the server's JSON body (fields / rows) when there is one. */
class ApiFailure extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

async function api(method, path, body, type) {
  const headers = { Authorization: `Bearer ${sessionStorage.getItem(KEY) || ""}` };
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = type || "application/json";
    payload = type ? body : JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(path, { method, headers, body: payload });
  } catch (e) {
    throw new ApiFailure(0, { message: `network error: ${e.message}` });
  }
  if (r.status === 401) {
    signOut("The token was refused; sign in again.");
    throw new ApiFailure(401, { message: "unauthorized" });
  }
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!r.ok) throw new ApiFailure(r.status, typeof data === "object" ? data : { message: String(data) });
  return data;
}

function showErr(el, e) {
  el.textContent = e ? (e.message || String(e)) : "";
}

function el(tag, attrs = {}, ...kids) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "onclick") n.addEventListener("click", v);
    else n.setAttribute(k, v);
  }
  for (const k of kids) n.append(k);
  return n;
}

// ---------- sign in ----------
function signOut(msg) {
  sessionStorage.removeItem(KEY);
  clearInterval(liveTimer);
  $("app").hidden = true;
  $("login").hidden = false;
  $("login-err").textContent = msg || "";
  $("token").focus();
}

$("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(KEY, $("token").value.trim());
  try {
    await api("GET", "/v1/integration");
    $("token").value = "";
    $("login-err").textContent = "";
    start();
  } catch (e) {
    if (e.status !== 401) showErr($("login-err"), e);
  }
});
$("logout").addEventListener("click", () => signOut());

function start() {
  $("login").hidden = true;
  $("app").hidden = false;
  route();
}

function route() {
  const page = PAGES.includes(location.hash.slice(1)) ? location.hash.slice(1) : "overview";
  for (const p of PAGES) $(`page-${p}`).hidden = p !== page;
  for (const a of document.querySelectorAll("nav a")) {
    if (a.getAttribute("href") === `#${page}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  clearInterval(liveTimer);
  LOADERS[page]();
}
window.addEventListener("hashchange", () => {
  if ($("app").hidden) return;
  route();
  // Move keyboard and screen-reader focus to the new page's heading.
  const page = PAGES.includes(location.hash.slice(1)) ? location.hash.slice(1) : "overview";
  const h = $(`h-${page}`);
  h.setAttribute("tabindex", "-1");
  h.focus();
});

// ---------- overview ----------
const PLAN_CAP = { trial: 5, plus: 100, enterprise: 1000 };
function planCap(plan) {
  if (typeof plan === "string") return PLAN_CAP[plan];
  return plan && plan.custom !== undefined ? plan.custom : null;
}
function planName(plan) { return typeof plan === "string" ? plan : "custom"; }

async function loadOverview() {
  showErr($("ov-err"), null);
  const list = $("ov-list");
  list.replaceChildren();
  const add = (k, v) => list.append(el("dt", {}, k), el("dd", {}, String(v)));
  try {
    const o = await api("GET", "/v1/overview");
    const uris = [];
    if (o.sip_listeners) {
      const host = (addr) => {
        const i = addr.lastIndexOf(":");
        let h = addr.slice(0, i); const port = addr.slice(i + 1);
        if (o.sip_listeners.unspecified_ip) h = location.hostname.includes(":") ? `[${location.hostname}]` : location.hostname;
        return `${h}:${port}`;
      };
      uris.push(`sip:${host(o.sip_listeners.udp)};transport=udp`, `sip:${host(o.sip_listeners.tcp)};transport=tcp`, `sips:${host(o.sip_listeners.tls)}`);
      add("SIP listeners", `UDP ${o.sip_listeners.udp}, TCP ${o.sip_listeners.tcp}, TLS ${o.sip_listeners.tls}`);
    } else {
      add("SIP listeners", "not bound yet");
    }
    $("sip-uri").textContent = uris[0] || "(the SIP listeners are not up yet)";
    $("sip-uri-more").textContent = uris.slice(1).join("  ·  ");
    add("TLS certificate", certText(o.tls_certificate));
    add("Health", o.ready ? "ready" : o.draining ? "draining" : "not ready");
    add("Plan", planName(o.plan));
    add("Concurrent calls", `${o.active_calls} of ${o.max_concurrent_calls}`);
    add("Secure trunking (SRTP)", o.force_secure_trunking ? "required" : "optional");
    add("SIP authentication (TLS only)", o.sip_auth ? "on" : "off");
  } catch (e) { showErr($("ov-err"), e); }
}
/** The TLS listener's certificate in one line. */
function certText(c) {
  if (!c) return "not loaded yet";
  const kind = c.self_signed ? "self-signed, generated at start-up (trunks cannot verify it; configure sip.tls_cert and sip.tls_key)" : `configured (${c.path || "file"})`;
  const parts = [kind];
  if (c.subject) parts.push(`subject ${c.subject}`);
  if (c.issuer && c.issuer !== c.subject) parts.push(`issued by ${c.issuer}`);
  if (c.not_after) parts.push(c.expired ? `EXPIRED on ${c.not_after.slice(0, 10)}` : `expires ${c.not_after.slice(0, 10)}${c.days_left != null && c.days_left < 30 ? ` (in ${c.days_left} days)` : ""}`);
  return parts.join("; ");
}
$("copy-uri").addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText($("sip-uri").textContent);
    $("copy-msg").textContent = "Copied.";
  } catch {
    const r = document.createRange(); r.selectNodeContents($("sip-uri"));
    getSelection().removeAllRanges(); getSelection().addRange(r);
    $("copy-msg").textContent = "Selected; press Ctrl+C to copy.";
  }
});

// ---------- phone numbers ----------
/** Client-side E.164 check as typed; the server's check is authoritative. */
export function checkE164(raw) {
  const t = raw.trim();
  if (!t) return "Enter a number.";
  if (/[()]/.test(t)) return "Don't surround the area code with parentheses: use +1 958 555 0123, not (958).";
  if (!t.startsWith("+")) return "Start with + and the country code, e.g. +1 958 555 0123.";
  if (/[^+\d \-.]/.test(t)) return "Only digits, spaces, dashes and dots after the +.";
  const digits = t.replace(/\D/g, "");
  if (digits.startsWith("0")) return "A country code doesn't start with 0.";
  if (digits.length < 8) return `Too short: ${digits.length} digits.`;
  if (digits.length > 15) return `Too long: ${digits.length} digits (E.164 allows 15).`;
  return "";
}

$("num-new").addEventListener("input", () => {
  const why = checkE164($("num-new").value);
  $("num-hint").textContent = why || "Looks like a valid international number.";
  $("num-hint").className = why ? "err" : "ok";
  $("num-new").setAttribute("aria-invalid", why ? "true" : "false");
});

async function loadNumbers() {
  showErr($("num-list-err"), null);
  try {
    const rows = await api("GET", "/v1/numbers");
    const body = $("num-rows");
    body.replaceChildren();
    if (!rows.length) body.append(el("tr", {}, el("td", { colspan: "3" }, "No numbers yet.")));
    for (const r of rows) {
      const del = el("button", { type: "button", class: "secondary", "aria-label": `Delete ${r.number}` }, "Delete");
      del.addEventListener("click", async () => {
        try { await api("DELETE", `/v1/numbers/${encodeURIComponent(r.number)}`); loadNumbers(); }
        catch (e) { showErr($("num-list-err"), e); }
      });
      body.append(el("tr", { "data-number": r.number }, el("td", {}, r.number), el("td", {}, r.description || ""), el("td", {}, del)));
    }
  } catch (e) { showErr($("num-list-err"), e); }
}

$("num-add").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const why = checkE164($("num-new").value);
  if (why) { showErr($("num-add-err"), { message: why }); $("num-new").focus(); return; }
  try {
    await api("POST", "/v1/numbers", { number: $("num-new").value, description: $("num-desc").value });
    showErr($("num-add-err"), null);
    $("num-new").value = ""; $("num-desc").value = ""; $("num-hint").textContent = "";
    loadNumbers();
  } catch (e) {
    const f = (e.body.fields || []).map((x) => `${x.field}: ${x.reason}`).join("; ");
    showErr($("num-add-err"), { message: f || e.message });
  }
});

$("num-csv").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const file = $("csv-file").files[0];
  $("csv-err").replaceChildren();
  $("csv-msg").textContent = "";
  if (!file) return;
  if (!confirm("The uploaded numbers replace every number in the table. Continue?")) return;
  try {
    const r = await api("PUT", "/v1/numbers", await file.text(), "text/csv");
    $("csv-msg").textContent = `The list now holds ${r.count} number(s).`;
    loadNumbers();
  } catch (e) {
    const box = $("csv-err");
    box.append(el("p", {}, e.message));
    if (e.body.rows) {
      const t = el("table", { id: "csv-rows" }, el("caption", {}, "Rows refused"),
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Line"), el("th", { scope: "col" }, "Value"), el("th", { scope: "col" }, "Reason"))));
      const tb = el("tbody");
      for (const row of e.body.rows) tb.append(el("tr", {}, el("td", {}, String(row.line)), el("td", {}, row.value), el("td", {}, row.reason)));
      t.append(tb);
      box.append(t);
    }
  }
});

// ---------- speech ----------
async function loadSpeech() {
  showErr($("speech-err"), null);
  try {
    settings = await api("GET", "/v1/integration");
    $("stt-cust").value = settings.stt_customization_id || "";
  } catch (e) { showErr($("speech-err"), e); return; }
  const models = $("stt-model");
  models.replaceChildren(el("option", { value: "" }, "The assistant's language (provider default)"));
  try {
    const r = await api("GET", "/v1/speech/models");
    for (const m of r.models) models.append(el("option", { value: m.name }, `${m.name} — ${m.language}${m.rate ? `, ${m.rate / 1000} kHz` : ""}${m.description ? ", " + m.description : ""}`));
    showErr($("stt-err"), null);
  } catch (e) { showErr($("stt-err"), e); }
  if (settings.stt_model && ![...models.options].some((o) => o.value === settings.stt_model)) {
    models.append(el("option", { value: settings.stt_model }, `${settings.stt_model} (not offered by the provider)`));
  }
  models.value = settings.stt_model || "";
  const sel = $("tts-voice");
  sel.replaceChildren(el("option", { value: "" }, "Provider default"));
  try {
    const r = await api("GET", "/v1/speech/voices");
    for (const v of r.voices) sel.append(el("option", { value: v.name }, `${v.name} — ${v.language}, ${v.gender}${v.description ? ", " + v.description : ""}`));
    showErr($("sample-err"), null);
  } catch (e) { showErr($("sample-err"), e); }
  if (settings.tts_voice && ![...sel.options].some((o) => o.value === settings.tts_voice)) {
    sel.append(el("option", { value: settings.tts_voice }, `${settings.tts_voice} (not offered by the provider)`));
  }
  sel.value = settings.tts_voice || "";
}

$("play-sample").addEventListener("click", async () => {
  showErr($("sample-err"), null);
  $("sample-msg").textContent = "Synthesizing…";
  try {
    const r = await fetch("/v1/speech/sample", {
      method: "POST",
      headers: { Authorization: `Bearer ${sessionStorage.getItem(KEY) || ""}`, "Content-Type": "application/json" },
      body: JSON.stringify({ voice: $("tts-voice").value || null }),
    });
    if (!r.ok) { const b = await r.json().catch(() => ({})); throw new ApiFailure(r.status, b); }
    const blob = await r.blob();
    const a = $("sample-audio");
    if (a.src) URL.revokeObjectURL(a.src);
    a.src = URL.createObjectURL(blob);
    a.hidden = false;
    a.dataset.bytes = String(blob.size);
    $("sample-msg").textContent = `Sample ready (${((blob.size - 44) / 16000).toFixed(1)} s).`;
    a.play().catch(() => {});
  } catch (e) { $("sample-msg").textContent = ""; showErr($("sample-err"), e); }
});
$("speech-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const opt = (v) => (v.trim() ? v.trim() : null);
  try {
    const cur = await api("GET", "/v1/integration");
    settings = await api("PUT", "/v1/integration", { ...cur, stt_model: opt($("stt-model").value), stt_customization_id: opt($("stt-cust").value), tts_voice: opt($("tts-voice").value) });
    $("speech-msg").textContent = "Saved.";
    showErr($("speech-err"), null);
  } catch (e) { showErr($("speech-err"), e); }
});

// ---------- advanced options ----------
const SIP_URI = /^(sips?:([^@\s]+@)?[A-Za-z0-9.\-\[\]:]+(;[^\s]*)?|tel:\+?[\d\-.()]+(;[^\s]*)?)$/;
const TOKEN_RE = /^[A-Za-z0-9\-.!%*_+`'~]+$/;

function advErrors() {
  const errs = {};
  const t = $("adv-target").value.trim();
  if (t && !SIP_URI.test(t)) errs["adv-target"] = "Not a SIP or tel URI (e.g. sip:queue@pbx.example.com).";
  const n = [...$("adv-tfm").value].length;
  if (n > 1024) errs["adv-tfm"] = `${n} characters; at most 1,024.`;
  const bad = $("adv-headers").value.split(",").map((h) => h.trim()).filter((h) => h && !TOKEN_RE.test(h));
  if (bad.length) errs["adv-headers"] = `Not header names: ${bad.join(", ")}`;
  if ($("adv-auth").checked && !$("adv-user").value.trim()) errs["adv-user"] = "A user name is required with SIP authentication.";
  return errs;
}

function renderAdvValidation() {
  const errs = advErrors();
  const n = [...$("adv-tfm").value].length;
  $("adv-tfm-c").textContent = `${n} / 1,024 characters`;
  $("adv-tfm-c").className = n > 1024 ? "err" : "hint";
  for (const id of ["adv-target", "adv-tfm", "adv-headers", "adv-user"]) $(id).setAttribute("aria-invalid", errs[id] ? "true" : "false");
  $("adv-target-e").textContent = errs["adv-target"] || "";
  $("adv-headers-e").textContent = errs["adv-headers"] || "";
  $("adv-auth-e").textContent = errs["adv-user"] || "";
  return errs;
}
for (const id of ["adv-target", "adv-tfm", "adv-headers", "adv-user", "adv-auth"]) $(id).addEventListener("input", renderAdvValidation);

async function loadAdvanced() {
  $("adv-msg").textContent = ""; $("adv-err").replaceChildren();
  try {
    const s = await api("GET", "/v1/integration");
    settings = s;
    $("adv-target").value = s.call_failure_sip_target || "";
    $("adv-cfm").value = s.call_failure_message;
    $("adv-tfm").value = s.transfer_failure_message;
    $("adv-disc").checked = s.disconnect_on_transfer_failure;
    $("adv-srtp").checked = s.force_secure_trunking;
    $("adv-auth").checked = !!s.sip_auth;
    $("adv-user").value = s.sip_auth ? s.sip_auth.username : "";
    $("adv-pass").value = s.sip_auth ? s.sip_auth.password : "";
    $("adv-headers").value = s.invite_headers_to_extract.join(", ");
    $("adv-ring").checked = s.disable_ringing;
    $("adv-hold").checked = s.no_hold_on_transfer;
    $("adv-plan").value = planName(s.plan);
    $("adv-cap").value = planCap(s.plan);
    $("adv-busy").value = s.busy_response.kind;
    $("adv-retry").value = s.busy_response.retry_after_secs ?? 30;
    renderAdvValidation();
  } catch (e) { $("adv-err").textContent = e.message; }
}

$("adv-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("adv-msg").textContent = ""; $("adv-err").replaceChildren();
  const errs = renderAdvValidation();
  const first = Object.keys(errs)[0];
  if (first) { $(first).focus(); $("adv-err").textContent = "Fix the marked fields first."; return; }
  const plan = $("adv-plan").value === "custom" ? { custom: Number($("adv-cap").value) } : $("adv-plan").value;
  const busy = $("adv-busy").value === "busy_here" ? { kind: "busy_here" } : { kind: "service_unavailable", retry_after_secs: Number($("adv-retry").value) };
  const body = {
    ...settings,
    call_failure_sip_target: $("adv-target").value.trim() || null,
    call_failure_message: $("adv-cfm").value,
    transfer_failure_message: $("adv-tfm").value,
    disconnect_on_transfer_failure: $("adv-disc").checked,
    force_secure_trunking: $("adv-srtp").checked,
    sip_auth: $("adv-auth").checked ? { username: $("adv-user").value.trim(), password: $("adv-pass").value } : null,
    invite_headers_to_extract: $("adv-headers").value.split(",").map((h) => h.trim()).filter(Boolean),
    disable_ringing: $("adv-ring").checked,
    no_hold_on_transfer: $("adv-hold").checked,
    plan, busy_response: busy,
  };
  try {
    settings = await api("PUT", "/v1/integration", body);
    $("adv-msg").textContent = "Saved. New calls use these options.";
  } catch (e) {
    const ul = el("ul");
    for (const f of e.body.fields || []) ul.append(el("li", {}, `${f.field}: ${f.reason}`));
    $("adv-err").append(el("p", {}, e.message), ul);
  }
});

// ---------- calls ----------
const fmtDur = (ms) => (ms == null ? "" : `${Math.round(ms / 1000)} s`);

const STATE_LABEL = { ringing: "ringing", answered: "in conversation", on_hold: "on hold", transferring: "transferring to an agent" };

async function refreshLive() {
  try {
    const live = await api("GET", "/v1/calls/live");
    $("live-summary").textContent = `${live.calls.length} call(s) up.`;
    if (live.calls.length !== liveCount) { liveCount = live.calls.length; searchCalls(); }
    const tb = $("live-rows");
    tb.replaceChildren();
    for (const c of live.calls) {
      tb.append(el("tr", { class: "live-call", "data-call-id": c.sip_call_id }, el("td", {}, c.caller || ""), el("td", {}, c.called || ""),
        el("td", { class: "live-state" }, STATE_LABEL[c.state] || c.state), el("td", {}, fmtDur(c.duration_ms)),
        el("td", { class: "live-turn" }, c.turns ? String(c.turns) : "–")));
    }
    showErr($("live-err"), null);
  } catch (e) { showErr($("live-err"), e); }
}

async function loadCalls() {
  refreshLive();
  liveTimer = setInterval(refreshLive, 1000);
  searchCalls();
}

async function searchCalls() {
  const q = new URLSearchParams();
  if ($("cf-from").value) q.set("from", $("cf-from").value);
  if ($("cf-to").value) q.set("to", $("cf-to").value);
  if ($("cf-num").value.trim()) q.set("number", $("cf-num").value.trim());
  if ($("cf-out").value) q.set("outcome", $("cf-out").value);
  q.set("limit", "200");
  try {
    const r = await api("GET", `/v1/calls?${q}`);
    showErr($("calls-err"), null);
    const tb = $("call-rows");
    tb.replaceChildren();
    for (const c of r.calls) {
      const b = el("button", { type: "button", class: "secondary", "aria-label": `Details of call ${c.sip_call_id}` }, "Details");
      b.addEventListener("click", () => showCall(c));
      tb.append(el("tr", { class: "call-record" }, el("td", {}, c.start_timestamp), el("td", {}, c.caller_number || c.caller_hash.slice(0, 8)), el("td", {}, c.called_number),
        el("td", {}, c.outcome ? (c.outcome.kind || JSON.stringify(c.outcome)) : "in progress"), el("td", {}, fmtDur(c.milliseconds_elapsed)), el("td", {}, String(c.turns)), el("td", {}, b)));
    }
    if (!r.calls.length) tb.append(el("tr", {}, el("td", { colspan: "7" }, "No calls match.")));
  } catch (e) {
    showErr($("calls-err"), { message: e.body.field ? `${e.body.field}: ${e.message}` : e.message });
  }
}
$("calls-filter").addEventListener("submit", (ev) => { ev.preventDefault(); searchCalls(); });

/** Total of one turn's latencies (speech to text + assistant + text to speech), ms. */
function turnTotal(t) {
  if (typeof t === "number") return t;
  return ["speech_to_text_ms", "assistant_ms", "text_to_speech_ms"].reduce((a, k) => a + (t[k] || 0), 0);
}
const ms = (v) => (v == null ? "–" : `${v} ms`);

function showCall(c) {
  const d = $("call-detail");
  d.hidden = false;
  const tb = el("tbody");
  const turns = c.turn_latencies || [];
  const said = (v, none) => (v ? v : el("span", { class: "hint" }, none));
  turns.forEach((t, i) => tb.append(el("tr", { class: "turn" }, el("th", { scope: "row" }, String(i + 1)),
    el("td", { class: "said-caller" }, said(t.input, i === 0 ? "(call answered)" : "–")),
    el("td", { class: "said-assistant" }, said(t.response, "(no speech)")),
    el("td", {}, ms(t.speech_to_text_ms)), el("td", {}, ms(t.assistant_ms)), el("td", {}, ms(t.text_to_speech_ms)), el("td", {}, ms(turnTotal(t))))));
  if (!turns.length) tb.append(el("tr", {}, el("td", { colspan: "7" }, "No turns recorded.")));
  const worst = turns.length ? Math.max(...turns.map(turnTotal)) : null;
  const anyText = turns.some((t) => t.input || t.response);
  d.replaceChildren(el("h3", {}, `Call ${c.sip_call_id}`),
    el("p", {}, `Instance ${c.instance_id}; outcome ${c.outcome ? c.outcome.kind : "in progress"}; setup ${ms(c.setup_milliseconds)}; slowest turn ${ms(worst)}; MOS ${c.mos != null ? c.mos.toFixed(2) : "–"}`),
    el("p", {}, c.failure_details || ""),
    turns.length && !anyText ? el("p", { class: "hint" }, "No transcript text: it is not stored while log redaction is on.") : "",
    el("table", { id: "turn-table" }, el("caption", {}, "Transcript, turn by turn, with latencies"),
      el("thead", {}, el("tr", {}, ...["Turn", "Caller said", "Assistant said", "Speech to text", "Assistant", "Text to speech", "Total"].map((h) => el("th", { scope: "col" }, h)))), tb));
  d.focus();
}

// ---------- usage (hand-drawn SVG charts) ----------
function barChart(labels, values, unit) {
  const W = 640, H = 180, pad = 30, n = Math.max(values.length, 1);
  const max = Math.max(1, ...values);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H + 20}`); svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", labels.map((l, i) => `${l}: ${values[i]} ${unit}`).join("; "));
  svg.style.maxWidth = "100%";
  const bw = (W - pad) / n;
  values.forEach((v, i) => {
    const h = (v / max) * (H - 20);
    const r = document.createElementNS(ns, "rect");
    Object.entries({ x: pad + i * bw + 2, y: H - h, width: Math.max(bw - 4, 1), height: h, class: "bar" }).forEach(([k, x]) => r.setAttribute(k, x));
    svg.append(r);
    if (n <= 24 || i % 4 === 0) { const t = document.createElementNS(ns, "text"); t.setAttribute("x", pad + i * bw + 2); t.setAttribute("y", H + 14); t.textContent = labels[i]; svg.append(t); }
  });
  const t = document.createElementNS(ns, "text"); t.setAttribute("x", 0); t.setAttribute("y", 12); t.textContent = `${max}`; svg.append(t);
  return svg;
}

async function loadUsage() {
  showErr($("usage-err"), null);
  try {
    const months = [];
    const d = new Date();
    for (let i = 5; i >= 0; i--) { const m = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - i, 1)); months.push(m.toISOString().slice(0, 7)); }
    const maus = await Promise.all(months.map((m) => api("GET", `/v1/usage/mau?month=${m}`)));
    $("mau-chart").replaceChildren(barChart(months, maus.map((x) => x.monthly_active_users), "users"));
    const since = Date.now() - 24 * 3600 * 1000;
    const r = await api("GET", `/v1/calls?from=${since}&limit=10000`);
    const hours = Array(24).fill(0);
    const hl = [];
    for (let i = 0; i < 24; i++) hl.push(String(new Date(since + (i + 1) * 3600e3).getUTCHours()).padStart(2, "0"));
    const lat = [];
    for (const c of r.calls) {
      const i = Math.floor((c.started_at - since) / 3600e3);
      if (i >= 0 && i < 24) hours[i]++;
      for (const t of c.turn_latencies || []) lat.push(turnTotal(t));
    }
    $("cph-chart").replaceChildren(barChart(hl, hours, "calls"));
    const edges = [100, 200, 400, 800, 1600, 3200, Infinity];
    const bins = edges.map(() => 0);
    for (const v of lat) bins[edges.findIndex((e) => v < e)]++;
    $("lat-chart").replaceChildren(barChart(edges.map((e, i) => (e === Infinity ? `≥${edges[i - 1]}` : `<${e}`)), bins, "turns"));
  } catch (e) { showErr($("usage-err"), e); }
}

// ---------- logs ----------
$("logs-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    const r = await api("GET", `/v1/logs?q=${encodeURIComponent($("logs-q").value)}&limit=500`);
    const fmt = (l) => {
      if (typeof l === "string") return l;
      const { timestamp, level, message, target, ...rest } = l;
      return [timestamp, level, message, ...Object.entries(rest).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)].filter(Boolean).join("  ");
    };
    $("logs-out").textContent = r.lines.map(fmt).join("\n") || "No matching lines.";
    showErr($("logs-err"), null);
  } catch (e) { showErr($("logs-err"), e); }
});

const LOADERS = { overview: loadOverview, numbers: loadNumbers, speech: loadSpeech, advanced: loadAdvanced, calls: loadCalls, usage: loadUsage, logs: () => $("logs-q").focus() };

if (sessionStorage.getItem(KEY)) start(); else signOut();
