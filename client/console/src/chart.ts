// The posture trend: uPlot draws the score and the open findings by
// severity per bucket; a bucket in which no cluster of the scope had been
// scanned yet is a gap (null), not a zero. The same points are in a table
// below the chart for keyboards and screen readers.
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import uPlot from "uplot";

import type { Scope, TrendPoint } from "../../typescript/src/gen/fleetscan/v1/finding_service_pb.js";
import { TrendBucket } from "../../typescript/src/gen/fleetscan/v1/finding_service_pb.js";
import { findings } from "./api.js";
import { h } from "./dom.js";
import { count, day, num, severities } from "./format.js";
import { field, load, panel, select } from "./ui.js";
import type { View } from "./ui.js";

const dayMs = 24 * 60 * 60 * 1000;

/** Severity colours of the chart's lines, as in console.css. */
const colours: Record<string, string> = {
  critical: "#8b1a1a",
  high: "#c2410c",
  medium: "#a16207",
  low: "#4d7c0f",
  info: "#52606d",
};

/** TrendScope is one scope the trend panel can be switched to. */
export interface TrendScope {
  label: string;
  scope: Scope["scope"];
  /** How the panel's texts name it, e.g. "tenant acme". */
  what: string;
}

/**
 * trendPanel is a panel with the trend of scope over a period the reader
 * picks (GetTrend). With others, once they are known, the reader may
 * switch to one of them (the fleet overview offers each tenant's trend).
 */
export function trendPanel(view: View, scope: Scope["scope"], what: string, others?: Promise<TrendScope[]>): HTMLElement {
  const period = select(
    [
      ["30", "30 days"],
      ["90", "90 days"],
      ["365", "1 year"],
    ],
    "90",
  );
  const bucket = select(
    [
      [String(TrendBucket.DAY), "day"],
      [String(TrendBucket.WEEK), "week"],
    ],
    String(TrendBucket.DAY),
  );
  const controls = h("form", { class: "controls", "aria-label": "Trend period" }, field("Period", period), field("One point per", bucket));
  let current: TrendScope = { label: what, scope, what };
  const { section, body } = panel("Posture trend", controls);
  let plot: uPlot | null = null;
  const drop = () => {
    plot?.destroy();
    plot = null;
  };
  view.signal.addEventListener("abort", drop);
  window.addEventListener(
    "resize",
    () => {
      if (plot) plot.setSize({ width: chartWidth(body), height: plot.height });
    },
    { signal: view.signal },
  );
  const reload = () => {
    drop();
    const days = Number(period.value);
    void load(
      body,
      view.signal,
      () =>
        findings.getTrend(
          { scope: { scope: current.scope }, since: timestampFromMs(Date.now() - days * dayMs), bucket: Number(bucket.value) as TrendBucket },
          { signal: view.signal },
        ),
      (res) => {
        const pts = res.points;
        if (!pts.some((p) => p.clusters > 0)) {
          return h("p", { class: "muted" }, `No scan of ${current.what} up to the end of this period: nothing to draw.`);
        }
        const chart = h("div", { class: "chart", role: "img", "aria-label": ariaLabel(pts, current.what) });
        body.append(chart, pointsTable(pts, bucket.value === String(TrendBucket.WEEK) ? "week of" : "day"));
        plot = draw(chart, pts, chartWidth(body), bucket.value === String(TrendBucket.WEEK) ? 7 * 86400 : 86400);
        return undefined;
      },
    );
  };
  period.addEventListener("change", reload);
  bucket.addEventListener("change", reload);
  void others?.then((list) => {
    if (list.length === 0 || view.signal.aborted) return;
    const all = [current, ...list];
    const of = select(
      all.map((o, i) => [String(i), o.label]),
      "0",
    );
    of.addEventListener("change", () => {
      current = all[Number(of.value)];
      reload();
    });
    controls.prepend(field("Trend of", of));
  });
  controls.addEventListener("submit", (e) => e.preventDefault());
  reload();
  return section;
}

function chartWidth(el: HTMLElement): number {
  return Math.max(280, el.clientWidth);
}

/** ariaLabel sums the chart up in words. */
function ariaLabel(pts: TrendPoint[], what: string): string {
  const measured = pts.filter((p) => p.score !== undefined);
  const last = measured[measured.length - 1];
  const first = measured[0];
  return (
    `Posture score and open findings of ${what} from ${day(pts[0].time)} to ${day(pts[pts.length - 1].time)}, UTC. ` +
    `Score ${first?.score ?? "unknown"} on ${day(first?.time)}, ${last?.score ?? "unknown"} on ${day(last?.time)}. ` +
    `${pts.length - measured.length} of ${pts.length} points have no scan yet. The table below has every point.`
  );
}

/** series turns points into uPlot's columns: null where nothing was scanned. */
function series(pts: TrendPoint[]): uPlot.AlignedData {
  const xs = pts.map((p) => Number(p.time?.seconds ?? 0n));
  const score = pts.map((p) => (p.score === undefined ? null : p.score));
  const bySeverity = severities.map((s) => pts.map((p) => (p.counts ? count(p.counts, s.field) : null)));
  return [xs, score, ...bySeverity];
}

/**
 * isolated marks the values with a gap on both sides, which a line cannot
 * show: a cluster scanned once, or after a pause. uPlot draws a dot there.
 */
const isolated: uPlot.Series.Points.Filter = (u, seriesIdx) => {
  const d = u.data[seriesIdx];
  const out: number[] = [];
  for (let i = 0; i < d.length; i++) {
    if (d[i] != null && (i === 0 || d[i - 1] == null) && (i === d.length - 1 || d[i + 1] == null)) out.push(i);
  }
  return out;
};

/** draw charts the points, bucketSeconds apart; half a bucket pads each end so that a dot there shows whole. */
function draw(target: HTMLElement, pts: TrendPoint[], width: number, bucketSeconds: number): uPlot {
  const opts: uPlot.Options = {
    width,
    height: 280,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
    scales: {
      x: { time: true, range: (_u, min, max) => [min - bucketSeconds / 2, max + bucketSeconds / 2] },
      score: { range: [0, 100] },
      n: { range: (_u, _min, max) => [0, Math.max(5, Math.ceil((max ?? 0) * 1.1))] },
    },
    axes: [
      {},
      { scale: "score", label: "score", size: 50 },
      { scale: "n", side: 1, label: "open findings", grid: { show: false }, size: 60 },
    ],
    series: [
      { label: "UTC", value: (_u, v) => (v == null ? "—" : day(new Date(v * 1000))) },
      {
        label: "score",
        scale: "score",
        stroke: "#1d4ed8",
        width: 2.5,
        points: { show: true, size: 7, filter: isolated },
        value: (_u, v) => (v == null ? "no scan" : String(v)),
      },
      ...severities.map(
        (s): uPlot.Series => ({
          label: s.name,
          scale: "n",
          stroke: colours[s.name],
          width: 1.5,
          show: s.name !== "info",
          points: { show: true, size: 5, filter: isolated },
          value: (_u, v) => (v == null ? "—" : num(v)),
        }),
      ),
    ],
  };
  return new uPlot(opts, series(pts), target);
}

/** pointsTable lists the trend's points, newest first, gaps said as such. */
function pointsTable(pts: TrendPoint[], unit: string): HTMLElement {
  const rows = [...pts].reverse();
  return h(
    "details",
    { class: "points" },
    h("summary", null, `The trend as a table (${pts.length} points)`),
    h(
      "div",
      { class: "scroll" },
      h(
        "table",
        { class: "data numbers" },
        h("caption", null, `Posture at the end of each ${unit === "day" ? "day" : "week"} (UTC), newest first`),
        h(
          "thead",
          null,
          h(
            "tr",
            null,
            h("th", { scope: "col" }, unit),
            h("th", { scope: "col" }, "Score"),
            severities.map((s) => h("th", { scope: "col" }, s.name)),
            h("th", { scope: "col" }, "Clusters scanned"),
            h("th", { scope: "col" }, "Scans that ended"),
          ),
        ),
        h(
          "tbody",
          null,
          rows.map((p) =>
            h(
              "tr",
              null,
              h("th", { scope: "row" }, day(p.time)),
              p.counts
                ? [h("td", null, String(p.score ?? "—")), severities.map((s) => h("td", null, num(count(p.counts, s.field))))]
                : h("td", { colspan: 1 + severities.length, class: "muted" }, "no scan yet"),
              h("td", null, num(p.clusters)),
              h("td", null, num(p.scans)),
            ),
          ),
        ),
      ),
    ),
  );
}

