// Coda dashboard: wires state.js to the page, the HTTP API and the /ws event stream.
// Everything the server sends is put in the page with textContent, never parsed as HTML.

import { renderDiff } from "./diff-view.js";
import { $, h, memoryCard, scores } from "./dom.js";
import { METRICS_EVERY_MS, renderMetrics, scrapeMetrics } from "./metrics-view.js";
import { Backoff, StreamTracker, ViewState, currentAsSnapshot, diffSnapshots, wsUrl } from "./state.js";
import { renderMemories, renderRetrievals, renderSnapshots, renderSystem, renderTurns } from "./views.js";

const PAGE = 20;
const TOKEN_KEY = "coda.token";

/** An error from the API, with its status and the server's `error.code`. */
class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const app = {
  token: readToken(),
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

function readToken() {
  try {
    return localStorage.getItem(TOKEN_KEY) ?? "";
  } catch {
    return "";
  }
}

function saveToken(token) {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // Private windows may refuse storage; the token then lasts for this page only.
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP

function authHeaders() {
  return app.token ? { Authorization: `Bearer ${app.token}` } : {};
}

/** Calls `/api/v1{path}`; throws ApiError on failure, and asks for a token on 401. */
async function api(method, path, body) {
  const headers = authHeaders();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch (e) {
    throw new ApiError(0, "unreachable", `The server cannot be reached (${e.message}).`);
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (res.status === 401) {
    askForToken(app.token ? "The server refused this token." : "This server needs an access token.");
  }
  if (!res.ok) {
    throw new ApiError(
      res.status,
      data?.error?.code ?? "http_error",
      data?.error?.message ?? `${res.status} ${res.statusText}`,
    );
  }
  return data;
}

async function health() {
  const res = await fetch("/healthz", { cache: "no-store" });
  if (!res.ok) throw new ApiError(res.status, "unhealthy", `healthz answered ${res.status}`);
  return res.json();
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
  const params = { ...app.tracker.resumeParams() };
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
      if (app.tracker.welcome(frame)) {
        if (had) note({ type: "new_epoch", detail: "the server restarted: views reloaded" });
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
  app.view.apply(event);
  if (ViewState.needsReload(event)) reload();
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
  app.view.beginReload();
  app.reloading = (async () => {
    try {
      do {
        app.reloadAgain = false;
        const at = await health();
        const seq = String(at.epoch) === app.tracker.epoch ? Number(at.seq) : 0;
        const offset = app.view.offset;
        const [page, conversation] = await Promise.all([
          api("GET", `/memories?limit=${PAGE}&offset=${offset}`),
          api("GET", "/turns"),
        ]);
        app.view.finishReload({ memories: page.memories ?? [], offset, turns: conversation.turns ?? [], seq });
        if (app.reloadAgain) app.view.beginReload();
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

async function loadStats() {
  app.stats = await api("GET", "/stats");
  queueRender();
}

async function loadPage(offset) {
  const page = await api("GET", `/memories?limit=${PAGE}&offset=${offset}`);
  app.view.setMemoryPage(page.memories ?? [], offset);
  queueRender();
}

async function loadSnapshots() {
  const params = new URLSearchParams();
  const from = $("snap-from").value;
  const to = $("snap-to").value;
  const q = $("snap-q").value.trim();
  if (from) params.set("from", new Date(from).toISOString());
  if (to) params.set("to", new Date(to).toISOString());
  if (q) params.set("q", q);
  const query = params.toString();
  const data = await api("GET", `/snapshots${query ? `?${query}` : ""}`);
  app.snapshots = data.snapshots ?? [];
  renderSnapshots(app, { save: saveSnapshot, compare, apply: applySnapshot });
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
  $("m-dups-page").textContent = String(app.tracker.duplicates);
}



// ---------------------------------------------------------------------------------------------
// Actions

async function search(event) {
  event.preventDefault();
  const query = $("search-q").value.trim();
  if (!query) return;
  const body = { query, limit: Number($("search-limit").value) || 5, min_similarity: Number($("search-min").value) || 0 };
  const type = $("search-type").value;
  if (type) body.filter = { source_type: type };
  $("search-status").textContent = "Searching…";
  try {
    const data = await api("POST", "/memories/search", body);
    const results = data.results ?? [];
    $("search-status").textContent = `${results.length} result${results.length === 1 ? "" : "s"} for “${query}”`;
    $("search-results").replaceChildren(...results.map((r) => memoryCard(r, scores(r))));
  } catch (e) {
    $("search-status").textContent = e.message;
  }
}

async function createSnapshot() {
  const button = $("snap-create");
  button.disabled = true;
  try {
    const made = await api("POST", "/snapshots", { save: $("snap-save").checked });
    await loadSnapshots();
    showBanner(`Snapshot ${made.snapshot_id} created${made.location ? " and saved" : ""}.`, "info");
  } catch (e) {
    report(e);
  } finally {
    button.disabled = false;
  }
}

async function saveSnapshot(id) {
  try {
    const saved = await api("POST", `/snapshots/${encodeURIComponent(id)}/save`);
    await loadSnapshots();
    showBanner(`Saved ${id} to ${saved.location}.`, "info");
  } catch (e) {
    report(e);
  }
}

function confirmDialog(title, text, okLabel) {
  const dialog = $("confirm-dialog");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = okLabel;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "cancel";
    dialog.showModal();
  });
}

async function applySnapshot(id) {
  const ok = await confirmDialog(
    "Apply snapshot?",
    `Memory will be restored to ${id}. Memories and turns added since then are replaced.`,
    "Apply",
  );
  if (!ok) return;
  try {
    await api("POST", `/snapshots/${encodeURIComponent(id)}/apply`);
    showBanner(`Applied ${id}.`, "info");
    await reload();
  } catch (e) {
    report(e);
  }
}

/** All memories (every page) and the conversation, as a snapshot-shaped object. */
async function currentState() {
  const memories = [];
  for (let offset = 0; ; offset += 500) {
    const page = await api("GET", `/memories?limit=500&offset=${offset}`);
    memories.push(...(page.memories ?? []));
    if ((page.memories ?? []).length < 500) break;
  }
  return currentAsSnapshot(memories, await api("GET", "/turns"));
}

async function snapshotOrCurrent(id) {
  return id === "current" ? currentState() : api("GET", `/snapshots/${encodeURIComponent(id)}`);
}

async function compare(a, b) {
  selectTab("snapshots");
  $("diff-a").value = a;
  $("diff-b").value = b;
  const box = $("diff");
  box.replaceChildren(h("p", { class: "muted", text: "Comparing…" }));
  try {
    let diff;
    try {
      diff = await api("GET", `/snapshots/${encodeURIComponent(a)}/diff/${encodeURIComponent(b)}`);
    } catch (e) {
      // Servers without the diff route: compare here from the two full states.
      if (e.status !== 501 && e.status !== 404 && e.status !== 405) throw e;
      if (e.status === 404 && e.code !== "not_found") throw e;
      const [from, to] = await Promise.all([snapshotOrCurrent(a), snapshotOrCurrent(b)]);
      diff = diffSnapshots(from, to, a, b);
    }
    box.replaceChildren(...renderDiff(diff));
  } catch (e) {
    box.replaceChildren(h("p", { class: "error", text: e.message }));
  }
}



async function persist() {
  try {
    const out = await api("POST", "/persist");
    showBanner(`Persisted ${out.turn_count} turns: ${out.memories_added} memories added.`, "info");
  } catch (e) {
    report(e);
  }
}

// ---------------------------------------------------------------------------------------------
// Metrics


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
  $("search-form").addEventListener("submit", search);
  $("page-prev").addEventListener("click", () => loadPage(Math.max(0, app.view.offset - PAGE)).catch(report));
  $("page-next").addEventListener("click", () => loadPage(app.view.offset + PAGE).catch(report));
  $("snap-create").addEventListener("click", createSnapshot);
  $("snap-filter").addEventListener("submit", (e) => {
    e.preventDefault();
    loadSnapshots().catch(report);
  });
  $("diff-form").addEventListener("submit", (e) => {
    e.preventDefault();
    compare($("diff-a").value, $("diff-b").value);
  });
  $("persist").addEventListener("click", persist);
  window.addEventListener("resize", () => app.metrics.prev && renderMetrics(app, app.metrics.prev));
}

function start() {
  app.started = true;
  connect();
  const scrape = () => scrapeMetrics(app, authHeaders());
  scrape();
  app.metrics.timer = setInterval(scrape, METRICS_EVERY_MS);
}

async function boot() {
  bindUi();
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
