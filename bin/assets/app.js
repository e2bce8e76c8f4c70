// Coda dashboard: wires state.js to the page, the HTTP API and the /ws event stream.
// Everything the server sends is put in the page with textContent, never parsed as HTML.

import {
  Backoff,
  StreamTracker,
  ViewState,
  bucketDelta,
  byLabel,
  currentAsSnapshot,
  diffSnapshots,
  formatSeconds,
  histograms,
  parsePrometheus,
  quantile,
  rates,
  scalar,
  wsUrl,
} from "./state.js";

const PAGE = 20;
const METRICS_EVERY_MS = 2000;
const HISTORY = 90;
const TOKEN_KEY = "coda.token";

const $ = (id) => document.getElementById(id);

/** Makes an element: `h("li", {class: "x", text: "y", onclick}, child, ...)`. */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = String(v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    // Through the CSSOM: the Content-Security-Policy forbids style attributes.
    else if (k === "style") Object.assign(el.style, v);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/**
 * Replaces `container`'s children with one element per item, reusing the element made for an
 * equal item last time (so unchanged rows keep their state and do not replay their animation).
 */
function keyedList(container, items, key, make) {
  const cache = (container._cache ??= new Map());
  const next = new Map();
  const nodes = items.map((item) => {
    const k = key(item);
    const sig = JSON.stringify(item);
    const hit = cache.get(k);
    const node = hit && hit.sig === sig ? hit.node : make(item);
    next.set(k, { sig, node });
    return node;
  });
  container._cache = next;
  const same = nodes.length === container.children.length && nodes.every((n, i) => container.children[i] === n);
  if (!same) container.replaceChildren(...nodes);
}

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
  renderSnapshots();
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
  renderMemories();
  renderRetrievals();
  renderTurns();
  renderSystem();
  $("m-dups-page").textContent = String(app.tracker.duplicates);
}

function fmtTime(t) {
  if (!t) return "";
  const d = new Date(/(Z|[+-]\d\d:?\d\d)$/.test(t) ? t : `${t}Z`);
  if (Number.isNaN(d.getTime())) return String(t);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

function fmtClock(t) {
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? "" : d.toLocaleTimeString();
}

function fmtNum(x, digits = 2) {
  return x === null || x === undefined || !Number.isFinite(Number(x)) ? "–" : Number(x).toFixed(digits);
}

function metaChips(metadata = {}) {
  const chips = [];
  if (metadata.source_type) chips.push(h("span", { class: "chip type", text: metadata.source_type }));
  if (metadata.importance !== undefined) {
    chips.push(h("span", { class: "chip", title: "importance", text: `importance ${fmtNum(metadata.importance)}` }));
  }
  for (const t of metadata.topics ?? []) chips.push(h("span", { class: "chip topic", text: `#${t}` }));
  return chips;
}

function memoryCard(m, extra = []) {
  return h(
    "li",
    { class: "card memory", dataset: { id: m.id } },
    h("p", { class: "content", text: m.content }),
    h("div", { class: "meta" }, ...extra, ...metaChips(m.metadata), h("span", { class: "time", text: fmtTime(m.metadata?.timestamp) })),
  );
}

function scoreBar(label, value, cls) {
  const v = Math.max(0, Math.min(1, Number(value) || 0));
  return h(
    "span",
    { class: `score ${cls}`, title: `${label} ${fmtNum(value, 3)}` },
    h("span", { class: "score-label", text: `${label} ${fmtNum(value, 3)}` }),
    h("span", { class: "bar" }, h("span", { class: "fill", style: { width: `${(v * 100).toFixed(0)}%` } })),
  );
}

function scores(r) {
  const out = [scoreBar("similarity", r.similarity, "sim")];
  if (r.score !== undefined && r.score !== null) out.push(scoreBar("score", r.score, "hybrid"));
  return out;
}

function renderMemories() {
  const list = app.view.memoryList();
  keyedList($("memory-list"), list, (m) => m.id, (m) => memoryCard(m));
  $("memory-empty").hidden = list.length > 0 || app.view.offset > 0;
  const total = app.stats?.long_term?.total_memories;
  $("memory-total").textContent = total === undefined ? "" : `${total} in total`;
  $("badge-memory").textContent = total === undefined ? "" : String(total);
  $("m-memories").textContent = total === undefined ? "–" : String(total);
  const offset = app.view.offset;
  const end = offset + list.length;
  $("page-info").textContent = list.length ? `${offset + 1}–${end}` : "";
  $("page-prev").disabled = offset === 0;
  $("page-next").disabled = total === undefined ? list.length < PAGE : end >= total;
  const select = $("search-type");
  const types = Object.keys(app.stats?.long_term?.source_types ?? {});
  const have = [...select.options].map((o) => o.value);
  for (const t of types) if (!have.includes(t)) select.append(h("option", { value: t, text: t }));
}

function renderRetrievals() {
  const make = (e) =>
    h(
      "li",
      { class: "retrieval" },
      h(
        "div",
        { class: "retrieval-head" },
        h("span", { class: "query", text: `“${e.query}”` }),
        h("span", { class: "muted", text: `${(e.results ?? []).length} results · seq ${e.seq} · ${fmtClock(e.timestamp)}` }),
      ),
      h(
        "ol",
        { class: "hits" },
        (e.results ?? []).map((r) =>
          h("li", {}, h("span", { class: "hit-content", text: r.content }), h("span", { class: "hit-scores" }, ...scores(r))),
        ),
      ),
    );
  keyedList($("retrievals"), app.view.retrievals, (e) => e.seq, make);
  $("retrievals-empty").hidden = app.view.retrievals.length > 0;
}

function renderTurns() {
  const turns = app.view.turnList();
  const box = $("turns");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  keyedList(
    box,
    turns,
    (t) => t.turn_index,
    (t) =>
      h(
        "li",
        { class: `turn ${t.role}`, dataset: { index: t.turn_index } },
        h("div", { class: "who" }, h("span", { class: "role", text: t.role }), h("span", { class: "muted", text: `#${t.turn_index} · ${fmtClock(t.timestamp)}` })),
        h("p", { class: "content", text: t.content }),
      ),
  );
  if (atBottom) box.scrollTop = box.scrollHeight;
  $("turns-empty").hidden = turns.length > 0;
  const count = app.stats?.short_term?.turn_count;
  $("turn-count").textContent = `${turns.length} in the window${count !== undefined ? ` · ${count} this session` : ""}`;
  $("badge-conversation").textContent = turns.length ? String(turns.length) : "";
}

function systemDetail(e) {
  switch (e.type) {
    case "memory_persist":
      return `${e.turn_count} turns persisted, ${e.memories_added} memories added`;
    case "memory_clear":
      return "short-term memory cleared";
    case "memory_snapshot":
      return `${e.action} ${e.snapshot_id ?? ""}`.trim();
    default:
      return e.detail ?? "";
  }
}

function renderSystem() {
  const rows = app.view.system.map((e) =>
    h(
      "tr",
      { class: `sys ${e.type}` },
      h("td", { class: "nowrap", text: fmtClock(e.timestamp) }),
      h("td", { class: "num", text: e.seq ?? "" }),
      h("td", {}, h("span", { class: `tag ${e.type}`, text: e.type.replace(/_/g, " ") })),
      h("td", { text: systemDetail(e) }),
    ),
  );
  $("system-rows").replaceChildren(...rows);
  $("system-empty").hidden = rows.length > 0;
  const alerts = app.view.system.filter((e) => ["lagged", "replay_gap"].includes(e.type)).length;
  $("badge-system").textContent = alerts ? `${alerts}!` : "";
}

function renderSnapshots() {
  const row = (s) =>
    h(
      "tr",
      { dataset: { id: s.snapshot_id } },
      h("td", { class: "mono", text: s.snapshot_id }),
      h("td", { class: "nowrap", text: fmtTime(s.timestamp) }),
      h("td", { class: "num", text: s.short_term_turns }),
      h("td", { class: "num", text: s.long_term_memories }),
      h("td", { class: "num", text: s.topics }),
      h("td", { text: s.location ? "yes" : "in memory", title: s.location ?? "" }),
      h(
        "td",
        { class: "actions" },
        s.location ? null : h("button", { class: "ghost small", type: "button", dataset: { action: "save" }, text: "Save", onclick: () => saveSnapshot(s.snapshot_id) }),
        h("button", { class: "ghost small", type: "button", dataset: { action: "diff" }, text: "Diff vs now", onclick: () => compare(s.snapshot_id, "current") }),
        h("button", { class: "danger small", type: "button", dataset: { action: "apply" }, text: "Apply…", onclick: () => applySnapshot(s.snapshot_id) }),
      ),
    );
  keyedList($("snap-rows"), app.snapshots, (s) => s.snapshot_id, row);
  $("snap-empty").hidden = app.snapshots.length > 0;
  $("badge-snapshots").textContent = app.snapshots.length ? String(app.snapshots.length) : "";
  fillDiffSelects();
}

function fillDiffSelects() {
  const ids = app.snapshots.map((s) => s.snapshot_id);
  for (const [id, withCurrent] of [["diff-a", false], ["diff-b", true]]) {
    const select = $(id);
    const keep = select.value;
    const options = ids.map((s) => h("option", { value: s, text: s }));
    if (withCurrent) options.unshift(h("option", { value: "current", text: "current state" }));
    select.replaceChildren(...options);
    if (keep && [...select.options].some((o) => o.value === keep)) select.value = keep;
    else if (!withCurrent && ids.length > 1) select.value = ids[1];
  }
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

function diffMemory(m, cls) {
  return h(
    "li",
    { class: `card diff-item ${cls}` },
    h("p", { class: "content", text: m.content }),
    h("div", { class: "meta" }, ...metaChips({ ...(m.metadata ?? {}), importance: m.importance ?? m.metadata?.importance })),
  );
}

function renderDiff(d) {
  const signed = (n, digits = 0) => (n > 0 ? `+${fmtNum(n, digits)}` : fmtNum(n, digits));
  const st = d.stats ?? {};
  const summary = h(
    "div",
    { class: "diff-summary" },
    h("span", { class: "chip", text: `memories ${signed(st.total_memories ?? 0)}` }),
    h("span", { class: "chip", text: `turns ${signed(st.turn_count ?? 0)}` }),
    h("span", { class: "chip", text: `topics ${signed(st.topics ?? 0)}` }),
    h("span", { class: "chip", text: `avg importance ${signed(st.average_importance ?? 0, 3)}` }),
    ...Object.entries(st.source_types ?? {}).map(([k, v]) => h("span", { class: "chip type", text: `${k} ${signed(v)}` })),
  );
  const m = d.memories ?? { added: [], removed: [], changed: [] };
  const t = d.turns ?? { added: [], removed: [] };
  const topics = d.topics ?? { added: [], removed: [] };
  const column = (title, side, memories, turns, topicList, cls) =>
    h(
      "div",
      { class: `diff-col ${cls}`, dataset: { side } },
      h("h3", { text: title }),
      h("p", { class: "muted", text: `${memories.length} memories · ${turns.length} turns · ${topicList.length} topics` }),
      h("ol", { class: "cards compact" }, memories.map((x) => diffMemory(x, cls))),
      turns.length ? h("ol", { class: "diff-turns" }, turns.map((x) => h("li", { class: cls }, h("span", { class: "role", text: x.role }), ` ${x.content}`))) : null,
      topicList.length ? h("div", { class: "meta diff-topics" }, h("span", { class: "muted", text: "topics" }), topicList.map((x) => h("span", { class: `chip topic ${cls}`, text: `#${x}` }))) : null,
    );
  const changed = m.changed.length
    ? h(
        "div",
        { class: "diff-changed" },
        h("h3", { text: `Changed (${m.changed.length})` }),
        ...m.changed.map((c) =>
          h("div", { class: "diff-pair" }, h("ol", { class: "cards compact" }, diffMemory(c.before, "removed")), h("ol", { class: "cards compact" }, diffMemory(c.after, "added"))),
        ),
      )
    : null;
  const nothing = !m.added.length && !m.removed.length && !m.changed.length && !t.added.length && !t.removed.length;
  return [
    h("div", { class: "diff-title" }, h("span", { class: "mono", text: d.from }), h("span", { text: " → " }), h("span", { class: "mono", text: d.to })),
    summary,
    nothing ? h("p", { class: "empty", text: "No differences." }) : null,
    h(
      "div",
      { class: "diff-sides" },
      column(`Only in ${d.from}`, "from", m.removed, t.removed, topics.removed, "removed"),
      column(`Only in ${d.to}`, "to", m.added, t.added, topics.added, "added"),
    ),
    changed,
  ].filter(Boolean);
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

const PALETTE = ["#6d5efc", "#16a394", "#e8833a", "#d94f70", "#3b8beb", "#a4b13a", "#8a5cc2", "#5f6b7a"];

async function scrapeMetrics() {
  const now = performance.now();
  const m = app.metrics;
  let sample = null;
  try {
    const res = await fetch("/metrics", { headers: authHeaders(), cache: "no-store" });
    if (res.ok) sample = parsePrometheus(await res.text());
    $("metrics-status").textContent = res.ok ? "" : `/metrics answered ${res.status}; showing what the event stream tells.`;
  } catch {
    $("metrics-status").textContent = "/metrics is unreachable; showing what the event stream tells.";
  }
  const point = { t: now, events: {}, latency: {}, clients: null, dropped: null, dups: null };
  if (sample) {
    point.events = byLabel(sample, "coda_events_total", "type");
    point.buckets = histograms(sample, "coda_operation_duration_seconds", "op");
    point.clients = scalar(sample, "coda_websocket_connections");
    point.dropped = scalar(sample, "coda_websocket_events_dropped_total");
    point.dups = scalar(sample, "coda_duplicates_suppressed_total");
  } else {
    point.events = { ...m.streamCounts };
  }
  point.stream = { ...m.streamCounts };
  const prev = m.prev;
  const seconds = prev ? (now - prev.t) / 1000 : 0;
  point.rates = rates(point.events, prev?.events, seconds);
  for (const [op, buckets] of Object.entries(point.buckets ?? {})) {
    const window = bucketDelta(buckets, prev?.buckets?.[op]);
    const use = quantile(window, 0.5) === null ? buckets : window;
    point.latency[op] = { p50: quantile(use, 0.5), p99: quantile(use, 0.99), live: use === window };
  }
  m.prev = point;
  if (prev) {
    m.history.push(point);
    if (m.history.length > HISTORY) m.history.shift();
  }
  renderMetrics(point);
}

function renderMetrics(point) {
  const total = Object.values(point.rates).reduce((a, b) => a + b, 0);
  $("m-rate").textContent = fmtNum(total, 1);
  $("m-clients").textContent = point.clients ?? "–";
  $("m-dropped").textContent = point.dropped ?? "–";
  $("m-dups").textContent = point.dups ?? "–";
  const history = app.metrics.history;
  const types = [...new Set(history.flatMap((p) => Object.keys(p.rates)))].sort();
  const active = types.filter((ty) => history.some((p) => (p.rates[ty] ?? 0) > 0));
  const shown = active.length ? active : types.slice(0, 4);
  lineChart($("chart-rates"), history, shown.map((ty, i) => ({ label: ty, color: PALETTE[i % PALETTE.length], value: (p) => p.rates[ty] ?? 0 })), $("legend-rates"), "/s");
  lineChart($("chart-clients"), history, [{ label: "clients", color: PALETTE[4], value: (p) => p.clients ?? 0 }], null, "");
  lineChart(
    $("chart-drops"),
    history,
    [
      { label: "dropped (server)", color: PALETTE[3], value: (p) => p.dropped ?? 0 },
      { label: "duplicates suppressed (server)", color: PALETTE[2], value: (p) => p.dups ?? 0 },
      { label: "duplicates ignored here", color: PALETTE[1], value: () => app.tracker.duplicates },
    ],
    $("legend-drops"),
    "",
  );
  latencyChart($("chart-latency"), point.latency, $("legend-latency"));
}

/** Fits a canvas to its CSS size at the device's pixel ratio; returns its 2D context and size. */
function fitCanvas(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || canvas.width;
  const hgt = Number(canvas.getAttribute("height"));
  if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(hgt * ratio)) {
    canvas.width = Math.round(w * ratio);
    canvas.height = Math.round(hgt * ratio);
    canvas.style.height = `${hgt}px`;
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, hgt);
  ctx.font = "11px system-ui, sans-serif";
  return { ctx, w, h: hgt };
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function axes(ctx, w, hgt, pad, max, unit) {
  ctx.strokeStyle = "#e3e6ee";
  ctx.fillStyle = "#7a8294";
  ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = pad.t + ((hgt - pad.t - pad.b) * i) / 4;
    ctx.beginPath();
    ctx.moveTo(pad.l, y + 0.5);
    ctx.lineTo(w - pad.r, y + 0.5);
    ctx.stroke();
    const v = max * (1 - i / 4);
    ctx.fillText(`${Number.isInteger(v) ? v : v.toFixed(v < 1 ? 2 : 1)}${unit}`, 4, y + 4);
  }
}

function lineChart(canvas, history, series, legend, unit) {
  const { ctx, w, h: hgt } = fitCanvas(canvas);
  const pad = { l: 48, r: 10, t: 10, b: 18 };
  const max = niceMax(Math.max(0, ...history.flatMap((p) => series.map((s) => s.value(p)))));
  axes(ctx, w, hgt, pad, max, unit);
  ctx.fillStyle = "#7a8294";
  ctx.fillText(`last ${Math.round((HISTORY * METRICS_EVERY_MS) / 60000)} min`, w - pad.r - 60, hgt - 4);
  const x = (i) => pad.l + ((w - pad.l - pad.r) * (i + HISTORY - history.length)) / (HISTORY - 1);
  const y = (v) => pad.t + (hgt - pad.t - pad.b) * (1 - v / max);
  for (const s of series) {
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    history.forEach((p, i) => (i ? ctx.lineTo(x(i), y(s.value(p))) : ctx.moveTo(x(i), y(s.value(p)))));
    ctx.stroke();
  }
  if (legend) {
    const last = history.at(-1);
    legend.replaceChildren(
      ...series.map((s) =>
        h("span", { class: "key" }, h("span", { class: "swatch", style: { background: s.color } }), `${s.label}${last ? ` ${fmtNum(s.value(last), unit ? 1 : 0)}${unit}` : ""}`),
      ),
    );
  }
}

function latencyChart(canvas, latency, legend) {
  const { ctx, w, h: hgt } = fitCanvas(canvas);
  const ops = Object.keys(latency).filter((op) => latency[op].p50 !== null).sort();
  const pad = { l: 58, r: 10, t: 10, b: 22 };
  const max = niceMax(Math.max(0, ...ops.map((op) => latency[op].p99 ?? 0)) * 1000) / 1000;
  ctx.strokeStyle = "#e3e6ee";
  ctx.fillStyle = "#7a8294";
  for (let i = 0; i <= 4; i++) {
    const yy = pad.t + ((hgt - pad.t - pad.b) * i) / 4;
    ctx.beginPath();
    ctx.moveTo(pad.l, yy + 0.5);
    ctx.lineTo(w - pad.r, yy + 0.5);
    ctx.stroke();
    ctx.fillText(formatSeconds(max * (1 - i / 4)), 4, yy + 4);
  }
  if (!ops.length) {
    ctx.fillText("No operations measured yet.", pad.l + 10, hgt / 2);
  }
  const slot = (w - pad.l - pad.r) / Math.max(ops.length, 1);
  const bw = Math.min(26, slot / 3);
  ops.forEach((op, i) => {
    const cx = pad.l + slot * i + slot / 2;
    for (const [k, dx, color] of [["p50", -bw - 1, PALETTE[0]], ["p99", 1, PALETTE[2]]]) {
      const v = latency[op][k] ?? 0;
      const bh = (hgt - pad.t - pad.b) * (v / max);
      ctx.fillStyle = color;
      ctx.fillRect(cx + dx, hgt - pad.b - bh, bw, bh);
    }
    ctx.fillStyle = "#4a5160";
    ctx.fillText(op, cx - ctx.measureText(op).width / 2, hgt - 6);
  });
  legend.replaceChildren(
    h("span", { class: "key" }, h("span", { class: "swatch", style: { background: PALETTE[0] } }), "p50"),
    h("span", { class: "key" }, h("span", { class: "swatch", style: { background: PALETTE[2] } }), "p99"),
    ...ops.map((op) => h("span", { class: "key muted", text: `${op}: ${formatSeconds(latency[op].p50)} / ${formatSeconds(latency[op].p99)}` })),
  );
}

// ---------------------------------------------------------------------------------------------
// Tabs and start-up

function selectTab(name) {
  for (const b of document.querySelectorAll("[role=tab]")) b.setAttribute("aria-selected", String(b.dataset.tab === name));
  for (const s of document.querySelectorAll(".tab")) s.hidden = s.id !== `tab-${name}`;
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
  if (name === "metrics" && app.metrics.prev) renderMetrics(app.metrics.prev);
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
  window.addEventListener("resize", () => app.metrics.prev && renderMetrics(app.metrics.prev));
}

function start() {
  app.started = true;
  connect();
  scrapeMetrics();
  app.metrics.timer = setInterval(scrapeMetrics, METRICS_EVERY_MS);
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
