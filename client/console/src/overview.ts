// The fleet overview (#/): the current posture of every cluster the token
// sees in full (GetSummary, fleet scope), its trend (GetTrend), the
// clusters ranked (CompareClusters), the clusters whose score fell most
// in a week (GetTrend of each of the lowest-scoring clusters), and the
// check × cluster matrix of CompareClusters as a heat map.
import { timestampFromMs } from "@bufbuild/protobuf/wkt";

import type { CompareClustersResponse, ClusterPosture } from "../../typescript/src/gen/fleetscan/v1/finding_service_pb.js";
import { TrendBucket } from "../../typescript/src/gen/fleetscan/v1/finding_service_pb.js";
import { findings } from "./api.js";
import { titles } from "./catalog.js";
import { trendPanel } from "./chart.js";
import { h, replace } from "./dom.js";
import { count, day, num, severities, timeEl } from "./format.js";
import { countTiles, field, load, panel } from "./ui.js";
import type { View } from "./ui.js";

/** clusterHref is the address of a cluster's page, with findings filters. */
export function clusterHref(id: string, query?: Record<string, string>): string {
  const q = query ? new URLSearchParams(query).toString() : "";
  return `#/cluster/${encodeURIComponent(id)}${q ? `?${q}` : ""}`;
}

/** overview renders #/. */
export function overview(view: View): void {
  const { main, signal } = view;
  document.title = "Fleet overview · fleetscan";
  main.append(
    h("h1", null, "Fleet overview"),
    h("p", { class: "lead" }, "The clusters this token sees in full, as their latest scans found them. Scores go from 0 (worst) to 100 (no finding)."),
  );

  const summary = panel("Current posture");
  main.append(summary.section);
  void load(
    summary.body,
    signal,
    () => Promise.all([findings.getSummary({ scope: { scope: { case: "fleet", value: true } } }, { signal }), titles()]),
    ([s, title]) => [
      h(
        "div",
        { class: "headline" },
        // Nothing scanned: the API's zero counts and score 100 measure nothing.
        s.clustersScanned > 0 ? h("p", { class: "score" }, h("span", { class: "big" }, String(s.score)), h("span", null, " / 100 posture score")) : null,
        h("p", null, h("span", { class: "big" }, `${num(s.clustersScanned)} of ${num(s.clusters)}`), h("span", null, " clusters scanned")),
      ),
      s.clustersScanned > 0 ? [h("h3", null, "Open findings by severity"), countTiles(s.counts)] : h("p", { class: "muted" }, "No cluster scanned yet: there is no posture to show."),
      s.topChecks.length > 0
        ? [
            h("h3", null, "Checks with the most open findings"),
            h(
              "ol",
              { class: "top-checks" },
              s.topChecks.map((c) => h("li", null, h("span", { class: "mono" }, c.checkId), " ", title(c.checkId), ` — ${num(c.count)} open`)),
            ),
          ]
        : null,
    ],
  );

  main.append(trendPanel(view, { case: "fleet", value: true }, "the fleet"));

  const selector = h("input", { type: "text", placeholder: "env=prod", autocomplete: "off", spellcheck: "false" });
  const tenant = h("input", { type: "text", autocomplete: "off", spellcheck: "false" });
  const form = h(
    "form",
    { class: "controls", "aria-label": "Clusters to compare" },
    field("Label selector", selector, "Kubernetes syntax, e.g. env=prod,region in (eu-west)"),
    field("Tenant", tenant),
    h("button", { type: "submit" }, "Compare"),
  );
  const ranked = panel("Clusters ranked, worst first", form);
  const movers = panel("Worst movers in a week");
  const heat = panel("Open findings by check and cluster");
  main.append(ranked.section, movers.section, heat.section);

  const compare = () => {
    const res = Promise.all([findings.compareClusters({ labelSelector: selector.value.trim(), tenant: tenant.value.trim() }, { signal }), titles()]);
    void load(ranked.body, signal, () => res, ([r]) => rankedTable(r.clusters));
    void load(movers.body, signal, () => res.then(([r]) => worstMovers(r.clusters, signal)), (m) => moversList(m));
    void load(heat.body, signal, () => res, ([r, title]) => heatMap(r, title));
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    compare();
  });
  compare();
}

function rankedTable(list: ClusterPosture[]): HTMLElement {
  if (list.length === 0) return h("p", { class: "muted" }, "No cluster matches.");
  return h(
    "div",
    { class: "scroll" },
    h(
      "table",
      { class: "data numbers" },
      h("caption", null, `${list.length} clusters, lowest score first; a never-scanned cluster has no score`),
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          h("th", { scope: "col" }, "#"),
          h("th", { scope: "col", class: "text" }, "Cluster"),
          h("th", { scope: "col", class: "text" }, "Tenant"),
          h("th", { scope: "col" }, "Score"),
          severities.slice(0, 4).map((s) => h("th", { scope: "col" }, s.name)),
          h("th", { scope: "col" }, "Objects"),
          h("th", { scope: "col", class: "text" }, "Latest scan"),
        ),
      ),
      h(
        "tbody",
        null,
        list.map((c, i) => {
          const scanned = c.scanTime !== undefined;
          return h(
            "tr",
            null,
            h("td", null, String(i + 1)),
            h("th", { scope: "row", class: "text" }, h("a", { href: clusterHref(c.clusterId) }, c.clusterId)),
            h("td", { class: "text" }, c.tenant || h("span", { class: "muted" }, "shared")),
            h("td", null, scanned ? String(c.score) : "—"),
            severities.slice(0, 4).map((s) => h("td", null, scanned ? num(count(c.counts, s.field)) : "—")),
            h("td", null, scanned ? num(c.objectsScanned) : "—"),
            h("td", { class: "text nowrap" }, scanned ? timeEl(c.scanTime) : h("span", { class: "muted" }, "never scanned")),
          );
        }),
      ),
    ),
  );
}

/** How many of the lowest-scoring clusters the movers look at: one GetTrend call each. */
const moverCandidates = 12;
/** How many movers are listed. */
const moversShown = 5;

interface Mover {
  clusterId: string;
  before: number;
  now: number;
}

interface Movers {
  /** End of the trend's first bucket: what "before" is the score at. */
  since: Date | null;
  examined: number;
  scanned: number;
  fell: Mover[];
  /** Examined clusters that had no scan yet at `since`. */
  newer: string[];
}

/**
 * worstMovers asks the trend of the last eight days of each of the
 * lowest-scoring scanned clusters (day buckets, UTC) and compares the
 * score at the end of the first day, seven to eight days ago, with the
 * last point's, which is the score now.
 */
async function worstMovers(ranked: ClusterPosture[], signal: AbortSignal): Promise<Movers> {
  const scanned = ranked.filter((c) => c.scanTime !== undefined);
  const candidates = scanned.slice(0, moverCandidates);
  const out: Movers = { since: null, examined: candidates.length, scanned: scanned.length, fell: [], newer: [] };
  const since = timestampFromMs(Date.now() - 8 * 24 * 60 * 60 * 1000);
  let next = 0;
  const worker = async () => {
    while (next < candidates.length) {
      const c = candidates[next++];
      const res = await findings.getTrend({ scope: { scope: { case: "clusterId", value: c.clusterId } }, since, bucket: TrendBucket.DAY }, { signal });
      const first = res.points[0];
      const last = res.points[res.points.length - 1];
      if (!first || !last) continue;
      if (first.time) out.since = new Date(Number(first.time.seconds) * 1000 + 24 * 60 * 60 * 1000);
      if (first.score === undefined) out.newer.push(c.clusterId);
      else if (last.score !== undefined && last.score < first.score) out.fell.push({ clusterId: c.clusterId, before: first.score, now: last.score });
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  out.fell.sort((a, b) => a.now - a.before - (b.now - b.before) || a.clusterId.localeCompare(b.clusterId));
  out.newer.sort();
  return out;
}

function moversList(m: Movers): HTMLElement {
  const since = m.since ? `${day(m.since)} 00:00 UTC` : "a week ago";
  const which =
    m.examined < m.scanned
      ? `Among the ${m.examined} lowest-scoring of ${m.scanned} scanned clusters`
      : `Among the ${m.scanned} scanned clusters`;
  if (m.examined === 0) return h("p", { class: "muted" }, "No cluster has been scanned yet.");
  return h(
    "div",
    null,
    h("p", null, `${which}, the scores that fell most since ${since} (each cluster's trend, one call each).`),
    m.fell.length === 0
      ? h("p", { class: "muted" }, "None of them lost score.")
      : h(
          "ol",
          { class: "movers" },
          m.fell.slice(0, moversShown).map((x) =>
            h(
              "li",
              null,
              h("a", { href: clusterHref(x.clusterId) }, x.clusterId),
              `: ${x.before} → ${x.now} `,
              h("span", { class: "delta" }, `(${x.now - x.before})`),
            ),
          ),
        ),
    m.newer.length > 0 ? h("p", { class: "muted" }, `Not scanned yet by then: ${m.newer.join(", ")}.`) : null,
  );
}

/** Columns of the heat map shown before "Show all". */
const heatColumns = 40;

/** heatLevel shades a count: 0, 1, 2–4, 5–19, 20–99, 100 and more. */
function heatLevel(n: number): number {
  if (n <= 0) return 0;
  if (n < 2) return 1;
  if (n < 5) return 2;
  if (n < 20) return 3;
  if (n < 100) return 4;
  return 5;
}

function heatMap(res: CompareClustersResponse, title: (id: string) => string): HTMLElement {
  if (res.checks.length === 0) return h("p", { class: "muted" }, "No open finding in these clusters.");
  const wrap = h("div");
  const render = (columns: number) => {
    const cols = res.clusters.slice(0, columns);
    const more = res.clusters.length - cols.length;
    replace(
      wrap,
      h(
        "p",
        { class: "muted" },
        "Each cell links to that cluster's open findings of that check. Clusters are in the ranking's order, lowest score first.",
      ),
      h(
        "div",
        { class: "scroll" },
        h(
          "table",
          { class: "heat" },
          h("caption", null, `Open findings of ${res.checks.length} checks in ${cols.length} clusters`),
          h(
            "thead",
            null,
            h(
              "tr",
              null,
              h("th", { scope: "col", class: "corner" }, "Check"),
              cols.map((c) => h("th", { scope: "col", class: "col" }, h("a", { href: clusterHref(c.clusterId) }, h("span", null, c.clusterId)))),
              h("th", { scope: "col", class: "col" }, h("span", null, "total")),
            ),
          ),
          h(
            "tbody",
            null,
            res.checks.map((row) =>
              h(
                "tr",
                null,
                h("th", { scope: "row" }, h("span", { class: "mono" }, row.checkId), title(row.checkId) ? h("span", { class: "sub" }, title(row.checkId)) : null),
                cols.map((c, i) => {
                  const n = Number(row.counts[i] ?? 0n);
                  return h(
                    "td",
                    { class: `heat-${heatLevel(n)}` },
                    n > 0
                      ? h(
                          "a",
                          { href: clusterHref(c.clusterId, { check: row.checkId }), title: `${num(n)} open ${row.checkId} findings in ${c.clusterId}` },
                          num(n),
                        )
                      : "0",
                  );
                }),
                h("td", { class: "total" }, num(row.total)),
              ),
            ),
          ),
        ),
      ),
      h(
        "p",
        { class: "legend" },
        "Shades: ",
        ["0", "1", "2–4", "5–19", "20–99", "100+"].map((label, i) => h("span", { class: `swatch heat-${i}` }, label)),
      ),
      more > 0
        ? h("button", { type: "button", onclick: () => render(res.clusters.length) }, `Show all ${res.clusters.length} clusters (${more} more columns)`)
        : null,
    );
  };
  render(heatColumns);
  return wrap;
}
