// Coda dashboard: which user and session the page shows (SPEC §8), as pure functions so they
// can be tested under Node. The page's scope is a user, one of its sessions, and whether the
// memory views are narrowed to that session too.
//
// Memories belong to the user; most carry no session (everything added through
// `POST /memories`), so narrowing the memory views to a session is a choice, off by default:
// the user's memories, that session's conversation. Conversation, persist, clear and snapshots
// are always the session's.

/** The id every scope defaults to. */
export const DEFAULT_ID = "default";

const ID = /^[A-Za-z0-9._:@-]{1,128}$/;

/** Whether `id` is a valid scope id (1–128 bytes of `[A-Za-z0-9._:@-]`). */
export function validId(id) {
  return typeof id === "string" && ID.test(id);
}

/** A scope: `{user, session, sessionOnly}`; bad or missing ids become `default`. */
export function makeScope({ user, session, sessionOnly = false } = {}) {
  return {
    user: validId(user) ? user : DEFAULT_ID,
    session: validId(session) ? session : DEFAULT_ID,
    sessionOnly: Boolean(sessionOnly),
  };
}

/** The scope a page address asks for (`?user_id=U&session_id=S&session_only=1`). */
export function scopeFromSearch(search) {
  const params = new URLSearchParams(search);
  return makeScope({
    user: params.get("user_id") ?? undefined,
    session: params.get("session_id") ?? undefined,
    sessionOnly: ["1", "true"].includes(params.get("session_only") ?? ""),
  });
}

/** `search` with the scope's parameters set (and other parameters kept). */
export function searchWithScope(search, scope) {
  const params = new URLSearchParams(search);
  params.set("user_id", scope.user);
  params.set("session_id", scope.session);
  if (scope.sessionOnly) params.set("session_only", "1");
  else params.delete("session_only");
  return `?${params.toString()}`;
}

/** `path` with query parameters `params` appended (undefined and null values left out). */
export function withQuery(path, params) {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null) query.set(k, String(v));
  }
  const text = query.toString();
  if (!text) return path;
  return `${path}${path.includes("?") ? "&" : "?"}${text}`;
}

/** Scope ids for the memory views: the user, and the session only when narrowed to it. */
export function memoryScope(scope) {
  return scope.sessionOnly ? { user_id: scope.user, session_id: scope.session } : { user_id: scope.user };
}

/** Scope ids for session views (conversation, stats, snapshots): the user and the session. */
export function sessionScope(scope) {
  return { user_id: scope.user, session_id: scope.session };
}

/** The API paths (under /api/v1) each view loads, for `scope`. */
export const paths = {
  users: () => withQuery("/users", { limit: 200 }),
  sessions: (scope) => withQuery("/sessions", { user_id: scope.user, limit: 200 }),
  memories: (scope, { limit, offset, includeSuperseded = false }) =>
    withQuery("/memories", { ...memoryScope(scope), limit, offset, include_superseded: includeSuperseded ? "true" : undefined }),
  /** One memory's versions, asked in the memory views' scope (SPEC §10). */
  history: (scope, id) => withQuery(`/memories/${encodeURIComponent(id)}/history`, memoryScope(scope)),
  turns: (scope) => withQuery(`/sessions/${encodeURIComponent(scope.session)}/turns`, { user_id: scope.user }),
  persist: (scope) => withQuery(`/sessions/${encodeURIComponent(scope.session)}/persist`, { user_id: scope.user }),
  stats: (scope) => withQuery("/stats", sessionScope(scope)),
  snapshots: (scope, filters = {}) => withQuery("/snapshots", { ...sessionScope(scope), ...filters }),
};

/** The body of `POST /memories/search` for `scope`. */
export function searchBody(scope, fields) {
  return { ...fields, ...memoryScope(scope) };
}

/** The body of `POST /snapshots` for `scope`. */
export function snapshotBody(scope, fields) {
  return { ...fields, ...sessionScope(scope) };
}

/**
 * The `/ws` query parameters that filter the stream to what the page shows: always the user;
 * the session too when the memory views are narrowed to it (otherwise the user's memory events,
 * which carry no session or another one, would never arrive).
 */
export function streamParams(scope) {
  return memoryScope(scope);
}

/** The `subscribe` op that switches an open stream to `scope`. */
export function subscribeOp(scope) {
  return { op: "subscribe", types: [], ...streamParams(scope) };
}

/** Event types about one session's conversation (or a snapshot of it). */
const SESSION_EVENTS = new Set([
  "conversation_turn",
  "memory_clear",
  "memory_persist",
  "memory_snapshot",
  "session_delete",
]);

/** Event types about the user's memories. */
const MEMORY_EVENTS = new Set(["memory_store", "memory_update", "memory_delete", "memory_retrieve"]);

/**
 * Whether `event` belongs on a page showing `scope`. The server filters the stream by user
 * (and session when narrowed); this also drops other sessions' conversation events and
 * anything that was in flight when the scope changed. Events from servers that send no
 * `user_id` are kept; a session event without `session_id` is about session `default`.
 */
export function eventInScope(event, scope) {
  if (event.user_id !== undefined && event.user_id !== scope.user) return false;
  if (SESSION_EVENTS.has(event.type)) {
    if (event.user_id === undefined && event.session_id === undefined) return true;
    return (event.session_id ?? DEFAULT_ID) === scope.session;
  }
  if (MEMORY_EVENTS.has(event.type)) {
    return !scope.sessionOnly || event.session_id === scope.session;
  }
  return true;
}

/** The user ids the picker offers: `default` first, then the listed users, each once. */
export function userChoices(users) {
  const ids = (users ?? []).map((u) => u.user_id).filter(validId);
  return [DEFAULT_ID, ...ids.filter((id) => id !== DEFAULT_ID)].filter((id, i, all) => all.indexOf(id) === i);
}

/**
 * The sessions the picker offers, most recent activity first as listed, with `default` (which
 * always answers) added when the user has no such session yet.
 */
export function sessionChoices(sessions) {
  const listed = (sessions ?? []).filter((s) => validId(s.session_id));
  const seen = new Set();
  const out = [];
  for (const s of listed) {
    if (seen.has(s.session_id)) continue;
    seen.add(s.session_id);
    out.push(s);
  }
  if (!seen.has(DEFAULT_ID)) out.push({ session_id: DEFAULT_ID, turn_count: 0 });
  return out;
}

/**
 * The session to show among `choices` (from sessionChoices): `wanted` when the user has it,
 * else `default` when the user has talked in it, else the most recently active one, else
 * `default`.
 */
export function chooseSession(choices, wanted) {
  const ids = choices.map((s) => s.session_id);
  if (ids.includes(wanted)) return wanted;
  const byId = new Map(choices.map((s) => [s.session_id, s]));
  if (Number(byId.get(DEFAULT_ID)?.turn_count ?? 0) > 0) return DEFAULT_ID;
  const active = choices.find((s) => s.session_id !== DEFAULT_ID);
  return active ? active.session_id : DEFAULT_ID;
}

/** A picker label for a session: its id and turn count. */
export function sessionLabel(s) {
  const n = Number(s.turn_count ?? 0);
  return `${s.session_id} (${n} turn${n === 1 ? "" : "s"})`;
}

/**
 * What a view's heading says it shows: `part` "memory" for the memory views (the user's, or
 * the session's when narrowed), "session" for the conversation, system events and snapshots.
 */
export function scopeLabel(scope, part = "session") {
  if (part === "memory" && !scope.sessionOnly) return `user ${scope.user} · all sessions`;
  return `user ${scope.user} · session ${scope.session}`;
}

/** `choices` (from sessionChoices) with the session `id` in it, added empty when missing. */
export function withSession(choices, id) {
  if (choices.some((s) => s.session_id === id)) return choices;
  return [...choices, { session_id: id, turn_count: 0 }];
}

/**
 * The session list after a live event: a turn in a session the list lacks adds it (most recent
 * first); a deleted session goes. Returns the same array when nothing changed.
 */
export function sessionsAfter(sessions, event, scope) {
  if (event.user_id !== undefined && event.user_id !== scope.user) return sessions;
  const id = event.session_id;
  if (!validId(id)) return sessions;
  if (event.type === "conversation_turn") {
    const at = sessions.findIndex((s) => s.session_id === id);
    const known = at >= 0 ? sessions[at] : { session_id: id, user_id: scope.user, turn_count: 0 };
    const updated = { ...known, turn_count: Math.max(Number(known.turn_count ?? 0), Number(event.turn_index ?? 0) + 1), last_turn_at: event.timestamp };
    return [updated, ...sessions.filter((s) => s.session_id !== id)];
  }
  if (event.type === "session_delete" && id !== DEFAULT_ID) {
    const kept = sessions.filter((s) => s.session_id !== id);
    return kept.length === sessions.length ? sessions : kept;
  }
  return sessions;
}
