// Coda dashboard: the snapshot comparison, side by side.

import { fmtNum, h, metaChips } from "./dom.js";

function diffMemory(m, cls) {
  return h(
    "li",
    { class: `card diff-item ${cls}` },
    h("p", { class: "content", text: m.content }),
    h("div", { class: "meta" }, ...metaChips({ ...(m.metadata ?? {}), importance: m.importance ?? m.metadata?.importance })),
  );
}

export function renderDiff(d) {
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
