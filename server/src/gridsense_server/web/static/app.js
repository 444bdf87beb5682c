// gridsense control-room and grid-worker page: sign in, list incidents of the user's grids,
// follow them live over the WebSocket stream, and show gateways. No framework, no CDN.
// Signed in by an httpOnly session cookie the script never sees; every request that changes
// something carries the session's CSRF token (from GET /api/v1/auth/session) in X-CSRF-Token.
"use strict";

const state = { signedIn: false, csrf: null, user: null, incidents: new Map(), ws: null, retry: 0,
                selected: null, poller: null };
// Button labels for the actions the server says the user may take (detail.actions).
const ACTION_LABELS = { accept: "Accept", note: "Add note", resolve: "Resolve", verify: "Verify and close",
                        return: "Return", defer: "Defer", invalidate: "False alarm" };
const $ = (sel) => document.querySelector(sel);

function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

// background: a timer's request, which must not keep an idle session alive.
async function api(path, options = {}, background = false) {
  const headers = { "Content-Type": "application/json", ...(options.headers || {}) };
  if (options.method && options.method !== "GET" && state.csrf) headers["X-CSRF-Token"] = state.csrf;
  if (background) headers["X-Gridsense-Background"] = "1";
  const resp = await fetch(path, { ...options, headers, credentials: "same-origin" });
  if (resp.status === 401) { signOut("会话已结束，请重新登录 / Your session ended: sign in again."); throw new Error("signed out"); }
  if (!resp.ok) {
    let detail = `HTTP ${resp.status}`;
    try { detail = (await resp.json()).detail || detail; } catch (e) { /* not JSON */ }
    throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
  }
  return resp.status === 204 ? null : resp.json();
}

function cell(tr, label, text, cls) {
  const td = document.createElement("td");
  td.dataset.label = label;
  td.textContent = text ?? "";
  if (cls) td.className = cls;
  tr.appendChild(td);
}

function renderIncidents(freshId) {
  const body = $("#incidents tbody");
  body.replaceChildren();
  const rows = [...state.incidents.values()].sort((a, b) => (b.last_seen_at || "").localeCompare(a.last_seen_at || ""));
  for (const inc of rows) {
    const tr = document.createElement("tr");
    tr.dataset.id = inc.id;
    if (inc.id === freshId) tr.className = "fresh";
    if (inc.id === state.selected) tr.classList.add("selected");
    tr.addEventListener("click", () => openDetail(inc.id));
    cell(tr, "Opened", fmtTime(inc.opened_at));
    cell(tr, "Type", inc.type);
    cell(tr, "Point", inc.point);
    cell(tr, "Grid", inc.grid ?? "—");
    cell(tr, "Severity", inc.severity, `sev sev-${inc.severity}`);
    cell(tr, "Alarm", inc.alarm, `alarm-${inc.alarm}`);
    cell(tr, "State", inc.backfilled ? `${inc.state} (backfilled)` : inc.state);
    cell(tr, "Due", dueText(inc), inc.overdue ? "overdue" : "");
    cell(tr, "Count", String(inc.count));
    cell(tr, "Last seen", fmtTime(inc.last_seen_at));
    body.appendChild(tr);
  }
  $("#incident-count").textContent = rows.length ? `(${rows.length})` : "";
  $("#no-incidents").hidden = rows.length > 0;
}

function dueText(inc) {
  const due = ["new", "returned"].includes(inc.state) ? inc.accept_due_at : inc.state === "accepted" ? inc.resolve_due_at : null;
  if (!due) return "";
  return (inc.overdue ? "overdue since " : "by ") + fmtTime(due);
}

function field(dl, name, value) {
  const dt = document.createElement("dt");
  dt.textContent = name;
  const dd = document.createElement("dd");
  dd.textContent = value ?? "—";
  dl.append(dt, dd);
}

async function showSnapshot(id) {
  // Fetched rather than <img src>: the request goes through the same session checks.
  const img = $("#detail-snapshot");
  if (img.src) URL.revokeObjectURL(img.src);
  img.hidden = true;
  img.removeAttribute("src");
  const resp = await fetch(`/api/v1/incidents/${encodeURIComponent(id)}/snapshot`,
    { credentials: "same-origin" });
  if (!resp.ok || state.selected !== id) return;  // none (not a camera incident), or moved on
  img.src = URL.createObjectURL(await resp.blob());
  img.hidden = false;
}

async function openDetail(id) {
  const moved = state.selected !== id;
  state.selected = id;
  if (location.hash !== `#incident=${id}`) history.replaceState(null, "", `#incident=${id}`);
  $("#action-error").textContent = "";
  let inc;
  try { inc = await api(`/api/v1/incidents/${encodeURIComponent(id)}`); } catch (e) {
    $("#action-error").textContent = e.message; $("#detail").hidden = false; return;
  }
  state.incidents.set(inc.id, inc);
  renderIncidents();
  $("#detail").hidden = false;
  $("#detail-id").textContent = inc.id;
  if (moved) $("#detail").scrollIntoView({ block: "start" });  // on a phone: below the list
  // Again on each update while none is shown: the JPEG may arrive after its incident.
  if (moved || $("#detail-snapshot").hidden) showSnapshot(inc.id);
  const dl = $("#detail-fields");
  dl.replaceChildren();
  field(dl, "Type", `${inc.type} (${inc.severity}, ${inc.level} level)`);
  field(dl, "Point", `${inc.point} — grid ${inc.grid ?? "none"}`);
  field(dl, "State", inc.state + (inc.overdue ? " — OVERDUE" : ""));
  field(dl, "Alarm", `${inc.alarm} (${inc.count}×, last ${fmtTime(inc.last_seen_at)})`);
  field(dl, "Accepted by", inc.accepted_by);
  field(dl, "Accept by", fmtTime(inc.accept_due_at));
  field(dl, "Resolve by", fmtTime(inc.resolve_due_at));
  if (inc.previous_id) field(dl, "Reopens", inc.previous_id);
  const actions = $("#actions");
  actions.replaceChildren();
  for (const name of inc.actions) {
    actions.appendChild(actionButton(inc.id, name, ACTION_LABELS[name] || name, {}));
    if (name === "verify") actions.appendChild(actionButton(inc.id, name, "Send back for rework", { passed: false }));
  }
  const list = $("#history");
  list.replaceChildren();
  for (const h of inc.history) {
    const li = document.createElement("li");
    const move = h.from_state && h.from_state !== h.to_state ? ` ${h.from_state} → ${h.to_state}` : "";
    li.textContent = `${fmtTime(h.at)} ${h.action}${move} by ${h.actor}${h.note ? ": " + h.note : ""}` +
      (h.photos.length ? ` [${h.photos.length} photo(s)]` : "");
    list.appendChild(li);
  }
}

function actionButton(id, action, label, extra) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = label;
  button.addEventListener("click", async () => {
    $("#action-error").textContent = "";
    const photos = $("#action-photos").value.split("\n").map((p) => p.trim()).filter(Boolean);
    try {
      await api(`/api/v1/incidents/${encodeURIComponent(id)}/${action}`, { method: "POST",
        body: JSON.stringify({ note: $("#action-note").value, photos, ...extra }) });
      $("#action-note").value = "";
      $("#action-photos").value = "";
    } catch (e) { $("#action-error").textContent = e.message; }
    openDetail(id);
  });
  return button;
}

function closeDetail() {
  state.selected = null;
  $("#detail").hidden = true;
  history.replaceState(null, "", location.pathname);
  renderIncidents();
}

function renderGateways(gateways) {
  const body = $("#gateways tbody");
  body.replaceChildren();
  for (const gw of gateways) {
    const tr = document.createElement("tr");
    cell(tr, "Gateway", gw.id);
    cell(tr, "State", gw.state, `state-${gw.state}`);
    cell(tr, "Last seen", fmtTime(gw.last_seen_at));
    const drivers = gw.health && gw.health.drivers ? Object.entries(gw.health.drivers).map(([k, v]) => `${k}: ${v.state}`).join(", ") : "";
    cell(tr, "Drivers", drivers);
    body.appendChild(tr);
  }
}

async function refresh(background = false) {
  const [incidents, gateways] = await Promise.all([api("/api/v1/incidents", {}, background),
                                                   api("/api/v1/gateways", {}, background)]);
  state.incidents = new Map(incidents.map((i) => [i.id, i]));
  renderIncidents();
  renderGateways(gateways);
}

function connectStream() {
  if (!state.signedIn) return;
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${proto}://${location.host}/api/v1/stream`);  // the cookie goes along
  state.ws = ws;
  ws.onopen = () => { state.retry = 0; $("#live").hidden = false; refresh(true).catch(() => {}); };
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type === "incident" && msg.incident) {
      state.incidents.set(msg.incident.id, msg.incident);
      renderIncidents(msg.incident.id);
      if (msg.incident.id === state.selected) openDetail(state.selected);
    } else if (msg.type === "page") {
      // A page addressed to this user (escalation step, reminder): say so, link the incident.
      const notice = $("#page-notice");
      notice.textContent = msg.title;
      notice.hidden = false;
      notice.onclick = () => { notice.hidden = true; openDetail(msg.incident_id); };
    }
  };
  ws.onclose = (ev) => {
    $("#live").hidden = true;
    if (!state.signedIn || state.ws !== ws) return;  // signed out here: nothing to report
    if (ev.code === 4401) { signOut("会话已结束，请重新登录 / Your session ended: sign in again."); return; }
    // Capped, jittered backoff so a restarting server is not hammered by every open page.
    const delay = Math.min(30000, 1000 * 2 ** state.retry++) * (0.5 + Math.random() / 2);
    setTimeout(connectStream, delay);
  };
}

function showBoard(session) {
  state.signedIn = true;
  state.csrf = session.csrf_token;
  state.user = session.username;
  $("#login").hidden = true;
  $("#board").hidden = false;
  $("#who").hidden = false;
  $("#who").textContent = state.user;
  $("#logout").hidden = false;
  $("#logout-all").hidden = false;
  refresh().catch((e) => console.error(e));
  connectStream();
  // A signed link from a message lands on /#incident=<id>.
  const linked = location.hash.match(/^#incident=([0-9A-Za-z]+)$/);
  if (linked) openDetail(linked[1]);
  clearInterval(state.poller);
  state.poller = setInterval(() => {
    if (state.signedIn) api("/api/v1/gateways", {}, true).then(renderGateways).catch(() => {});
  }, 15000);
}

// Only the page's own state: the server side is ended by the buttons (or has ended already).
function signOut(message) {
  state.signedIn = false;
  state.csrf = null;
  clearInterval(state.poller);
  const ws = state.ws;
  state.ws = null;
  if (ws) ws.close();
  $("#board").hidden = true;
  $("#login").hidden = false;
  $("#who").hidden = true;
  $("#logout").hidden = true;
  $("#logout-all").hidden = true;
  $("#login-error").textContent = message || "";
}

async function endSession(path, method) {
  try { await api(path, { method }); } catch (e) { /* already ended: signed out either way */ }
  signOut();
}

$("#login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = new FormData(ev.target);
  $("#login-error").textContent = "";
  try {
    const resp = await fetch("/api/v1/auth/session", { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: form.get("username"), password: form.get("password") }) });
    if (resp.status === 429) {
      const wait = resp.headers.get("Retry-After") || "?";
      $("#login-error").textContent = `尝试次数过多，请 ${wait} 秒后再试 / Too many attempts: try again in ${wait} s.`;
      return;
    }
    if (!resp.ok) { $("#login-error").textContent = "Wrong user or password."; return; }
    ev.target.reset();
    showBoard(await resp.json());
  } catch (e) {
    $("#login-error").textContent = "The server cannot be reached.";
  }
});
$("#logout").addEventListener("click", () => endSession("/api/v1/auth/session", "DELETE"));
$("#logout-all").addEventListener("click", () => endSession("/api/v1/auth/logout-everywhere", "POST"));
$("#detail-close").addEventListener("click", closeDetail);

// Still signed in from before (a reload, a link from a message)? The cookie says.
fetch("/api/v1/auth/session", { credentials: "same-origin" })
  .then((resp) => (resp.ok ? resp.json().then(showBoard) : null))
  .catch(() => {});
