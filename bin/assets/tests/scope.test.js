// Unit tests for the dashboard's user and session scope (bin/assets/scope.js).

import { test } from "node:test";
import assert from "node:assert/strict";

import {
  chooseSession,
  eventInScope,
  makeScope,
  paths,
  scopeFromSearch,
  scopeLabel,
  searchBody,
  searchWithScope,
  sessionChoices,
  sessionLabel,
  sessionsAfter,
  snapshotBody,
  streamParams,
  subscribeOp,
  userChoices,
  validId,
  withQuery,
  withSession,
} from "../scope.js";

const alice = makeScope({ user: "alice", session: "chat-1" });
const aliceOnly = makeScope({ user: "alice", session: "chat-1", sessionOnly: true });

test("the page opens on user default, session default unless its address names valid ids", () => {
  assert.deepEqual(scopeFromSearch(""), { user: "default", session: "default", sessionOnly: false });
  assert.deepEqual(scopeFromSearch("?user_id=alice&session_id=chat-1&session_only=1"), aliceOnly);
  assert.deepEqual(scopeFromSearch("?user_id=a%20b&session_id="), makeScope());
  assert.deepEqual(scopeFromSearch(`?user_id=${"u".repeat(129)}`).user, "default");
  assert.ok(validId("a.b_c:d@e-f") && validId("u".repeat(128)));
  assert.ok(!validId("") && !validId("é") && !validId("x/y") && !validId(undefined));
  assert.equal(
    searchWithScope("?debug=1&session_only=1", alice),
    "?debug=1&user_id=alice&session_id=chat-1",
    "other parameters stay, session_only goes when off",
  );
  assert.equal(scopeFromSearch(searchWithScope("", aliceOnly)).sessionOnly, true);
});

test("every view asks the API for the scope; memory views add the session only when narrowed", () => {
  assert.equal(withQuery("/x", { a: "1 2", b: undefined, c: null }), "/x?a=1+2");
  assert.equal(withQuery("/x?a=1", { b: 2 }), "/x?a=1&b=2");
  assert.equal(withQuery("/x", {}), "/x");
  assert.equal(paths.memories(alice, { limit: 20, offset: 40 }), "/memories?user_id=alice&limit=20&offset=40");
  assert.equal(
    paths.memories(aliceOnly, { limit: 20, offset: 0 }),
    "/memories?user_id=alice&session_id=chat-1&limit=20&offset=0",
  );
  assert.equal(
    paths.memories(alice, { limit: 20, offset: 0, includeSuperseded: true }),
    "/memories?user_id=alice&limit=20&offset=0&include_superseded=true",
  );
  assert.equal(paths.history(alice, "a b/c"), "/memories/a%20b%2Fc/history?user_id=alice");
  assert.equal(paths.history(aliceOnly, "m"), "/memories/m/history?user_id=alice&session_id=chat-1");
  assert.equal(paths.turns(alice), "/sessions/chat-1/turns?user_id=alice");
  assert.equal(paths.persist(alice), "/sessions/chat-1/persist?user_id=alice");
  assert.equal(paths.stats(alice), "/stats?user_id=alice&session_id=chat-1");
  assert.equal(
    paths.snapshots(alice, { q: "2026" }),
    "/snapshots?user_id=alice&session_id=chat-1&q=2026",
  );
  assert.equal(paths.sessions(alice), "/sessions?user_id=alice&limit=200");
  assert.equal(paths.users(), "/users?limit=200");
  assert.deepEqual(searchBody(alice, { query: "tea", limit: 5 }), { query: "tea", limit: 5, user_id: "alice" });
  assert.deepEqual(searchBody(aliceOnly, { query: "tea" }), { query: "tea", user_id: "alice", session_id: "chat-1" });
  assert.deepEqual(snapshotBody(alice, { save: true }), { save: true, user_id: "alice", session_id: "chat-1" });
});

test("the stream is filtered to the user, and to the session when the page is narrowed to it", () => {
  assert.deepEqual(streamParams(alice), { user_id: "alice" });
  assert.deepEqual(streamParams(aliceOnly), { user_id: "alice", session_id: "chat-1" });
  assert.deepEqual(subscribeOp(aliceOnly), { op: "subscribe", types: [], user_id: "alice", session_id: "chat-1" });
});

test("events of other users and other sessions' conversations are not shown", () => {
  const turn = (user, session) => ({ type: "conversation_turn", user_id: user, session_id: session, seq: 1 });
  const store = (user, session) => ({ type: "memory_store", user_id: user, session_id: session, seq: 1 });
  assert.ok(eventInScope(turn("alice", "chat-1"), alice));
  assert.ok(!eventInScope(turn("alice", "chat-2"), alice));
  assert.ok(!eventInScope(turn("bob", "chat-1"), alice));
  assert.ok(eventInScope(store("alice", undefined), alice), "the user's memories, whatever their session");
  assert.ok(eventInScope(store("alice", "chat-2"), alice));
  assert.ok(!eventInScope(store("bob", undefined), alice));
  assert.ok(eventInScope(store("alice", "chat-1"), aliceOnly));
  assert.ok(!eventInScope(store("alice", undefined), aliceOnly), "narrowed: only the session's memories");
  assert.ok(!eventInScope({ type: "memory_retrieve", user_id: "alice" }, aliceOnly));
  const deflt = makeScope();
  assert.ok(eventInScope({ type: "memory_clear", user_id: "default" }, deflt), "no session_id = session default");
  assert.ok(!eventInScope({ type: "memory_clear", user_id: "default" }, makeScope({ session: "s2" })));
  assert.ok(eventInScope({ type: "memory_snapshot", user_id: "alice", session_id: "chat-1" }, alice));
  assert.ok(eventInScope({ type: "conversation_turn", seq: 1 }, alice), "servers without scopes: kept");
  assert.ok(eventInScope({ type: "user_delete", user_id: "alice" }, alice));
  assert.ok(!eventInScope({ type: "user_delete", user_id: "bob" }, alice));
});

test("the pickers offer default first and choose a session the user has", () => {
  assert.deepEqual(userChoices([{ user_id: "bob" }, { user_id: "default" }, { user_id: "alice" }, { user_id: "bad id" }]), [
    "default",
    "bob",
    "alice",
  ]);
  assert.deepEqual(userChoices(undefined), ["default"]);
  const listed = [
    { session_id: "chat-2", turn_count: 1 },
    { session_id: "chat-1", turn_count: 4 },
  ];
  const choices = sessionChoices(listed);
  assert.deepEqual(choices.map((s) => s.session_id), ["chat-2", "chat-1", "default"]);
  assert.equal(chooseSession(choices, "chat-1"), "chat-1", "the wanted one when the user has it");
  assert.equal(chooseSession(choices, "default"), "default", "default is always there");
  assert.equal(chooseSession(choices, "gone"), "chat-2", "else the most recently active");
  const withDefault = sessionChoices([{ session_id: "chat-9", turn_count: 1 }, { session_id: "default", turn_count: 3 }]);
  assert.equal(chooseSession(withDefault, "gone"), "default", "default when the user has talked in it");
  assert.equal(chooseSession(sessionChoices([]), "x"), "default");
  assert.equal(sessionLabel({ session_id: "chat-1", turn_count: 1 }), "chat-1 (1 turn)");
  assert.equal(scopeLabel(alice), "user alice · session chat-1");
  assert.equal(scopeLabel(alice, "memory"), "user alice · all sessions");
  assert.equal(scopeLabel(aliceOnly, "memory"), "user alice · session chat-1");
  assert.deepEqual(withSession(choices, "chat-1"), choices);
  assert.deepEqual(withSession(choices, "new").at(-1), { session_id: "new", turn_count: 0 });
});

test("live turns add and reorder sessions; a deleted session leaves the list", () => {
  let sessions = [{ session_id: "chat-1", turn_count: 2 }];
  sessions = sessionsAfter(sessions, { type: "conversation_turn", user_id: "alice", session_id: "chat-2", turn_index: 0 }, alice);
  assert.deepEqual(sessions.map((s) => [s.session_id, s.turn_count]), [["chat-2", 1], ["chat-1", 2]]);
  sessions = sessionsAfter(sessions, { type: "conversation_turn", user_id: "alice", session_id: "chat-1", turn_index: 2 }, alice);
  assert.deepEqual(sessions.map((s) => [s.session_id, s.turn_count]), [["chat-1", 3], ["chat-2", 1]]);
  const same = sessionsAfter(sessions, { type: "conversation_turn", user_id: "bob", session_id: "x", turn_index: 0 }, alice);
  assert.equal(same, sessions, "another user's turn changes nothing");
  sessions = sessionsAfter(sessions, { type: "session_delete", user_id: "alice", session_id: "chat-2" }, alice);
  assert.deepEqual(sessions.map((s) => s.session_id), ["chat-1"]);
  assert.equal(sessionsAfter(sessions, { type: "memory_store", user_id: "alice" }, alice), sessions);
});
