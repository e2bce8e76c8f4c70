// Coda dashboard: what the page's buttons and forms do — search, snapshots (create, save,
// apply, compare) and persist — always in the page's scope.

import { renderDiff } from "./diff-view.js";
import { $, h, memoryCard, scores } from "./dom.js";
import { makeScope, paths, searchBody, snapshotBody } from "./scope.js";
import { currentAsSnapshot, diffSnapshots } from "./state.js";

/** The page's state and services (`app`, `api`, `reload` ...), handed over by app.js. */
let page = null;

/** Gives this module the page it works on. */
export function attach(context) {
  page = context;
}

export async function search(event) {
  event.preventDefault();
  const query = $("search-q").value.trim();
  if (!query) return;
  const body = searchBody(page.app.scope, { query, limit: Number($("search-limit").value) || 5, min_similarity: Number($("search-min").value) || 0 });
  const type = $("search-type").value;
  if (type) body.filter = { source_type: type };
  $("search-status").textContent = "Searching…";
  try {
    const data = await page.api("POST", "/memories/search", body);
    const results = data.results ?? [];
    $("search-status").textContent = `${results.length} result${results.length === 1 ? "" : "s"} for “${query}”`;
    $("search-results").replaceChildren(...results.map((r) => memoryCard(r, scores(r))));
  } catch (e) {
    $("search-status").textContent = e.message;
  }
}

export async function createSnapshot() {
  const button = $("snap-create");
  button.disabled = true;
  try {
    const made = await page.api("POST", "/snapshots", snapshotBody(page.app.scope, { save: $("snap-save").checked }));
    await page.loadSnapshots();
    page.showBanner(`Snapshot ${made.snapshot_id} created${made.location ? " and saved" : ""}.`, "info");
  } catch (e) {
    page.report(e);
  } finally {
    button.disabled = false;
  }
}

export async function saveSnapshot(id) {
  try {
    const saved = await page.api("POST", `/snapshots/${encodeURIComponent(id)}/save`);
    await page.loadSnapshots();
    page.showBanner(`Saved ${id} to ${saved.location}.`, "info");
  } catch (e) {
    page.report(e);
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

export async function applySnapshot(id) {
  const ok = await confirmDialog(
    "Apply snapshot?",
    `Memory will be restored to ${id}. Memories and turns added since then are replaced.`,
    "Apply",
  );
  if (!ok) return;
  try {
    await page.api("POST", `/snapshots/${encodeURIComponent(id)}/apply`);
    page.showBanner(`Applied ${id}.`, "info");
    await page.reload();
  } catch (e) {
    page.report(e);
  }
}

/** All memories (every page) and the conversation, as a snapshot-shaped object. */
async function currentState() {
  const memories = [];
  for (let offset = 0; ; offset += 500) {
    // A snapshot holds the user's memories and one session: compare with the same.
    const listed = await page.api("GET", paths.memories(makeScope({ user: page.app.scope.user }), { limit: 500, offset }));
    memories.push(...(listed.memories ?? []));
    if ((listed.memories ?? []).length < 500) break;
  }
  return currentAsSnapshot(memories, await page.loadTurns(page.app.scope));
}

async function snapshotOrCurrent(id) {
  return id === "current" ? currentState() : page.api("GET", `/snapshots/${encodeURIComponent(id)}`);
}

export async function compare(a, b) {
  page.selectTab("snapshots");
  $("diff-a").value = a;
  $("diff-b").value = b;
  const box = $("diff");
  box.replaceChildren(h("p", { class: "muted", text: "Comparing…" }));
  try {
    let diff;
    try {
      diff = await page.api("GET", `/snapshots/${encodeURIComponent(a)}/diff/${encodeURIComponent(b)}`);
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

export async function persist() {
  try {
    const out = await page.api("POST", paths.persist(page.app.scope));
    page.showBanner(`Persisted ${out.turn_count} turns: ${out.memories_added} memories added.`, "info");
  } catch (e) {
    page.report(e);
  }
}
