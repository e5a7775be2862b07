// The compliance page (#/compliance?framework=cis): each control of CIS,
// NSA/CISA or the Pod Security Standards that a check of the catalog cites
// (ListChecks' frameworks), judged as `fleetscan report --framework` judges
// it (cmd/fleetscan/report.go, compliance), so that the console and the
// report agree:
//
//   - failed: a cluster the token sees has an open finding of one of the
//     control's checks (CompareClusters' check × cluster matrix);
//   - not assessable: else, a cluster's latest succeeded job could not
//     evaluate one of them (its not_assessable list, with the reason), or
//     a cluster has no succeeded job among the newest scans (ListScans,
//     newest first; operators only);
//   - passed: else.
//
// A tenant cannot read scans: a control without open findings is "no
// open finding", never "passed".
import { Code } from "@connectrpc/connect";

import type { Check, CompareClustersResponse } from "../../typescript/src/gen/fleetscan/v1/finding_service_pb.js";
import { JobState } from "../../typescript/src/gen/fleetscan/v1/scan_pb.js";
import { code, findings, scans } from "./api.js";
import { catalog } from "./catalog.js";
import { h } from "./dom.js";
import { num } from "./format.js";
import { field, load, panel, select } from "./ui.js";
import type { View } from "./ui.js";

/** The frameworks, as the catalog cites their controls. */
const frameworks = [
  { key: "cis", prefix: "CIS ", name: "CIS Kubernetes Benchmark" },
  { key: "nsa", prefix: "NSA ", name: "NSA/CISA Kubernetes Hardening Guide" },
  { key: "pss", prefix: "PSS ", name: "Pod Security Standards" },
] as const;

/** As the report: at most this many pages of 500 scans are read for the clusters' latest jobs. */
const maxScanPages = 20;

type Status = "failed" | "not assessable" | "passed" | "no open finding";

interface Control {
  ref: string;
  checks: string[];
  status: Status;
  why: Why[];
}

/** Why is one line of a control's reasons; cluster and check become links where they are set. */
interface Why {
  cluster?: string;
  check?: string;
  text: string;
}

interface Judged {
  controls: Control[];
  clusters: string[];
  scansHidden: boolean;
  unscanned: string[];
  titles: Map<string, Check>;
}

/** compareRefs orders control references by their numbers: CIS 5.2.10 after CIS 5.2.9 (report.go's compareRefs). */
export function compareRefs(a: string, b: string): number {
  const split = (s: string) => s.split(/[ .:]/).filter((x) => x !== "");
  const pa = split(a);
  const pb = split(b);
  const int = (s: string) => {
    const m = /^[+-]?\d+/.exec(s);
    return m ? Number(m[0]) : null;
  };
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const na = int(pa[i]);
    const nb = int(pb[i]);
    if (na !== null && nb !== null && na !== nb) return na - nb;
    if ((na === null || nb === null) && pa[i] !== pb[i]) return pa[i] < pb[i] ? -1 : 1;
  }
  return pa.length - pb.length;
}

/** latestJobs finds each cluster's latest succeeded job, newest scans first (report.go's latestJobs). */
async function latestJobs(clusters: string[], signal: AbortSignal): Promise<{ notAssessable: Map<string, Map<string, string>>; unscanned: string[] }> {
  const want = new Set(clusters);
  const out = new Map<string, Map<string, string>>();
  let pageToken = "";
  for (let page = 0; page < maxScanPages && out.size < want.size; page++) {
    const res = await scans.listScans({ pageSize: 500, pageToken }, { signal });
    for (const s of res.scans) {
      for (const j of s.jobs) {
        if (!want.has(j.clusterId) || out.has(j.clusterId) || j.state !== JobState.SUCCEEDED) continue;
        out.set(j.clusterId, new Map(j.notAssessable.map((n) => [n.checkId, n.reason])));
      }
    }
    if (res.nextPageToken === "") break;
    pageToken = res.nextPageToken;
  }
  return { notAssessable: out, unscanned: clusters.filter((id) => !out.has(id)).sort() };
}

async function judge(prefix: string, signal: AbortSignal): Promise<Judged> {
  const [checks, matrix] = await Promise.all([catalog(), findings.compareClusters({}, { signal })]);
  const controls = new Map<string, string[]>();
  for (const c of checks.values()) {
    for (const ref of c.frameworks) {
      if (ref.startsWith(prefix)) controls.set(ref, [...(controls.get(ref) ?? []), c.id]);
    }
  }
  const clusters = matrix.clusters.map((c) => c.clusterId);
  const open = openMatrix(matrix);
  let notAssessable = new Map<string, Map<string, string>>();
  let unscanned: string[] = [];
  let scansHidden = false;
  try {
    ({ notAssessable, unscanned } = await latestJobs(clusters, signal));
  } catch (err) {
    if (code(err) !== Code.PermissionDenied) throw err;
    scansHidden = true; // a tenant's token
  }
  const out: Control[] = [];
  for (const ref of [...controls.keys()].sort(compareRefs)) {
    const ids = (controls.get(ref) ?? []).sort();
    const failed: Why[] = [];
    const unassessed: Why[] = [];
    for (const id of ids) {
      for (const cluster of clusters) {
        const n = open.get(id)?.get(cluster);
        if (n !== undefined) failed.push({ cluster, check: id, text: `${num(n)} open finding${n === 1 ? "" : "s"} of ${id}` });
        const why = notAssessable.get(cluster)?.get(id);
        if (why !== undefined) unassessed.push({ cluster, check: id, text: `${id} not assessable: ${why}` });
      }
    }
    let status: Status = "passed";
    let why: Why[] = [];
    if (failed.length > 0) [status, why] = ["failed", failed];
    else if (unassessed.length > 0) [status, why] = ["not assessable", unassessed];
    else if (scansHidden) [status, why] = ["no open finding", [{ text: "whether every cluster's scan could evaluate the checks is visible to operators only" }]];
    else if (unscanned.length > 0) [status, why] = ["not assessable", [{ text: `not scanned: ${unscanned.join(", ")}` }]];
    out.push({ ref, checks: ids, status, why });
  }
  return { controls: out, clusters, scansHidden, unscanned, titles: checks };
}

/** openMatrix is the open findings per check and cluster. */
function openMatrix(m: CompareClustersResponse): Map<string, Map<string, number>> {
  const open = new Map<string, Map<string, number>>();
  for (const row of m.checks) {
    row.counts.forEach((n, i) => {
      if (n > 0n && i < m.clusters.length) {
        let byCluster = open.get(row.checkId);
        if (!byCluster) open.set(row.checkId, (byCluster = new Map()));
        byCluster.set(m.clusters[i].clusterId, Number(n));
      }
    });
  }
  return open;
}

/** compliancePage renders #/compliance?framework=cis|nsa|pss. */
export function compliancePage(view: View, query: URLSearchParams): void {
  const { main, signal } = view;
  const fw = frameworks.find((f) => f.key === (query.get("framework") ?? "cis").toLowerCase()) ?? frameworks[0];
  document.title = `Compliance: ${fw.name} · fleetscan`;
  main.append(
    h("h1", null, "Compliance"),
    h(
      "nav",
      { class: "tabs", "aria-label": "Framework" },
      h(
        "ul",
        null,
        frameworks.map((f) => h("li", null, h("a", { href: `#/compliance?framework=${f.key}`, "aria-current": f === fw ? "page" : null }, f.name))),
      ),
    ),
  );
  const { section, body } = panel(fw.name);
  main.append(section);
  void load(
    body,
    signal,
    () => judge(fw.prefix, signal),
    (j) => {
      if (j.controls.length === 0) return h("p", { class: "muted" }, `No check of the server's catalog cites ${fw.prefix.trim()}.`);
      const tally = new Map<Status, number>();
      for (const c of j.controls) tally.set(c.status, (tally.get(c.status) ?? 0) + 1);
      const order: Status[] = j.scansHidden ? ["failed", "no open finding"] : ["failed", "not assessable", "passed"];
      return [
        h(
          "p",
          { class: "muted" },
          `Judged on the open findings of the ${j.clusters.length} clusters this token sees in full and, for operators, each cluster's latest succeeded scan; ${j.controls.length} controls cited by fleetscan's checks. A control no check cites is not listed: fleetscan does not judge it. The CLI's report (fleetscan report --framework ${fw.key}) judges the same way.`,
        ),
        j.scansHidden
          ? h(
              "p",
              { class: "notice" },
              h("strong", null, "No open finding is not passed. "),
              "This token cannot read scans (they are for operators), so whether each cluster's latest scan could evaluate a control's checks is not known here: a control without open findings is shown as having none, not as passed.",
            )
          : j.unscanned.length > 0
            ? h("p", { class: "notice" }, `Clusters without a succeeded scan among the newest scans: ${j.unscanned.join(", ")}.`)
            : null,
        h("dl", { class: "tiles" }, order.map((s) => h("div", { class: `tile status-${s.replace(/ /g, "-")}` }, h("dt", null, s), h("dd", null, num(tally.get(s) ?? 0))))),
        filter(order),
        controlsTable(j),
      ];
    },
  );
}

/** filter shows the controls of one status only: it hides the table's other rows. */
function filter(order: Status[]): HTMLElement {
  const which = select([["", "every control"], ...order.map((s): [string, string] => [s, s])], "");
  which.addEventListener("change", () => {
    const table = which.closest(".panel-body")?.querySelector("table.compliance");
    for (const row of table?.querySelectorAll<HTMLTableRowElement>("tbody tr") ?? []) row.hidden = which.value !== "" && row.dataset.status !== which.value;
  });
  return h("form", { class: "controls", "aria-label": "Controls to show" }, field("Show", which));
}

function clusterLink(cluster: string, check?: string): HTMLElement {
  const q = check ? `?check=${encodeURIComponent(check)}` : "";
  return h("a", { href: `#/cluster/${encodeURIComponent(cluster)}${q}` }, cluster);
}

function controlsTable(j: Judged): HTMLElement {
  return h(
    "div",
    { class: "scroll" },
    h(
      "table",
      { class: "data compliance" },
      h("caption", null, `${j.controls.length} controls, in the framework's order`),
      h(
        "thead",
        null,
        h("tr", null, h("th", { scope: "col" }, "Control"), h("th", { scope: "col" }, "Status"), h("th", { scope: "col" }, "Checks"), h("th", { scope: "col" }, "Why")),
      ),
      h(
        "tbody",
        null,
        j.controls.map((c) =>
          h(
            "tr",
            { "data-status": c.status },
            h("th", { scope: "row", class: "nowrap" }, c.ref),
            h("td", null, h("span", { class: `status status-${c.status.replace(/ /g, "-")}` }, c.status)),
            h(
              "td",
              null,
              c.checks.map((id) => h("div", null, h("span", { class: "mono" }, id), j.titles.get(id) ? h("span", { class: "sub" }, j.titles.get(id)?.title) : null)),
            ),
            h(
              "td",
              null,
              c.why.length === 0
                ? h("span", { class: "muted" }, "every cluster scanned, no open finding, every check assessed")
                : h(
                    "ul",
                    { class: "plain why" },
                    c.why.map((w) => h("li", null, w.cluster ? [clusterLink(w.cluster, c.status === "failed" ? w.check : undefined), ": "] : null, w.text)),
                  ),
            ),
          ),
        ),
      ),
    ),
  );
}
