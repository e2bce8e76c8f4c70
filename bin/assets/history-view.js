// Coda dashboard: one memory's history (SPEC §10), oldest version first, in a dialog over the
// memory list. Asked in the memory views' scope, read again when the memory changes live.

import { $, fmtTime, h, lifeChips, metaChips } from "./dom.js";
import { paths, scopeLabel } from "./scope.js";

/** The page's state and services (`app`, `api` ...), handed over by app.js. */
let page = null;
/** The id of the memory whose history is open, or null. */
let openId = null;
/** Counts loads, so an older answer never replaces a newer one. */
let serial = 0;

/** Gives this module the page it works on. */
export function attach(context) {
  page = context;
  $("history-dialog").addEventListener("close", () => {
    openId = null;
    serial += 1;
  });
}

/** The id of the memory whose history is open, or null. */
export function openHistoryId() {
  return openId;
}

/** Opens (or switches the open dialog to) the history of memory `id`. */
export function openHistory(id) {
  openId = id;
  $("history-id").textContent = id;
  $("history-status").textContent = "Loading…";
  $("history-versions").replaceChildren();
  const dialog = $("history-dialog");
  if (!dialog.open) dialog.showModal();
  return refreshHistory();
}

/** Loads the open memory's history again (after a live change to it). */
export async function refreshHistory() {
  const id = openId;
  if (!id) return;
  const mine = ++serial;
  const scope = page.app.scope;
  let versions;
  try {
    versions = (await page.api("GET", paths.history(scope, id))).history ?? [];
  } catch (e) {
    if (mine !== serial) return;
    $("history-versions").replaceChildren();
    $("history-status").textContent =
      e.status === 404
        ? `No history for memory ${id} (${scopeLabel(scope, "memory")}): it was never stored here, or its user was erased.`
        : `The history could not be loaded: ${e.message}`;
    $("history-status").dataset.kind = "error";
    return;
  }
  if (mine !== serial) return;
  $("history-status").textContent = `${versions.length} version${versions.length === 1 ? "" : "s"}, oldest first`;
  delete $("history-status").dataset.kind;
  $("history-versions").replaceChildren(...versions.map(versionItem));
}

/** One version: what happened, when and by whom, and the memory as it was then. */
function versionItem(v) {
  const turns = v.source_turns ?? [];
  return h(
    "li",
    { class: `version ${v.action}`, dataset: { version: v.version, action: v.action } },
    h(
      "div",
      { class: "version-head" },
      h("span", { class: "version-no", text: `v${v.version}` }),
      h("span", { class: `tag action ${v.action}`, text: v.action }),
      h("span", { class: "muted", text: `by ${v.by} · ${fmtTime(v.at)}` }),
    ),
    h("p", { class: "content", text: v.content }),
    h("div", { class: "meta" }, ...lifeChips({ slot: v.slot, expires_at: v.expires_at }), ...metaChips(v.metadata)),
    v.superseded_by
      ? h(
          "p",
          { class: "muted superseded-by" },
          "superseded by ",
          h("button", { class: "link", type: "button", dataset: { history: v.superseded_by }, title: "Open its history", text: v.superseded_by }),
        )
      : null,
    turns.length ? h("p", { class: "muted source-turns", text: `from turns ${turns.map((t) => `#${t}`).join(", ")}` }) : null,
  );
}
