// Coda dashboard: the user and session picker — which scope every view shows, and switching
// the page (views, address, stream) to another.

import { $ } from "./dom.js";
import {
  chooseSession,
  makeScope,
  paths,
  searchWithScope,
  sessionChoices,
  subscribeOp,
  userChoices,
  withSession,
} from "./scope.js";
import { ViewState } from "./state.js";
import { renderScope } from "./views.js";

/** The page's state and services (`app`, `api`, `reload` ...), handed over by app.js. */
let page = null;

/** Gives this module the page it works on. */
export function attach(context) {
  page = context;
}

/** A listing the server may not offer (older servers) or that names an unknown user. */
async function optionalList(path, key) {
  try {
    return (await page.api("GET", path))?.[key] ?? [];
  } catch (e) {
    if ([404, 405, 501].includes(e.status)) return [];
    throw e;
  }
}

/** Fills the user picker from `GET /users` (the shown user stays in it). */
export async function loadUsers() {
  const users = userChoices(await optionalList(paths.users(), "users"));
  if (!users.includes(page.app.scope.user)) users.push(page.app.scope.user);
  page.app.users = users;
  renderScope(page.app);
}

/** The session choices of `user`, from `GET /sessions?user_id=`. */
async function sessionsOf(user) {
  return sessionChoices(await optionalList(paths.sessions(makeScope({ user })), "sessions"));
}

/** Fills the session picker for the shown user. */
export async function loadSessions() {
  const scope = page.app.scope;
  const sessions = await sessionsOf(scope.user);
  if (scope.user !== page.app.scope.user) return;
  page.app.sessions = withSession(sessions, page.app.scope.session);
  renderScope(page.app);
}

/**
 * Shows `next` instead of the current scope: fresh views, the address updated, the stream
 * switched with a `subscribe` (its `pong` starts the reload, so nothing of the new scope
 * falls between the switch and what the reload reads).
 */
export function setScope(next) {
  page.app.scope = next;
  history.replaceState(null, "", `${searchWithScope(location.search, next)}${location.hash}`);
  page.app.view = new ViewState({ pageSize: page.app.view.pageSize });
  page.app.view.beginReload();
  page.app.stats = null;
  page.app.snapshots = [];
  page.app.received = {};
  $("search-results").replaceChildren();
  $("search-status").textContent = "";
  $("diff").replaceChildren();
  renderScope(page.app);
  page.showSnapshots();
  page.queueRender();
  const ws = page.app.ws;
  if (ws && ws.readyState === WebSocket.OPEN) {
    page.app.switching += 1;
    ws.send(JSON.stringify(subscribeOp(next)));
    ws.send(JSON.stringify({ op: "ping" }));
  } else {
    // Not open yet: a new socket asks for the new scope in its address.
    if (page.app.started) page.reconnectNow();
    page.reload();
  }
}

export async function pickUser(user) {
  if (user === page.app.scope.user) return;
  const sessions = await sessionsOf(user);
  const session = chooseSession(sessions, null);
  page.app.sessions = withSession(sessions, session);
  setScope(makeScope({ user, session, sessionOnly: page.app.scope.sessionOnly }));
}

export function pickSession(session) {
  if (session === page.app.scope.session) return;
  page.app.sessions = withSession(page.app.sessions, session);
  setScope(makeScope({ ...page.app.scope, session }));
}
