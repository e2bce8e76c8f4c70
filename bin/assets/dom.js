// Coda dashboard: building page elements from data. Everything the server sends goes in with
// textContent, never parsed as HTML.

export const $ = (id) => document.getElementById(id);

/** Makes an element: `h("li", {class: "x", text: "y", onclick}, child, ...)`. */
export function h(tag, props = {}, ...children) {
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
export function keyedList(container, items, key, make) {
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

export function fmtTime(t) {
  if (!t) return "";
  const d = new Date(/(Z|[+-]\d\d:?\d\d)$/.test(t) ? t : `${t}Z`);
  if (Number.isNaN(d.getTime())) return String(t);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

export function fmtClock(t) {
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? "" : d.toLocaleTimeString();
}

export function fmtNum(x, digits = 2) {
  return x === null || x === undefined || !Number.isFinite(Number(x)) ? "–" : Number(x).toFixed(digits);
}

export function metaChips(metadata = {}) {
  const chips = [];
  if (metadata.source_type) chips.push(h("span", { class: "chip type", text: metadata.source_type }));
  if (metadata.importance !== undefined) {
    chips.push(h("span", { class: "chip", title: "importance", text: `importance ${fmtNum(metadata.importance)}` }));
  }
  for (const t of metadata.topics ?? []) chips.push(h("span", { class: "chip topic", text: `#${t}` }));
  return chips;
}

/** Badges for what a memory is about (`slot`), when it expires, and whether it was replaced. */
export function lifeChips(m) {
  const chips = [];
  if (m.superseded_by) {
    chips.push(h("span", { class: "chip superseded", title: `superseded by ${m.superseded_by}`, text: "superseded" }));
  }
  if (m.slot) chips.push(h("span", { class: "chip slot", title: "slot", text: `slot ${m.slot}` }));
  if (m.expires_at) {
    chips.push(h("span", { class: "chip expires", title: `expires ${m.expires_at}`, text: `expires ${fmtTime(m.expires_at)}` }));
  }
  return chips;
}

/** A memory's card; its "history" button carries `data-history` (app.js opens the history). */
export function memoryCard(m, extra = []) {
  return h(
    "li",
    { class: `card memory${m.superseded_by ? " superseded" : ""}`, dataset: { id: m.id } },
    h("p", { class: "content", text: m.content }),
    h(
      "div",
      { class: "meta" },
      ...extra,
      ...lifeChips(m),
      ...metaChips(m.metadata),
      h("span", { class: "time", text: fmtTime(m.metadata?.timestamp) }),
      m.id ? h("button", { class: "ghost small history", type: "button", dataset: { history: m.id }, title: "Every version of this memory", text: "history" }) : null,
    ),
  );
}

export function scoreBar(label, value, cls) {
  const v = Math.max(0, Math.min(1, Number(value) || 0));
  return h(
    "span",
    { class: `score ${cls}`, title: `${label} ${fmtNum(value, 3)}` },
    h("span", { class: "score-label", text: `${label} ${fmtNum(value, 3)}` }),
    h("span", { class: "bar" }, h("span", { class: "fill", style: { width: `${(v * 100).toFixed(0)}%` } })),
  );
}

export function scores(r) {
  const out = [scoreBar("similarity", r.similarity, "sim")];
  if (r.score !== undefined && r.score !== null) out.push(scoreBar("score", r.score, "hybrid"));
  return out;
}
