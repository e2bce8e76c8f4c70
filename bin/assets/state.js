// Coda dashboard: the page's logic that does not touch the DOM or the network, so it can be
// tested under Node (`node --test bin/assets/tests/`). app.js wires it to the page.

/** The event types that change stored memories or the conversation. */
export const DATA_EVENTS = new Set([
  "memory_store",
  "memory_update",
  "memory_delete",
  "conversation_turn",
  "memory_persist",
  "memory_clear",
  "memory_snapshot",
]);

/**
 * Tracks what the page has shown of the event stream: the server's `epoch` and the highest `seq`
 * shown in it. Drops anything already shown and says when the views must be reloaded.
 */
export class StreamTracker {
  constructor() {
    /** The epoch the shown seqs belong to, or null before the first welcome. */
    this.epoch = null;
    /** The highest seq shown in `epoch`. */
    this.lastSeq = 0;
    /** Events dropped because their seq was already shown. */
    this.duplicates = 0;
  }

  /** Query parameters for (re)connecting: resume after the last shown seq. */
  resumeParams() {
    if (this.epoch === null) return {};
    return { since: String(this.lastSeq), epoch: this.epoch };
  }

  /**
   * Handles a `welcome` frame. Returns true when the views must be reloaded from the API: the
   * first connection, or a server that restarted (another epoch), whose seqs start over.
   */
  welcome(frame) {
    const epoch = String(frame.epoch);
    if (this.epoch === epoch) return false;
    this.epoch = epoch;
    this.lastSeq = 0;
    return true;
  }

  /** Whether `event` is new (and records it as shown); false for a seq already shown. */
  accept(event) {
    const seq = Number(event.seq);
    if (!Number.isFinite(seq)) return true;
    if (seq <= this.lastSeq) {
      this.duplicates += 1;
      return false;
    }
    this.lastSeq = seq;
    return true;
  }
}

/** Exponential back-off with jitter, capped: 0.5 s, 1 s, 2 s ... 10 s, each ±25 %. */
export class Backoff {
  constructor({ baseMs = 500, capMs = 10000, random = Math.random } = {}) {
    this.baseMs = baseMs;
    this.capMs = capMs;
    this.random = random;
    this.attempt = 0;
  }

  /** The delay before the next attempt, in milliseconds. */
  next() {
    const raw = Math.min(this.capMs, this.baseMs * 2 ** this.attempt);
    this.attempt += 1;
    const jittered = raw * (0.75 + 0.5 * this.random());
    return Math.round(Math.min(this.capMs, jittered));
  }

  /** After a connection that worked. */
  reset() {
    this.attempt = 0;
  }
}

/** `ws:`/`wss:` URL of `/ws` on the page's host, with query `params` (values already strings). */
export function wsUrl(location, params) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const query = new URLSearchParams(params).toString();
  return `${scheme}//${location.host}/ws${query ? `?${query}` : ""}`;
}

/** Newest first by metadata.timestamp, then id for a stable order. */
function newestFirst(a, b) {
  const ta = a.metadata?.timestamp ?? "";
  const tb = b.metadata?.timestamp ?? "";
  if (ta !== tb) return ta < tb ? 1 : -1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * What the Memory Viewer and Conversation View show, kept from API loads and live events. An
 * entity arriving twice (from a load and an event, or two events) is shown once. While a reload
 * is in flight, data events are held and applied after the loaded state, so nothing that
 * happened during the reload is lost or applied to stale state.
 */
export class ViewState {
  constructor({ pageSize = 50, maxRetrievals = 50, maxSystem = 200 } = {}) {
    this.pageSize = pageSize;
    this.maxRetrievals = maxRetrievals;
    this.maxSystem = maxSystem;
    /** Memories on the shown page, by id. */
    this.memories = new Map();
    /** Offset of the shown page; live memories are inserted only on the first page. */
    this.offset = 0;
    /** Short-term turns, by turn_index. */
    this.turns = new Map();
    /** memory_retrieve events, newest first. */
    this.retrievals = [];
    /** System events and stream notices, newest first. */
    this.system = [];
    /** Data events held during a reload. */
    this.pending = null;
    /** Set when something happened that needs the snapshot list reloaded. */
    this.snapshotsStale = false;
  }

  /** Starts a reload: data events are held until `finishReload`. */
  beginReload() {
    if (this.pending === null) this.pending = [];
  }

  /** Whether a reload is in flight. */
  get reloading() {
    return this.pending !== null;
  }

  /**
   * Replaces the data views with loaded state (`memories`: a page, `turns`: the window) read
   * after the stream stood at `seq`, then applies the held events newer than that.
   */
  finishReload({ memories, offset = 0, turns, seq = 0 }) {
    this.offset = offset;
    this.memories = new Map(memories.map((m) => [m.id, m]));
    this.turns = new Map(turns.map((t) => [Number(t.turn_index), t]));
    const held = this.pending ?? [];
    this.pending = null;
    for (const event of held) {
      if (Number(event.seq) > seq) this.applyData(event);
    }
  }

  /** Gives up a reload (it failed): held events are applied to the current state. */
  abandonReload() {
    const held = this.pending ?? [];
    this.pending = null;
    for (const event of held) this.applyData(event);
  }

  /** Replaces the shown memory page only (paging), keeping turns. */
  setMemoryPage(memories, offset) {
    this.offset = offset;
    this.memories = new Map(memories.map((m) => [m.id, m]));
  }

  /** Handles one event the tracker accepted. */
  apply(event) {
    if (event.type === "memory_retrieve") {
      this.retrievals.unshift(event);
      this.retrievals.length = Math.min(this.retrievals.length, this.maxRetrievals);
    }
    if (isSystemEvent(event)) this.note(event);
    if (event.type === "memory_snapshot") this.snapshotsStale = true;
    if (!DATA_EVENTS.has(event.type)) return;
    if (this.pending !== null) this.pending.push(event);
    else this.applyData(event);
  }

  /** Adds a line to System Events. */
  note(entry) {
    this.system.unshift(entry);
    this.system.length = Math.min(this.system.length, this.maxSystem);
  }

  /** The shown memories, newest first. */
  memoryList() {
    return [...this.memories.values()].sort(newestFirst);
  }

  /** The shown turns, oldest first. */
  turnList() {
    return [...this.turns.values()].sort((a, b) => Number(a.turn_index) - Number(b.turn_index));
  }

  /** Applies a data event to the memory and turn views. */
  applyData(event) {
    switch (event.type) {
      case "memory_store": {
        if (this.offset !== 0 && !this.memories.has(event.memory_id)) return;
        this.memories.set(event.memory_id, memoryOf(event));
        this.trimPage();
        return;
      }
      case "memory_update":
        // The event carries content and metadata only: keep the slot, expiry and superseding.
        if (this.memories.has(event.memory_id)) {
          this.memories.set(event.memory_id, { ...this.memories.get(event.memory_id), ...memoryOf(event) });
        }
        return;
      case "memory_delete":
        this.memories.delete(event.memory_id);
        return;
      case "conversation_turn":
        this.turns.set(Number(event.turn_index), {
          role: event.role,
          content: event.content,
          turn_index: event.turn_index,
          timestamp: event.timestamp,
        });
        return;
      case "memory_clear":
        this.turns.clear();
        return;
      default:
    }
  }

  /** Keeps the first page at page size, dropping the oldest. */
  trimPage() {
    if (this.memories.size <= this.pageSize) return;
    const keep = this.memoryList().slice(0, this.pageSize);
    this.memories = new Map(keep.map((m) => [m.id, m]));
  }

  /** Whether an event means the views must be reloaded from the API (memory restored). */
  static needsReload(event) {
    return event.type === "memory_snapshot" && (event.action === "apply" || event.action === "load");
  }
}

/** Whether `event` changed the memory whose history is open (`openId`, or null). */
export function historyChanged(event, openId) {
  return Boolean(openId) && ["memory_update", "memory_delete"].includes(event.type) && event.memory_id === openId;
}

/**
 * Whether `event` may change what the memory cards show beyond what it carries: memory events
 * bring content and metadata, not the slot, expiry or superseding (a new memory in a slot
 * supersedes another with a `memory_update`), so the page is read again.
 */
export function badgesStale(event) {
  return ["memory_store", "memory_update", "memory_delete"].includes(event.type);
}

/** A memory (API shape) from a memory_store/memory_update event. */
function memoryOf(event) {
  return { id: event.memory_id, content: event.content, metadata: event.metadata ?? {} };
}

/** Events System Events lists. */
export function isSystemEvent(event) {
  return ["memory_persist", "memory_clear", "memory_snapshot", "lagged", "replay_gap"].includes(
    event.type,
  );
}

/**
 * Parses Prometheus text exposition into samples `{name, labels, value}`. Comments, blank lines
 * and lines it does not understand are skipped.
 */
export function parsePrometheus(text) {
  const samples = [];
  const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/;
  const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
  for (const raw of text.split("\n")) {
    if (raw.startsWith("#") || raw.trim() === "") continue;
    const m = line.exec(raw);
    if (!m) continue;
    const labels = {};
    if (m[3]) {
      for (const l of m[3].matchAll(label)) labels[l[1]] = l[2].replace(/\\(.)/g, "$1");
    }
    const value = m[4] === "+Inf" ? Infinity : Number(m[4]);
    if (Number.isNaN(value)) continue;
    samples.push({ name: m[1], labels, value });
  }
  return samples;
}

/** The samples named `name`, as a map from the value of label `by` to the sample value. */
export function byLabel(samples, name, by) {
  const out = {};
  for (const s of samples) if (s.name === name) out[s.labels[by] ?? ""] = s.value;
  return out;
}

/** The value of the unlabelled sample `name`, or null. */
export function scalar(samples, name) {
  const s = samples.find((x) => x.name === name);
  return s ? s.value : null;
}

/**
 * Histogram buckets of `name` (`name_bucket`) for each value of label `by`: sorted
 * `[{le, count}]` with cumulative counts.
 */
export function histograms(samples, name, by) {
  const out = {};
  for (const s of samples) {
    if (s.name !== `${name}_bucket`) continue;
    const key = s.labels[by] ?? "";
    (out[key] ??= []).push({ le: Number(s.labels.le === "+Inf" ? Infinity : s.labels.le), count: s.value });
  }
  for (const key of Object.keys(out)) out[key].sort((a, b) => a.le - b.le);
  return out;
}

/** Buckets minus earlier buckets (observations between two scrapes). */
export function bucketDelta(now, before) {
  if (!before) return now;
  return now.map((b, i) => ({ le: b.le, count: b.count - (before[i]?.count ?? 0) }));
}

/**
 * The q-quantile (0..1) of cumulative buckets, interpolated linearly inside the bucket as
 * Prometheus' histogram_quantile does; null without observations.
 */
export function quantile(buckets, q) {
  if (!buckets || buckets.length === 0) return null;
  const total = buckets[buckets.length - 1].count;
  if (!(total > 0)) return null;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (b.le === Infinity) return prevLe;
      const inBucket = b.count - prevCount;
      if (inBucket <= 0) return b.le;
      return prevLe + (b.le - prevLe) * ((rank - prevCount) / inBucket);
    }
    prevLe = b.le;
    prevCount = b.count;
  }
  return prevLe;
}

/** Per-second rates of counters between two readings `{key: value}` taken `seconds` apart. */
export function rates(now, before, seconds) {
  const out = {};
  if (!before || !(seconds > 0)) return out;
  for (const [key, value] of Object.entries(now)) {
    const delta = value - (before[key] ?? 0);
    out[key] = delta >= 0 ? delta / seconds : 0;
  }
  return out;
}

/**
 * Compares two snapshots (the API's `GET /snapshots/{id}` shape) the way
 * `GET /snapshots/{a}/diff/{b}` does, for servers that do not offer that route.
 */
export function diffSnapshots(from, to, fromName, toName) {
  const old = from?.long_term?.memories ?? {};
  const neu = to?.long_term?.memories ?? {};
  const entry = (id, m) => ({ id, ...m });
  const same = (a, b) => canonical(normalMemory(a)) === canonical(normalMemory(b));
  const turnKey = (t) => `${t.turn_index ?? ""}\u0000${t.role}\u0000${t.content}`;
  const oldTurns = from?.short_term?.turns ?? [];
  const newTurns = to?.short_term?.turns ?? [];
  const oldKeys = new Set(oldTurns.map(turnKey));
  const newKeys = new Set(newTurns.map(turnKey));
  const oldTopics = new Set(from?.long_term?.topics ?? []);
  const newTopics = new Set(to?.long_term?.topics ?? []);
  const statsA = from?.memory_stats?.long_term ?? {};
  const statsB = to?.memory_stats?.long_term ?? {};
  const kinds = new Set([...Object.keys(statsA.source_types ?? {}), ...Object.keys(statsB.source_types ?? {})]);
  const sourceTypes = {};
  for (const k of [...kinds].sort()) {
    const d = (statsB.source_types?.[k] ?? 0) - (statsA.source_types?.[k] ?? 0);
    if (d !== 0) sourceTypes[k] = d;
  }
  return {
    from: fromName,
    to: toName,
    memories: {
      added: Object.entries(neu).filter(([id]) => !(id in old)).map(([id, m]) => entry(id, m)),
      removed: Object.entries(old).filter(([id]) => !(id in neu)).map(([id, m]) => entry(id, m)),
      changed: Object.entries(old)
        .filter(([id, m]) => id in neu && !same(m, neu[id]))
        .map(([id, m]) => ({ id, before: m, after: neu[id] })),
    },
    turns: {
      added: newTurns.filter((t) => !oldKeys.has(turnKey(t))),
      removed: oldTurns.filter((t) => !newKeys.has(turnKey(t))),
    },
    topics: {
      added: [...newTopics].filter((t) => !oldTopics.has(t)).sort(),
      removed: [...oldTopics].filter((t) => !newTopics.has(t)).sort(),
    },
    stats: {
      total_memories: Object.keys(neu).length - Object.keys(old).length,
      turn_count: (to?.short_term?.turn_count ?? 0) - (from?.short_term?.turn_count ?? 0),
      short_term_turns: newTurns.length - oldTurns.length,
      topics: newTopics.size - oldTopics.size,
      average_importance:
        Math.round(((statsB.average_importance ?? 0) - (statsA.average_importance ?? 0)) * 1e9) / 1e9,
      source_types: sourceTypes,
    },
  };
}

/** Milliseconds since the epoch of an RFC 3339 time (UTC when it names no zone), or the text. */
function instant(t) {
  if (typeof t !== "string") return t ?? null;
  const zoned = /(Z|[+-]\d\d:?\d\d)$/.test(t) ? t : `${t}Z`;
  const ms = Date.parse(zoned);
  return Number.isNaN(ms) ? t : ms;
}

/** A snapshot memory with its timestamp as an instant, for comparison. */
function normalMemory(m) {
  return {
    content: m?.content,
    importance: Number(m?.importance ?? 0),
    timestamp: instant(m?.timestamp),
    metadata: m?.metadata ?? {},
  };
}

/** JSON with object keys sorted, so equal values compare equal whatever their key order. */
export function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value ?? null);
}

/**
 * The current state in snapshot shape (for diffing against `current` without the diff route):
 * from a list of memories (API shape) and the `GET /turns` reply.
 */
export function currentAsSnapshot(memories, conversation) {
  const byId = {};
  const topics = new Set();
  const types = {};
  let importance = 0;
  for (const m of memories) {
    const { source_type: sourceType, importance: imp, timestamp, ...rest } = m.metadata ?? {};
    byId[m.id] = {
      content: m.content,
      timestamp,
      importance: imp,
      metadata: { source_type: sourceType, ...rest },
    };
    for (const t of m.metadata?.topics ?? []) topics.add(t);
    types[sourceType] = (types[sourceType] ?? 0) + 1;
    importance += Number(imp ?? 0);
  }
  return {
    short_term: {
      turns: conversation?.turns ?? [],
      turn_count: conversation?.turn_count ?? 0,
    },
    long_term: { memories: byId, topics: [...topics] },
    memory_stats: {
      long_term: {
        source_types: types,
        average_importance: memories.length ? importance / memories.length : 0,
      },
    },
  };
}

/** A short human form of a duration in seconds: "850 µs", "12.3 ms", "1.20 s". */
export function formatSeconds(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return "–";
  if (s < 0.001) return `${Math.round(s * 1e6)} µs`;
  if (s < 1) return `${(s * 1000).toFixed(s < 0.01 ? 2 : 1)} ms`;
  return `${s.toFixed(2)} s`;
}
