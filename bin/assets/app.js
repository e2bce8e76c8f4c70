// Coda dashboard: wires state.js to the page, the HTTP API and the /ws event stream.
// Everything the server sends is put in the page with textContent, never parsed as HTML.

import * as actions from "./actions.js";
import { ApiError, authHeaders as apiAuth, health, readToken, request, saveToken } from "./api.js";
import { $ } from "./dom.js";
import { attach as attachHistory, openHistory, openHistoryId, refreshHistory } from "./history-view.js";
import { METRICS_EVERY_MS, renderMetrics, scrapeMetrics } from "./metrics-view.js";
import * as picker from "./picker.js";
import { eventInScope, makeScope, paths, scopeFromSearch, searchWithScope, sessionsAfter, streamParams, withSession } from "./scope.js";
import { Backoff, StreamTracker, ViewState, badgesStale, historyChanged, wsUrl } from "./state.js";
import { renderMemories, renderRetrievals, renderScope, renderSnapshots, renderSystem, renderTurns } from "./views.js";

const PAGE = 20;

const app = {
  token: readToken(),
  /** Which user and session the views show (see scope.js). */
  scope: scopeFromSearch(location.search),
  /** The user ids the picker offers. */
  users: [],
  /** The chosen user's sessions, most recent activity first. */
  sessions: [],
  /** Whether the memory list shows superseded memories too (`include_superseded`). */
  showSuperseded: false,
  /** Events received since the scope last changed, by `user_id`: what the server let through. */
  received: {},
  /** Scope switches sent as `subscribe` whose `pong` has not come back yet. */
  switching: 0,
  tracker: new StreamTracker(),
  view: new ViewState({ pageSize: PAGE }),
  backoff: new Backoff(),
  ws: null,
  wsSerial: 0,
  reconnectTimer: null,
  reloading: null,
  reloadAgain: false,
  started: false,
  stats: null,
  snapshots: [],
  renderQueued: false,
  metrics: { prev: null, history: [], timer: null, streamCounts: {}, lagged: 0 },
};

// ---------------------------------------------------------------------------------------------
// HTTP

function authHeaders() {
  return apiAuth(app.token);
}

/** Calls `/api/v1{path}`; throws ApiError on failure, and asks for a token on 401. */
function api(method, path, body) {
  const unauthorized = () =>
    askForToken(app.token ? "The server refused this token." : "This server needs an access token.");
  return request(app.token, unauthorized, method, path, body);
}

function showBanner(message, kind = "error") {
  const b = $("banner");
  b.textContent = message;
  b.dataset.kind = kind;
  b.hidden = !message;
}

function report(e) {
  if (e instanceof ApiError && e.status === 401) return; // the token dialog says it
  showBanner(e.message ?? String(e));
}

// ---------------------------------------------------------------------------------------------
// Token

function askForToken(reason) {
  const dialog = $("token-dialog");
  $("token-reason").textContent = reason;
  setConnection("unauthorized");
  if (app.token) {
    const err = $("token-error");
    err.textContent = "That token was refused (401). Check [server] tokens in Coda.toml.";
    err.hidden = false;
  }
  if (!dialog.open) dialog.showModal();
  $("token-input").focus();
}

async function submitToken(event) {
  event.preventDefault();
  const candidate = $("token-input").value.trim();
  const err = $("token-error");
  err.hidden = true;
  const res = await fetch("/api/v1/stats", {
    headers: candidate ? { Authorization: `Bearer ${candidate}` } : {},
    cache: "no-store",
  }).catch(() => null);
  if (!res) {
    err.textContent = "The server cannot be reached.";
    err.hidden = false;
    return;
  }
  if (res.status === 401) {
    err.textContent = "That token was refused (401). Check [server] tokens in Coda.toml.";
    err.hidden = false;
    $("token-input").select();
    return;
  }
  app.token = candidate;
  saveToken(candidate);
  $("token-dialog").close();
  showBanner("");
  if (app.started) reconnectNow();
  else start();
}

// ---------------------------------------------------------------------------------------------
// Connection

function setConnection(state, detail = "") {
  const pill = $("conn");
  pill.dataset.state = state;
  const labels = {
    connecting: "Connecting…",
    live: "Live",
    reconnecting: "Reconnecting",
    offline: "Offline",
    unauthorized: "Token needed",
  };
  pill.textContent = detail ? `${labels[state]} · ${detail}` : labels[state];
}

function updateCursor() {
  const t = app.tracker;
  $("cursor").textContent = t.epoch ? `epoch ${t.epoch.slice(0, 8)} · seq ${t.lastSeq}` : "";
}

function connect() {
  clearTimeout(app.reconnectTimer);
  app.reconnectTimer = null;
  const params = { ...app.tracker.resumeParams(), ...streamParams(app.scope) };
  if (app.token) params.token = app.token;
  setConnection(app.tracker.epoch ? "reconnecting" : "connecting");
  let ws;
  try {
    ws = new WebSocket(wsUrl(location, params));
  } catch (e) {
    scheduleReconnect(`cannot open: ${e.message}`);
    return;
  }
  const serial = ++app.wsSerial;
  app.ws = ws;
  let welcomed = false;
  ws.addEventListener("message", (m) => {
    if (serial !== app.wsSerial) return;
    const frame = parseFrame(m.data);
    if (frame?.type === "welcome") welcomed = true;
    if (frame) onFrame(frame);
  });
  ws.addEventListener("close", async (ev) => {
    if (serial !== app.wsSerial) return;
    app.ws = null;
    if (welcomed) note({ type: "disconnected", detail: `code ${ev.code}${ev.reason ? `: ${ev.reason}` : ""}` });
    if (!welcomed) {
      // A refused upgrade looks like any failed connection: ask the API why.
      try {
        await api("GET", "/stats");
      } catch (e) {
        if (e.status === 401) return;
      }
    }
    scheduleReconnect(ev.code === 1001 ? "server going away" : "");
  });
}

function scheduleReconnect(why) {
  const delay = app.backoff.next();
  const seconds = (delay / 1000).toFixed(1);
  setConnection("offline", `retry in ${seconds} s${why ? ` (${why})` : ""}`);
  clearTimeout(app.reconnectTimer);
  app.reconnectTimer = setTimeout(connect, delay);
}

function reconnectNow() {
  app.wsSerial += 1; // ignore the old socket's close
  if (app.ws) app.ws.close(1000, "reconnecting");
  app.ws = null;
  app.backoff.reset();
  connect();
}

function parseFrame(text) {
  try {
    const frame = JSON.parse(text);
    return frame && typeof frame === "object" ? frame : null;
  } catch {
    return null;
  }
}

function onFrame(frame) {
  switch (frame.type) {
    case "welcome": {
      app.backoff.reset();
      const had = app.tracker.epoch;
      setConnection("live");
      const fresh = app.tracker.welcome(frame);
      if (fresh || app.switching > 0) {
        if (fresh && had) note({ type: "new_epoch", detail: "the server restarted: views reloaded" });
        // A scope switch whose pong was lost with the old socket: this one has the new scope.
        app.switching = 0;
        reload();
      } else {
        note({ type: "reconnected", detail: `resumed after seq ${app.tracker.lastSeq}` });
      }
      updateCursor();
      return;
    }
    case "replay_gap":
      note({ ...frame, detail: `events ${frame.from}–${frame.to} are no longer held: views reloaded` });
      reload();
      return;
    case "lagged":
      app.metrics.lagged += Number(frame.dropped) || 0;
      note({ ...frame, detail: `${frame.dropped} events dropped (${frame.from}–${frame.to}) while this page lagged: views reloaded` });
      reload();
      return;
    case "batch":
      for (const e of frame.events ?? []) onEvent(e);
      return;
    case "pong":
      // A scope switch has taken effect on the server: load the new scope's views.
      if (app.switching > 0) {
        app.switching -= 1;
        reload();
      }
      return;
    case "error":
      note({ type: "server_error", detail: frame.error });
      return;
    default:
      onEvent(frame);
  }
}

function onEvent(event) {
  if (!app.tracker.accept(event)) {
    queueRender();
    return;
  }
  app.metrics.streamCounts[event.type] = (app.metrics.streamCounts[event.type] ?? 0) + 1;
  const user = event.user_id ?? "";
  app.received[user] = (app.received[user] ?? 0) + 1;
  const sessions = sessionsAfter(app.sessions, event, app.scope);
  if (sessions !== app.sessions) {
    app.sessions = withSession(sessions, app.scope.session);
    renderScope(app);
  }
  // Other sessions' conversation, and whatever was in flight when the scope changed.
  if (!eventInScope(event, app.scope)) {
    updateCursor();
    return;
  }
  if (event.type === "session_delete") {
    note({ ...event, detail: `session ${event.session_id} deleted: views reloaded` });
    reload();
  }
  if (event.type === "user_delete") {
    note({ ...event, detail: `user ${event.user_id} erased: views reloaded` });
    picker.loadUsers().catch(report);
    reload();
  }
  app.view.apply(event);
  if (ViewState.needsReload(event)) reload();
  if (badgesStale(event)) debounce("memories", reload, 250);
  if (historyChanged(event, openHistoryId())) debounce("history", refreshHistory, 100);
  if (app.view.snapshotsStale) {
    app.view.snapshotsStale = false;
    debounce("snapshots", loadSnapshots, 150);
  }
  if (["memory_store", "memory_delete", "memory_persist", "conversation_turn", "memory_clear"].includes(event.type)) {
    debounce("stats", loadStats, 300);
  }
  updateCursor();
  queueRender();
}

function note(entry) {
  app.view.note({ timestamp: new Date().toISOString(), ...entry });
  queueRender();
}

const timers = {};
function debounce(key, fn, ms) {
  clearTimeout(timers[key]);
  timers[key] = setTimeout(() => fn().catch(report), ms);
}

// ---------------------------------------------------------------------------------------------
// Loading through the API

/** Reloads memories and turns; live events that arrive meanwhile are applied after. */
function reload() {
  if (app.reloading) {
    app.reloadAgain = true;
    return app.reloading;
  }
  app.reloading = (async () => {
    try {
      do {
        app.reloadAgain = false;
        // A scope change replaces the view and the scope; what was loaded for the old ones is
        // dropped and loaded again.
        const { scope, view } = app;
        view.beginReload();
        const at = await health();
        const seq = String(at.epoch) === app.tracker.epoch ? Number(at.seq) : 0;
        const offset = view.offset;
        const [page, conversation] = await Promise.all([
          api("GET", paths.memories(scope, { limit: PAGE, offset, includeSuperseded: app.showSuperseded })),
          loadTurns(scope),
        ]);
        if (scope !== app.scope || view !== app.view) {
          app.reloadAgain = true;
          continue;
        }
        view.finishReload({ memories: page.memories ?? [], offset, turns: conversation.turns ?? [], seq });
      } while (app.reloadAgain);
      showBanner("");
    } catch (e) {
      app.view.abandonReload();
      report(e);
    } finally {
      app.reloading = null;
      queueRender();
    }
    await Promise.all([loadStats(), loadSnapshots()]).catch(report);
  })();
  return app.reloading;
}

/** The session's window; a session the server does not know yet has no turns. */
async function loadTurns(scope) {
  try {
    return await api("GET", paths.turns(scope));
  } catch (e) {
    if (e.status === 404 && e.code === "not_found") return { turns: [], turn_count: 0 };
    throw e;
  }
}

async function loadStats() {
  const scope = app.scope;
  const stats = await api("GET", paths.stats(scope));
  if (scope !== app.scope) return;
  app.stats = stats;
  queueRender();
}

async function loadPage(offset) {
  const { scope, view } = app;
  const listed = await api("GET", paths.memories(scope, { limit: PAGE, offset, includeSuperseded: app.showSuperseded }));
  if (view !== app.view) return;
  view.setMemoryPage(listed.memories ?? [], offset);
  queueRender();
}

async function loadSnapshots() {
  const scope = app.scope;
  const filters = {};
  const from = $("snap-from").value;
  const to = $("snap-to").value;
  const q = $("snap-q").value.trim();
  if (from) filters.from = new Date(from).toISOString();
  if (to) filters.to = new Date(to).toISOString();
  if (q) filters.q = q;
  const data = await api("GET", paths.snapshots(scope, filters));
  if (scope !== app.scope) return;
  app.snapshots = data.snapshots ?? [];
  showSnapshots();
}

function showSnapshots() {
  renderSnapshots(app, { save: actions.saveSnapshot, compare: actions.compare, apply: actions.applySnapshot });
}

// ---------------------------------------------------------------------------------------------
// Rendering

function queueRender() {
  if (app.renderQueued) return;
  app.renderQueued = true;
  requestAnimationFrame(() => {
    app.renderQueued = false;
    render();
  });
}

function render() {
  renderMemories(app);
  renderRetrievals(app);
  renderTurns(app);
  renderSystem(app);
  renderScope(app);
  $("m-dups-page").textContent = String(app.tracker.duplicates);
}



// ---------------------------------------------------------------------------------------------
// Tabs and start-up

function selectTab(name) {
  for (const b of document.querySelectorAll("[role=tab]")) b.setAttribute("aria-selected", String(b.dataset.tab === name));
  for (const s of document.querySelectorAll(".tab")) s.hidden = s.id !== `tab-${name}`;
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
  if (name === "metrics" && app.metrics.prev) renderMetrics(app, app.metrics.prev);
}

function bindUi() {
  for (const b of document.querySelectorAll("[role=tab]")) b.addEventListener("click", () => selectTab(b.dataset.tab));
  const initial = location.hash.slice(1);
  if (document.getElementById(`tab-${initial}`)) selectTab(initial);
  $("token-form").addEventListener("submit", submitToken);
  $("search-form").addEventListener("submit", actions.search);
  $("page-prev").addEventListener("click", () => loadPage(Math.max(0, app.view.offset - PAGE)).catch(report));
  $("page-next").addEventListener("click", () => loadPage(app.view.offset + PAGE).catch(report));
  $("snap-create").addEventListener("click", actions.createSnapshot);
  $("snap-filter").addEventListener("submit", (e) => {
    e.preventDefault();
    loadSnapshots().catch(report);
  });
  $("diff-form").addEventListener("submit", (e) => {
    e.preventDefault();
    actions.compare($("diff-a").value, $("diff-b").value);
  });
  $("persist").addEventListener("click", actions.persist);
  $("show-superseded").addEventListener("change", (e) => {
    app.showSuperseded = e.target.checked;
    reload();
  });
  // Every "history" button (memory cards, search results, a version's superseded_by link).
  document.addEventListener("click", (e) => {
    const button = e.target.closest?.("[data-history]");
    if (button) openHistory(button.dataset.history).catch(report);
  });
  $("scope-user").addEventListener("change", (e) => picker.pickUser(e.target.value).catch(report));
  $("scope-session").addEventListener("change", (e) => picker.pickSession(e.target.value));
  $("scope-session-only").addEventListener("change", (e) =>
    picker.setScope(makeScope({ ...app.scope, sessionOnly: e.target.checked })),
  );
  // Other users appear without events on this page's stream: list them again when asked.
  $("scope-user").addEventListener("focus", () => picker.loadUsers().catch(report));
  $("scope-refresh").addEventListener("click", () => Promise.all([picker.loadUsers(), picker.loadSessions()]).catch(report));
  window.addEventListener("resize", () => app.metrics.prev && renderMetrics(app, app.metrics.prev));
}

function start() {
  app.started = true;
  connect();
  Promise.all([picker.loadUsers(), picker.loadSessions()]).catch(report);
  const scrape = () => scrapeMetrics(app, authHeaders());
  scrape();
  app.metrics.timer = setInterval(scrape, METRICS_EVERY_MS);
}

/** What the picker and the actions work with. */
const page = {
  app,
  api,
  reload,
  loadSnapshots,
  loadTurns,
  showSnapshots,
  showBanner,
  report,
  queueRender,
  reconnectNow,
  selectTab,
};

async function boot() {
  picker.attach(page);
  actions.attach(page);
  attachHistory(page);
  bindUi();
  // The address keeps the scope, so a reload or a shared link shows the same user and session.
  history.replaceState(null, "", `${searchWithScope(location.search, app.scope)}${location.hash}`);
  app.sessions = withSession([], app.scope.session);
  app.users = [app.scope.user];
  render();
  try {
    await api("GET", "/stats");
  } catch (e) {
    if (e.status === 401) return; // submitToken starts the page
    report(e);
  }
  start();
}

// For tests and curious users: the page's state, read-only by convention.
window.coda = app;

boot();
