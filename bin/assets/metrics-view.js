// Coda dashboard: the Metrics view, from /metrics (or what the event stream tells without it).

import { $, fmtNum, h } from "./dom.js";
import { bucketDelta, byLabel, formatSeconds, histograms, parsePrometheus, quantile, rates, scalar } from "./state.js";

/** Milliseconds between scrapes. */
export const METRICS_EVERY_MS = 2000;
const HISTORY = 90;

const PALETTE = ["#6d5efc", "#16a394", "#e8833a", "#d94f70", "#3b8beb", "#a4b13a", "#8a5cc2", "#5f6b7a"];

/**
 * Scrapes /metrics (with `headers`), records a point in `app.metrics` and draws the view; the
 * event counts `app` saw on the stream stand in when /metrics cannot be read.
 */
export async function scrapeMetrics(app, headers) {
  const now = performance.now();
  const m = app.metrics;
  let sample = null;
  try {
    const res = await fetch("/metrics", { headers, cache: "no-store" });
    if (res.ok) sample = parsePrometheus(await res.text());
    $("metrics-status").textContent = res.ok ? "" : `/metrics answered ${res.status}; showing what the event stream tells.`;
  } catch {
    $("metrics-status").textContent = "/metrics is unreachable; showing what the event stream tells.";
  }
  const point = { t: now, events: {}, latency: {}, clients: null, dropped: null, dups: null };
  if (sample) {
    point.events = byLabel(sample, "coda_events_total", "type");
    point.buckets = histograms(sample, "coda_operation_duration_seconds", "op");
    point.clients = scalar(sample, "coda_websocket_connections");
    point.dropped = scalar(sample, "coda_websocket_events_dropped_total");
    point.dups = scalar(sample, "coda_duplicates_suppressed_total");
  } else {
    point.events = { ...m.streamCounts };
  }
  point.stream = { ...m.streamCounts };
  const prev = m.prev;
  const seconds = prev ? (now - prev.t) / 1000 : 0;
  point.rates = rates(point.events, prev?.events, seconds);
  for (const [op, buckets] of Object.entries(point.buckets ?? {})) {
    const window = bucketDelta(buckets, prev?.buckets?.[op]);
    const use = quantile(window, 0.5) === null ? buckets : window;
    point.latency[op] = { p50: quantile(use, 0.5), p99: quantile(use, 0.99), live: use === window };
  }
  m.prev = point;
  if (prev) {
    m.history.push(point);
    if (m.history.length > HISTORY) m.history.shift();
  }
  renderMetrics(app, point);
}

/** Draws the Metrics view for the latest `point`. */
export function renderMetrics(app, point) {
  const total = Object.values(point.rates).reduce((a, b) => a + b, 0);
  $("m-rate").textContent = fmtNum(total, 1);
  $("m-clients").textContent = point.clients ?? "–";
  $("m-dropped").textContent = point.dropped ?? "–";
  $("m-dups").textContent = point.dups ?? "–";
  const history = app.metrics.history;
  const types = [...new Set(history.flatMap((p) => Object.keys(p.rates)))].sort();
  const active = types.filter((ty) => history.some((p) => (p.rates[ty] ?? 0) > 0));
  const shown = active.length ? active : types.slice(0, 4);
  lineChart($("chart-rates"), history, shown.map((ty, i) => ({ label: ty, color: PALETTE[i % PALETTE.length], value: (p) => p.rates[ty] ?? 0 })), $("legend-rates"), "/s");
  lineChart($("chart-clients"), history, [{ label: "clients", color: PALETTE[4], value: (p) => p.clients ?? 0 }], null, "");
  lineChart(
    $("chart-drops"),
    history,
    [
      { label: "dropped (server)", color: PALETTE[3], value: (p) => p.dropped ?? 0 },
      { label: "duplicates suppressed (server)", color: PALETTE[2], value: (p) => p.dups ?? 0 },
      { label: "duplicates ignored here", color: PALETTE[1], value: () => app.tracker.duplicates },
    ],
    $("legend-drops"),
    "",
  );
  latencyChart($("chart-latency"), point.latency, $("legend-latency"));
}

/** Fits a canvas to its CSS size at the device's pixel ratio; returns its 2D context and size. */
function fitCanvas(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || canvas.width;
  const hgt = Number(canvas.getAttribute("height"));
  if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(hgt * ratio)) {
    canvas.width = Math.round(w * ratio);
    canvas.height = Math.round(hgt * ratio);
    canvas.style.height = `${hgt}px`;
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, hgt);
  ctx.font = "11px system-ui, sans-serif";
  return { ctx, w, h: hgt };
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function axes(ctx, w, hgt, pad, max, unit) {
  ctx.strokeStyle = "#e3e6ee";
  ctx.fillStyle = "#7a8294";
  ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = pad.t + ((hgt - pad.t - pad.b) * i) / 4;
    ctx.beginPath();
    ctx.moveTo(pad.l, y + 0.5);
    ctx.lineTo(w - pad.r, y + 0.5);
    ctx.stroke();
    const v = max * (1 - i / 4);
    ctx.fillText(`${Number.isInteger(v) ? v : v.toFixed(v < 1 ? 2 : 1)}${unit}`, 4, y + 4);
  }
}

function lineChart(canvas, history, series, legend, unit) {
  const { ctx, w, h: hgt } = fitCanvas(canvas);
  const pad = { l: 48, r: 10, t: 10, b: 18 };
  const max = niceMax(Math.max(0, ...history.flatMap((p) => series.map((s) => s.value(p)))));
  axes(ctx, w, hgt, pad, max, unit);
  ctx.fillStyle = "#7a8294";
  ctx.fillText(`last ${Math.round((HISTORY * METRICS_EVERY_MS) / 60000)} min`, w - pad.r - 60, hgt - 4);
  const x = (i) => pad.l + ((w - pad.l - pad.r) * (i + HISTORY - history.length)) / (HISTORY - 1);
  const y = (v) => pad.t + (hgt - pad.t - pad.b) * (1 - v / max);
  for (const s of series) {
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    history.forEach((p, i) => (i ? ctx.lineTo(x(i), y(s.value(p))) : ctx.moveTo(x(i), y(s.value(p)))));
    ctx.stroke();
  }
  if (legend) {
    const last = history.at(-1);
    legend.replaceChildren(
      ...series.map((s) =>
        h("span", { class: "key" }, h("span", { class: "swatch", style: { background: s.color } }), `${s.label}${last ? ` ${fmtNum(s.value(last), unit ? 1 : 0)}${unit}` : ""}`),
      ),
    );
  }
}

function latencyChart(canvas, latency, legend) {
  const { ctx, w, h: hgt } = fitCanvas(canvas);
  const ops = Object.keys(latency).filter((op) => latency[op].p50 !== null).sort();
  const pad = { l: 58, r: 10, t: 10, b: 22 };
  const max = niceMax(Math.max(0, ...ops.map((op) => latency[op].p99 ?? 0)) * 1000) / 1000;
  ctx.strokeStyle = "#e3e6ee";
  ctx.fillStyle = "#7a8294";
  for (let i = 0; i <= 4; i++) {
    const yy = pad.t + ((hgt - pad.t - pad.b) * i) / 4;
    ctx.beginPath();
    ctx.moveTo(pad.l, yy + 0.5);
    ctx.lineTo(w - pad.r, yy + 0.5);
    ctx.stroke();
    ctx.fillText(formatSeconds(max * (1 - i / 4)), 4, yy + 4);
  }
  if (!ops.length) {
    ctx.fillText("No operations measured yet.", pad.l + 10, hgt / 2);
  }
  const slot = (w - pad.l - pad.r) / Math.max(ops.length, 1);
  const bw = Math.min(26, slot / 3);
  ops.forEach((op, i) => {
    const cx = pad.l + slot * i + slot / 2;
    for (const [k, dx, color] of [["p50", -bw - 1, PALETTE[0]], ["p99", 1, PALETTE[2]]]) {
      const v = latency[op][k] ?? 0;
      const bh = (hgt - pad.t - pad.b) * (v / max);
      ctx.fillStyle = color;
      ctx.fillRect(cx + dx, hgt - pad.b - bh, bw, bh);
    }
    ctx.fillStyle = "#4a5160";
    ctx.fillText(op, cx - ctx.measureText(op).width / 2, hgt - 6);
  });
  legend.replaceChildren(
    h("span", { class: "key" }, h("span", { class: "swatch", style: { background: PALETTE[0] } }), "p50"),
    h("span", { class: "key" }, h("span", { class: "swatch", style: { background: PALETTE[2] } }), "p99"),
    ...ops.map((op) => h("span", { class: "key muted", text: `${op}: ${formatSeconds(latency[op].p50)} / ${formatSeconds(latency[op].p99)}` })),
  );
}
