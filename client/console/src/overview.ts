// The fleet overview (#/): the current posture of every cluster the token
// sees in full (GetSummary, fleet scope), its trend or one tenant's
// (GetTrend), the clusters ranked (CompareClusters), the clusters whose
// score fell most in a week (the same call, with a baseline a week ago),
// and the check × cluster matrix of CompareClusters as a heat map.
import { timestampFromDate } from "@bufbuild/protobuf/wkt";

import type { CompareClustersResponse, ClusterPosture } from "../../typescript/src/gen/fleetscan/v1/finding_service_pb.js";
import { findings } from "./api.js";
import { titles } from "./catalog.js";
import { trendPanel } from "./chart.js";
import type { TrendScope } from "./chart.js";
import { h, replace } from "./dom.js";
import { count, num, severities, timeEl } from "./format.js";
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

  // The tenants of the clusters compared first (all the token sees): an
  // operator may follow any one tenant's trend, a tenant its own.
  let tenantsKnown: (t: TrendScope[]) => void = () => {};
  const tenants = new Promise<TrendScope[]>((resolve) => (tenantsKnown = resolve));
  main.append(trendPanel(view, { case: "fleet", value: true }, "the fleet", tenants));

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
    const baseline = new Date(Date.now() - weekMs);
    const res = Promise.all([
      findings.compareClusters({ labelSelector: selector.value.trim(), tenant: tenant.value.trim(), baselineTime: timestampFromDate(baseline) }, { signal }),
      titles(),
    ]);
    void res.then(([r]) => {
      const names = [...new Set(r.clusters.map((c) => c.tenant).filter((t) => t !== ""))].sort();
      tenantsKnown(names.map((t) => ({ label: `tenant ${t}`, scope: { case: "tenant", value: t }, what: `tenant ${t}` })));
    }, () => tenantsKnown([]));
    void load(ranked.body, signal, () => res, ([r]) => rankedTable(r.clusters));
    void load(movers.body, signal, () => res, ([r]) => moversList(worstMovers(r.clusters), baseline));
    void load(heat.body, signal, () => res, ([r, title]) => heatMap(r, title));
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    compare();
  });
  compare();
}

/** Rows of the ranking shown before "Show all". */
const rankedRows = 50;

function rankedTable(list: ClusterPosture[]): HTMLElement {
  if (list.length === 0) return h("p", { class: "muted" }, "No cluster matches.");
  const wrap = h("div");
  const render = (rows: number) => {
    const shown = list.slice(0, rows);
    const more = list.length - shown.length;
    replace(
      wrap,
      h(
        "div",
        { class: "scroll" },
        h(
          "table",
          { class: "data numbers" },
          h(
            "caption",
            null,
            more > 0
              ? `${num(list.length)} clusters, lowest score first (the ${num(shown.length)} lowest shown); a never-scanned cluster has no score`
              : `${num(list.length)} clusters, lowest score first; a never-scanned cluster has no score`,
          ),
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
              h("th", { scope: "col" }, "A week ago"),
              severities.slice(0, 4).map((s) => h("th", { scope: "col" }, s.name)),
              h("th", { scope: "col" }, "Objects"),
              h("th", { scope: "col", class: "text" }, "Latest scan"),
            ),
          ),
          h(
            "tbody",
            null,
            shown.map((c, i) => {
              const scanned = c.scanTime !== undefined;
              return h(
                "tr",
                null,
                h("td", null, String(i + 1)),
                h("th", { scope: "row", class: "text" }, h("a", { href: clusterHref(c.clusterId) }, c.clusterId)),
                h("td", { class: "text" }, c.tenant || h("span", { class: "muted" }, "shared")),
                h("td", null, scanned ? String(c.score) : "—"),
                h("td", null, c.baselineScore !== undefined ? String(c.baselineScore) : "—"),
                severities.slice(0, 4).map((s) => h("td", null, scanned ? num(count(c.counts, s.field)) : "—")),
                h("td", null, scanned ? num(c.objectsScanned) : "—"),
                h("td", { class: "text nowrap" }, scanned ? timeEl(c.scanTime) : h("span", { class: "muted" }, "never scanned")),
              );
            }),
          ),
        ),
      ),
      more > 0 ? h("button", { type: "button", onclick: () => render(list.length) }, `Show all ${num(list.length)} clusters (${num(more)} more rows)`) : null,
    );
  };
  render(rankedRows);
  return wrap;
}

const weekMs = 7 * 24 * 60 * 60 * 1000;
/** How many movers are listed. */
const moversShown = 5;

interface Mover {
  clusterId: string;
  before: number;
  now: number;
}

interface Movers {
  scanned: number;
  /** Scanned clusters whose score fell, the biggest fall first. */
  fell: Mover[];
  /** Scanned clusters that had no scan yet at the baseline. */
  newer: string[];
}

/**
 * worstMovers compares each scanned cluster's score now with its score
 * at the baseline (CompareClusters' baseline_score: its latest scan
 * before then), over every cluster compared, not only the lowest.
 */
function worstMovers(ranked: ClusterPosture[]): Movers {
  const scanned = ranked.filter((c) => c.scanTime !== undefined);
  const out: Movers = { scanned: scanned.length, fell: [], newer: [] };
  for (const c of scanned) {
    if (c.baselineScore === undefined) out.newer.push(c.clusterId);
    else if (c.score < c.baselineScore) out.fell.push({ clusterId: c.clusterId, before: c.baselineScore, now: c.score });
  }
  out.fell.sort((a, b) => a.now - a.before - (b.now - b.before) || a.clusterId.localeCompare(b.clusterId));
  out.newer.sort();
  return out;
}

function moversList(m: Movers, baseline: Date): HTMLElement {
  if (m.scanned === 0) return h("p", { class: "muted" }, "No cluster has been scanned yet.");
  const newer =
    m.newer.length === 0
      ? null
      : h(
          "p",
          { class: "muted" },
          m.newer.length <= 10
            ? `Not scanned yet by then: ${m.newer.join(", ")}.`
            : `${num(m.newer.length)} clusters were not scanned yet by then, e.g. ${m.newer.slice(0, 5).join(", ")}.`,
        );
  return h(
    "div",
    null,
    h(
      "p",
      null,
      `Each of the ${num(m.scanned)} scanned clusters now, against its latest scan before `,
      timeEl(timestampFromDate(baseline)),
      `: ${num(m.fell.length)} lost score.`,
    ),
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
    newer,
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
