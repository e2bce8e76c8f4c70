// Coda dashboard: rendering the views from the page state (`app` in app.js).

import { $, fmtClock, fmtNum, fmtTime, h, keyedList, memoryCard, scores } from "./dom.js";
import { scopeLabel, sessionLabel } from "./scope.js";

/** Replaces `select`'s options with `options` (`{value, text}`) and selects `value`. */
function fillSelect(select, options, value) {
  const same =
    options.length === select.options.length &&
    options.every((o, i) => select.options[i].value === o.value && select.options[i].text === o.text);
  if (!same) select.replaceChildren(...options.map((o) => h("option", { value: o.value, text: o.text })));
  if (select.value !== value) select.value = value;
}

/** The user and session pickers, and the scope each view's heading names. */
export function renderScope(app) {
  fillSelect($("scope-user"), app.users.map((u) => ({ value: u, text: u })), app.scope.user);
  fillSelect(
    $("scope-session"),
    app.sessions.map((s) => ({ value: s.session_id, text: sessionLabel(s) })),
    app.scope.session,
  );
  $("scope-session-only").checked = app.scope.sessionOnly;
  for (const el of document.querySelectorAll(".scope-label")) {
    el.textContent = scopeLabel(app.scope, el.dataset.part);
  }
}

/** The Memory view: the shown page, its pager, and the search form's types. */
export function renderMemories(app) {
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
  $("page-next").disabled = total === undefined ? list.length < app.view.pageSize : end >= total;
  const select = $("search-type");
  const types = Object.keys(app.stats?.long_term?.source_types ?? {});
  const have = [...select.options].map((o) => o.value);
  for (const t of types) if (!have.includes(t)) select.append(h("option", { value: t, text: t }));
}

/** Live retrievals, newest first. */
export function renderRetrievals(app) {
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

/** The Conversation view: the session's short-term window. */
export function renderTurns(app) {
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

/** System events and stream notices. */
export function renderSystem(app) {
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

/** The snapshot list; its buttons call `actions.save`, `actions.compare`, `actions.apply`. */
export function renderSnapshots(app, actions) {
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
        s.location ? null : h("button", { class: "ghost small", type: "button", dataset: { action: "save" }, text: "Save", onclick: () => actions.save(s.snapshot_id) }),
        h("button", { class: "ghost small", type: "button", dataset: { action: "diff" }, text: "Diff vs now", onclick: () => actions.compare(s.snapshot_id, "current") }),
        h("button", { class: "danger small", type: "button", dataset: { action: "apply" }, text: "Apply…", onclick: () => actions.apply(s.snapshot_id) }),
      ),
    );
  keyedList($("snap-rows"), app.snapshots, (s) => s.snapshot_id, row);
  $("snap-empty").hidden = app.snapshots.length > 0;
  $("badge-snapshots").textContent = app.snapshots.length ? String(app.snapshots.length) : "";
  fillDiffSelects(app);
}

function fillDiffSelects(app) {
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
