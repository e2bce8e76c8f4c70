// Unit tests for the dashboard's logic: `node --test bin/assets/tests/` (driven by
// tests/dashboard_logic.rs under `cargo test`).

import { test } from "node:test";
import assert from "node:assert/strict";

import {
  Backoff,
  StreamTracker,
  ViewState,
  badgesStale,
  bucketDelta,
  historyChanged,
  diffSnapshots,
  currentAsSnapshot,
  histograms,
  parsePrometheus,
  quantile,
  rates,
  wsUrl,
  formatSeconds,
} from "../state.js";

const EPOCH_A = "5b1c0a3e-0000-4000-8000-000000000001";
const EPOCH_B = "5b1c0a3e-0000-4000-8000-000000000002";

const store = (seq, id, t = "2026-01-01T00:00:00Z") => ({
  type: "memory_store",
  seq,
  memory_id: id,
  content: `memory ${id}`,
  metadata: { source_type: "fact", importance: 0.5, timestamp: t },
});
const turn = (seq, index, content = `turn ${index}`) => ({
  type: "conversation_turn",
  seq,
  role: "user",
  content,
  turn_index: index,
});

test("an event whose seq was already shown is dropped and counted", () => {
  const t = new StreamTracker();
  assert.equal(t.welcome({ type: "welcome", epoch: EPOCH_A, seq: 0 }), true);
  assert.equal(t.accept({ seq: 1 }), true);
  assert.equal(t.accept({ seq: 2 }), true);
  assert.equal(t.accept({ seq: 2 }), false);
  assert.equal(t.accept({ seq: 1 }), false);
  assert.equal(t.accept({ seq: 3 }), true);
  assert.equal(t.duplicates, 2);
  assert.equal(t.lastSeq, 3);
});

test("resume asks for events after the last shown seq in the same epoch", () => {
  const t = new StreamTracker();
  assert.deepEqual(t.resumeParams(), {}, "nothing to resume before the first welcome");
  t.welcome({ epoch: EPOCH_A, seq: 10 });
  t.accept({ seq: 11 });
  t.accept({ seq: 12 });
  assert.deepEqual(t.resumeParams(), { since: "12", epoch: EPOCH_A });
  // Reconnecting to the same server: no reload, and replayed events already shown are dropped.
  assert.equal(t.welcome({ epoch: EPOCH_A, seq: 14 }), false);
  assert.equal(t.accept({ seq: 12 }), false);
  assert.equal(t.accept({ seq: 13 }), true);
});

test("a new epoch (server restarted) forces a reload and restarts seq tracking", () => {
  const t = new StreamTracker();
  t.welcome({ epoch: EPOCH_A, seq: 0 });
  t.accept({ seq: 500 });
  assert.equal(t.welcome({ epoch: EPOCH_B, seq: 3 }), true);
  assert.equal(t.lastSeq, 0);
  assert.equal(t.accept({ seq: 1 }), true, "seq 1 of the new epoch is new");
  assert.deepEqual(t.resumeParams(), { since: "1", epoch: EPOCH_B });
});

test("back-off grows exponentially with jitter and is capped", () => {
  const low = new Backoff({ random: () => 0 });
  const lows = Array.from({ length: 8 }, () => low.next());
  assert.deepEqual(lows, [375, 750, 1500, 3000, 6000, 7500, 7500, 7500]);
  const high = new Backoff({ random: () => 0.999999 });
  const highs = Array.from({ length: 8 }, () => high.next());
  assert.ok(highs.every((d) => d <= 10000), String(highs));
  assert.equal(highs[0], 625);
  assert.equal(highs.at(-1), 10000);
  high.reset();
  assert.equal(high.next(), 625);
});

test("the WebSocket URL follows the page's scheme and host", () => {
  assert.equal(
    wsUrl({ protocol: "http:", host: "127.0.0.1:8765" }, { since: "4", epoch: EPOCH_A }),
    `ws://127.0.0.1:8765/ws?since=4&epoch=${EPOCH_A}`,
  );
  assert.equal(wsUrl({ protocol: "https:", host: "coda.example" }, {}), "wss://coda.example/ws");
  assert.equal(
    wsUrl({ protocol: "http:", host: "h" }, { token: "a b&c" }),
    "ws://h/ws?token=a+b%26c",
  );
});

test("a memory received twice (load then event, or event twice) is shown once", () => {
  const v = new ViewState();
  v.beginReload();
  v.finishReload({ memories: [{ id: "m1", content: "memory m1", metadata: {} }], turns: [], seq: 0 });
  v.apply(store(1, "m1"));
  v.apply(store(2, "m2", "2026-01-02T00:00:00Z"));
  v.apply(store(3, "m2", "2026-01-02T00:00:00Z"));
  assert.deepEqual(
    v.memoryList().map((m) => m.id),
    ["m2", "m1"],
  );
  v.apply(turn(4, 0));
  v.apply(turn(5, 0));
  assert.equal(v.turnList().length, 1);
});

test("events during a reload are held and only those after the loaded seq are applied", () => {
  const v = new ViewState();
  v.apply(turn(1, 0, "before"));
  v.beginReload();
  assert.ok(v.reloading);
  v.apply(turn(2, 1, "during, already loaded"));
  v.apply({ type: "memory_clear", seq: 3 });
  v.apply(turn(4, 2, "after the clear"));
  assert.equal(v.turnList().length, 1, "held, not applied yet");
  // The load read the state when the stream stood at seq 2.
  v.finishReload({
    memories: [],
    turns: [
      { role: "user", content: "before", turn_index: 0 },
      { role: "user", content: "during, already loaded", turn_index: 1 },
    ],
    seq: 2,
  });
  assert.ok(!v.reloading);
  assert.deepEqual(
    v.turnList().map((t) => t.content),
    ["after the clear"],
  );
});

test("deletes and updates apply to the shown page; later pages take no live inserts", () => {
  const v = new ViewState({ pageSize: 2 });
  v.apply(store(1, "a", "2026-01-01T00:00:00Z"));
  v.apply(store(2, "b", "2026-01-02T00:00:00Z"));
  v.apply(store(3, "c", "2026-01-03T00:00:00Z"));
  assert.deepEqual(v.memoryList().map((m) => m.id), ["c", "b"], "the first page stays a page");
  v.apply({ type: "memory_update", seq: 4, memory_id: "b", content: "changed", metadata: { timestamp: "2026-01-02T00:00:00Z" } });
  assert.equal(v.memories.get("b").content, "changed");
  v.apply({ type: "memory_delete", seq: 5, memory_id: "c" });
  assert.deepEqual(v.memoryList().map((m) => m.id), ["b"]);
  v.setMemoryPage([{ id: "x", content: "", metadata: {} }], 2);
  v.apply(store(6, "d"));
  assert.deepEqual(v.memoryList().map((m) => m.id), ["x"]);
});

test("retrievals, system events and snapshot staleness are tracked", () => {
  const v = new ViewState();
  v.apply({ type: "memory_retrieve", seq: 1, query: "tea", results: [] });
  v.apply({ type: "memory_persist", seq: 2, turn_count: 3, memories_added: 1 });
  v.apply({ type: "memory_snapshot", seq: 3, action: "create", snapshot_id: "s" });
  v.note({ type: "replay_gap", from: 4, to: 9 });
  assert.equal(v.retrievals[0].query, "tea");
  assert.deepEqual(v.system.map((e) => e.type), ["replay_gap", "memory_snapshot", "memory_persist"]);
  assert.ok(v.snapshotsStale);
  assert.ok(ViewState.needsReload({ type: "memory_snapshot", action: "apply" }));
  assert.ok(!ViewState.needsReload({ type: "memory_snapshot", action: "create" }));
});

const METRICS = `# HELP coda_events_total Events published, by type.
# TYPE coda_events_total counter
coda_events_total{type="memory_store"} 10
coda_events_total{type="conversation_turn"} 4
coda_websocket_connections 2
coda_operation_duration_seconds_bucket{op="add",le="0.001"} 50
coda_operation_duration_seconds_bucket{op="add",le="0.01"} 90
coda_operation_duration_seconds_bucket{op="add",le="0.1"} 100
coda_operation_duration_seconds_bucket{op="add",le="+Inf"} 100
coda_operation_duration_seconds_sum{op="add"} 0.5
`;

test("Prometheus text parses into samples, histograms and quantiles", () => {
  const samples = parsePrometheus(METRICS);
  assert.equal(samples.find((s) => s.name === "coda_websocket_connections").value, 2);
  const h = histograms(samples, "coda_operation_duration_seconds", "op");
  assert.equal(h.add.length, 4);
  assert.equal(h.add.at(-1).le, Infinity);
  assert.equal(quantile(h.add, 0.5), 0.001);
  // 99th of 100 lies in (0.01, 0.1]: 9 of its 10 observations below.
  assert.ok(Math.abs(quantile(h.add, 0.99) - 0.091) < 1e-9);
  assert.equal(quantile(bucketDelta(h.add, h.add), 0.5), null, "no observations in between");
  assert.deepEqual(rates({ a: 10, b: 4 }, { a: 4, b: 4 }, 2), { a: 3, b: 0 });
  assert.deepEqual(rates({ a: 1 }, { a: 5 }, 2), { a: 0 }, "a counter reset is not negative");
  assert.equal(formatSeconds(0.0125), "12.5 ms");
  assert.equal(formatSeconds(null), "–");
});

test("the client-side diff matches the server's shape and ignores timestamp spelling", () => {
  const a = {
    short_term: { turns: [{ role: "user", content: "hi", turn_index: 0 }], turn_count: 1 },
    long_term: {
      memories: {
        m1: { content: "one", timestamp: "2026-01-01T00:00:00.000000", importance: 0.5, metadata: { source_type: "fact", topics: [] } },
        m2: { content: "two", timestamp: "2026-01-01T00:00:00Z", importance: 0.5, metadata: { source_type: "fact", topics: [] } },
      },
      topics: ["x"],
    },
    memory_stats: { long_term: { source_types: { fact: 2 }, average_importance: 0.5 } },
  };
  const current = currentAsSnapshot(
    [
      { id: "m1", content: "one", metadata: { source_type: "fact", importance: 0.5, timestamp: "2026-01-01T00:00:00Z", topics: [] } },
      { id: "m3", content: "three", metadata: { source_type: "preference", importance: 0.9, timestamp: "2026-01-02T00:00:00Z", topics: ["tea"] } },
    ],
    { turns: [{ role: "user", content: "hi", turn_index: 0 }, { role: "assistant", content: "hello", turn_index: 1 }], turn_count: 2 },
  );
  const d = diffSnapshots(a, current, "a", "current");
  assert.equal(d.from, "a");
  assert.deepEqual(d.memories.added.map((m) => m.id), ["m3"]);
  assert.deepEqual(d.memories.removed.map((m) => m.id), ["m2"]);
  assert.deepEqual(d.memories.changed, [], "m1 differs only in how its time is written");
  assert.deepEqual(d.turns.added.map((t) => t.content), ["hello"]);
  assert.deepEqual(d.topics, { added: ["tea"], removed: ["x"] });
  assert.equal(d.stats.total_memories, 0);
  assert.deepEqual(d.stats.source_types, { fact: -1, preference: 1 });
  const changed = structuredClone(current);
  changed.long_term.memories.m1.content = "uno";
  assert.deepEqual(diffSnapshots(a, changed, "a", "b").memories.changed.map((c) => c.id), ["m1"]);
});

test("a live update keeps the slot, expiry and superseding the event does not carry", () => {
  const v = new ViewState();
  v.finishReload({
    memories: [{ id: "p", content: "Paris", metadata: {}, slot: "home_city", expires_at: "2027-01-01T00:00:00Z" }],
    turns: [],
  });
  v.apply({ type: "memory_update", seq: 1, memory_id: "p", content: "Paris, France", metadata: { importance: 0.9 } });
  assert.deepEqual(v.memories.get("p"), {
    id: "p",
    content: "Paris, France",
    metadata: { importance: 0.9 },
    slot: "home_city",
    expires_at: "2027-01-01T00:00:00Z",
  });
});

test("the open history is read again when its memory changes, and only then", () => {
  assert.ok(historyChanged({ type: "memory_update", memory_id: "p" }, "p"));
  assert.ok(historyChanged({ type: "memory_delete", memory_id: "p" }, "p"));
  assert.ok(!historyChanged({ type: "memory_update", memory_id: "b" }, "p"), "another memory");
  assert.ok(!historyChanged({ type: "memory_retrieve", memory_id: "p" }, "p"), "not a change");
  assert.ok(!historyChanged({ type: "memory_update", memory_id: "p" }, null), "no history open");
  assert.ok(badgesStale({ type: "memory_store" }) && badgesStale({ type: "memory_update" }));
  assert.ok(!badgesStale({ type: "conversation_turn" }) && !badgesStale({ type: "memory_retrieve" }));
});
