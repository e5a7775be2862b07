// A cluster's page (#/cluster/ID): the cluster (GetCluster), its posture
// (GetSummary) and trend (GetTrend), its findings a page at a time with
// the filters of ListFindingsRequest (ListFindings), and the difference
// between two of its scans (ListScans to choose them, DiffScans).
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";

import type { Cluster } from "../../typescript/src/gen/fleetscan/v1/cluster_pb.js";
import { FindingStatus, ResponsibleParty, Severity } from "../../typescript/src/gen/fleetscan/v1/finding_pb.js";
import type { ListFindingsRequestSchema } from "../../typescript/src/gen/fleetscan/v1/finding_service_pb.js";
import { JobState } from "../../typescript/src/gen/fleetscan/v1/scan_pb.js";
import type { Job, Scan } from "../../typescript/src/gen/fleetscan/v1/scan_pb.js";
import { clusters, code, findings, scans } from "./api.js";
import { catalog, titles } from "./catalog.js";
import { trendPanel } from "./chart.js";
import { h, replace, uid } from "./dom.js";
import { num, openCount, severities, time, timeEl } from "./format.js";
import { countTiles, errorBox, field, findingsTable, load, pager, panel, select } from "./ui.js";
import type { View } from "./ui.js";

/** clusterPage renders #/cluster/ID; query holds the findings filters. */
export function clusterPage(outer: View, id: string, query: URLSearchParams): void {
  const { main } = outer;
  // The panels load at once, each on its own; a cluster the token may not
  // see (NOT_FOUND, like one that does not exist) stops them all.
  const panels = new AbortController();
  outer.signal.addEventListener("abort", () => panels.abort());
  const view: View = { main, signal: panels.signal };
  const signal = view.signal;
  document.title = `${id} · fleetscan`;
  const heading = h("h1", null, "Cluster ", h("span", { class: "mono" }, id));
  const about = h("div", { class: "about" });
  main.append(h("p", { class: "crumbs" }, h("a", { href: "#/" }, "Fleet overview"), " / ", id), heading, about);
  clusters.getCluster({ clusterId: id }, { signal }).then(
    (res) => {
      if (!signal.aborted && res.cluster) replace(about, clusterFacts(res.cluster));
    },
    (err: unknown) => {
      if (signal.aborted) return;
      if (code(err) !== Code.NotFound) {
        replace(about, errorBox(err));
        return;
      }
      panels.abort();
      replace(
        main,
        h("p", { class: "crumbs" }, h("a", { href: "#/" }, "Fleet overview")),
        heading,
        h("p", { class: "error", role: "alert" }, `No cluster ${id} that this token may see: it does not exist, or this token may not see it.`),
        h("p", null, h("a", { href: "#/clusters" }, "The clusters this token sees")),
      );
    },
  );

  const summary = panel("Current posture");
  main.append(summary.section);
  void load(
    summary.body,
    signal,
    () => Promise.all([findings.getSummary({ scope: { scope: { case: "clusterId", value: id } } }, { signal }), titles()]),
    ([s, title]) => [
      // Never scanned: the API's zero counts and score 100 measure nothing.
      s.clustersScanned === 0 ? h("p", { class: "muted" }, "Not scanned yet: there is no posture to show.") : null,
      s.clustersScanned === 0
        ? null
        : [h("div", { class: "headline" }, h("p", { class: "score" }, h("span", { class: "big" }, String(s.score)), h("span", null, " / 100 posture score"))), countTiles(s.counts)],
      s.topChecks.length > 0
        ? [
            h("h3", null, "Checks with the most open findings"),
            h(
              "ol",
              { class: "top-checks" },
              s.topChecks.map((c) =>
                h("li", null, h("a", { href: `#/cluster/${encodeURIComponent(id)}?check=${encodeURIComponent(c.checkId)}`, class: "mono" }, c.checkId), " ", title(c.checkId), ` — ${num(c.count)} open`),
              ),
            ),
          ]
        : null,
    ],
  );

  main.append(trendPanel(view, { case: "clusterId", value: id }, `cluster ${id}`));
  main.append(findingsPanel(view, id, query));
  main.append(diffPanel(view, id));
}

function clusterFacts(c: Cluster): HTMLElement {
  const w = c.worker;
  const labels = Object.entries(c.labels).sort(([a], [b]) => a.localeCompare(b));
  return h(
    "dl",
    { class: "facts" },
    c.displayName && c.displayName !== c.id ? [h("dt", null, "Name"), h("dd", null, c.displayName)] : null,
    h("dt", null, "Tenant"),
    h("dd", null, c.tenant || "none (shared through namespace grants)"),
    h("dt", null, "Labels"),
    h("dd", null, labels.length === 0 ? "none" : labels.map(([k, v]) => h("span", { class: "label mono" }, `${k}=${v}`))),
    h("dt", null, "Worker"),
    h("dd", null, w?.connected ? h("span", { class: "ok" }, "connected") : h("span", { class: "warn" }, "not connected"), w?.lastSeenTime ? [", last heard from ", timeEl(w.lastSeenTime)] : null),
    w?.workerVersion ? [h("dt", null, "Worker version"), h("dd", { class: "mono" }, w.workerVersion)] : null,
    w?.kubernetesVersion ? [h("dt", null, "Kubernetes"), h("dd", { class: "mono" }, w.kubernetesVersion)] : null,
    c.namespaceGrants.length > 0
      ? [h("dt", null, "Namespace grants"), h("dd", null, c.namespaceGrants.map((g) => h("div", null, `${g.tenant}: ${g.namespaces.join(", ")}`)))]
      : null,
    h("dt", null, "Registered"),
    h("dd", null, timeEl(c.createTime)),
  );
}

/** The findings filters, as the page's address carries them. */
const filterKeys = ["severity", "status", "check", "namespace", "category", "party", "after", "before", "size"] as const;
type Filters = Record<(typeof filterKeys)[number], string>;

const severityOptions: [string, string][] = [["", "any"], ...[...severities].reverse().map((s): [string, string] => [s.name, `${s.name} or worse`])];
const statusOptions: [string, string][] = [
  ["open", "open"],
  ["resolved", "resolved"],
  ["suppressed", "suppressed"],
];
const partyOptions: [string, string][] = [
  ["", "anyone"],
  ["provider", "provider"],
  ["platform", "platform"],
  ["workload", "workload"],
];

function utcDay(date: string): ReturnType<typeof timestampFromMs> | undefined {
  const ms = Date.parse(`${date}T00:00:00Z`);
  return Number.isNaN(ms) ? undefined : timestampFromMs(ms);
}

/** request turns the filters into a ListFindingsRequest. */
function request(clusterId: string, f: Filters): MessageInitShape<typeof ListFindingsRequestSchema> {
  return {
    clusterId,
    minSeverity: severities.find((s) => s.name === f.severity)?.sev ?? Severity.UNSPECIFIED,
    status: { open: FindingStatus.OPEN, resolved: FindingStatus.RESOLVED, suppressed: FindingStatus.SUPPRESSED }[f.status] ?? FindingStatus.OPEN,
    checkId: f.check,
    namespace: f.namespace,
    category: f.category,
    responsibleParty:
      { provider: ResponsibleParty.PROVIDER, platform: ResponsibleParty.PLATFORM, workload: ResponsibleParty.WORKLOAD }[f.party] ?? ResponsibleParty.UNSPECIFIED,
    firstSeenAfter: f.after ? utcDay(f.after) : undefined,
    firstSeenBefore: f.before ? utcDay(f.before) : undefined,
    pageSize: Number(f.size) || 50,
  };
}

/**
 * findingsPanel lists the cluster's findings a page at a time: "Next
 * page" asks for the page after with the API's token, "Previous page"
 * asks again with the token that got the page before. Nothing is loaded
 * ahead.
 */
function findingsPanel(view: View, clusterId: string, query: URLSearchParams): HTMLElement {
  const f = Object.fromEntries(filterKeys.map((k) => [k, query.get(k) ?? ""])) as Filters;
  const checksList = h("datalist", { id: uid("checks") });
  const categoriesList = h("datalist", { id: uid("categories") });
  void catalog().then(
    (m) => {
      replace(checksList, [...m.values()].map((c) => h("option", { value: c.id }, c.title)));
      replace(categoriesList, [...new Set([...m.values()].map((c) => c.category))].sort().map((c) => h("option", { value: c })));
    },
    () => undefined,
  );
  const text = (value: string, list?: HTMLDataListElement) =>
    h("input", { type: "text", value, list: list?.id, autocomplete: "off", spellcheck: "false" });
  const controls = {
    severity: select(severityOptions, f.severity),
    status: select(statusOptions, f.status || "open"),
    check: text(f.check, checksList),
    namespace: text(f.namespace),
    category: text(f.category, categoriesList),
    party: select(partyOptions, f.party),
    after: h("input", { type: "date", value: f.after }),
    before: h("input", { type: "date", value: f.before }),
    size: select(
      [
        ["25", "25"],
        ["50", "50"],
        ["100", "100"],
        ["250", "250"],
      ],
      f.size || "50",
    ),
  };
  const form = h(
    "form",
    { class: "controls filters", "aria-label": "Findings filters" },
    field("Severity", controls.severity),
    field("Status", controls.status),
    field("Check", controls.check, "e.g. POD-001"),
    field("Namespace", controls.namespace),
    field("Category", controls.category, "e.g. rbac"),
    field("Responsible", controls.party),
    field("First seen on or after (UTC)", controls.after),
    field("First seen before (UTC)", controls.before),
    field("Per page", controls.size),
    checksList,
    categoriesList,
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Apply filters"), h("button", { type: "button", onclick: () => clear() }, "Clear filters")),
  );
  const { section, body } = panel("Findings", form);
  const results = h("div", { class: "results", tabindex: "-1" });
  const nav = h("div", { class: "pager" });
  body.append(results, nav);

  let filters = f;
  // tokens[i] is the page_token of page i+1; the first page has none.
  let tokens: string[] = [""];
  const show = (focus: boolean) => {
    const page = tokens.length;
    const token = tokens[page - 1];
    replace(nav);
    void load(
      results,
      view.signal,
      () => findings.listFindings({ ...request(clusterId, filters), pageToken: token }, { signal: view.signal }),
      (res) => {
        const size = Number(filters.size) || 50;
        const first = (page - 1) * size + 1;
        const caption =
          res.findings.length === 0
            ? "Findings matching the filters"
            : `Findings ${num(first)}–${num(first + res.findings.length - 1)} (page ${page}) matching the filters`;
        replace(
          nav,
          pager(
            page,
            res.nextPageToken,
            () => ((tokens = tokens.slice(0, -1)), show(true)),
            () => (tokens.push(res.nextPageToken), show(true)),
          ),
        );
        if (focus) queueMicrotask(() => results.focus());
        return findingsTable(caption, res.findings);
      },
    );
  };
  const apply = () => {
    filters = Object.fromEntries(filterKeys.map((k) => [k, controls[k].value.trim()])) as Filters;
    const q = new URLSearchParams();
    for (const k of filterKeys) if (filters[k] && !(k === "status" && filters[k] === "open") && !(k === "size" && filters[k] === "50")) q.set(k, filters[k]);
    // The filters go in the address (never the token), without a
    // hashchange: only the findings load again.
    const qs = q.toString();
    history.replaceState(null, "", `#/cluster/${encodeURIComponent(clusterId)}${qs ? `?${qs}` : ""}`);
    tokens = [""];
    show(false);
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    apply();
  });
  const clear = () => {
    for (const k of filterKeys) controls[k].value = k === "status" ? "open" : k === "size" ? "50" : "";
    apply();
  };
  show(false);
  return section;
}

/**
 * diffPanel compares two scans of the cluster. The scans to choose from
 * are the ones whose job on this cluster succeeded, among the pages of
 * ListScans read so far (newest first; "Load older scans" reads one more).
 * ListScans is for operators: a tenant token gets fields for two scan ids
 * instead.
 */
function diffPanel(view: View, clusterId: string): HTMLElement {
  const { signal } = view;
  const { section, body } = panel("Changes between two scans");
  const picker = h("div");
  const result = h("div", { class: "diff", tabindex: "-1" });
  body.append(picker, result);

  const compare = (base: string, head: string) => {
    if (!base || !head) return;
    if (base === head) {
      replace(result, h("p", { class: "error", role: "alert" }, "Choose two different scans."));
      return;
    }
    void load(
      result,
      signal,
      () => findings.diffScans({ baseScanId: base, headScanId: head, clusterId }, { signal }),
      (d) => [
        h(
          "p",
          { class: "diff-counts" },
          h("strong", null, num(d.newCount)),
          " new, ",
          h("strong", null, num(d.resolvedCount)),
          " resolved, ",
          h("strong", null, num(d.unchangedCount)),
          " unchanged.",
        ),
        findingsTable(d.newCount > BigInt(d.new.length) ? `New in the later scan: the first ${d.new.length} of ${num(d.newCount)}` : "New in the later scan", d.new),
        findingsTable(
          d.resolvedCount > BigInt(d.resolved.length) ? `Resolved in the later scan: the first ${d.resolved.length} of ${num(d.resolvedCount)}` : "Resolved in the later scan",
          d.resolved,
        ),
      ],
    );
  };

  const found: { scan: Scan; job: Job }[] = [];
  let next = "";
  let read = 0;
  const base = h("select");
  const head = h("select");
  const more = h("button", { type: "button" }, "Load older scans");
  const status = h("p", { class: "muted", role: "status" });
  const show = h("button", { type: "submit" }, "Show changes");
  const form = h(
    "form",
    { class: "controls", "aria-label": "Scans to compare" },
    field("Earlier scan (base)", base),
    field("Later scan (head)", head),
    h("div", { class: "actions" }, show, more),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    compare(base.value, head.value);
  });

  const options = () => {
    const keep = [base.value, head.value];
    const opts = () =>
      found.map(({ scan, job }) => h("option", { value: scan.id }, `${time(job.finishTime ?? scan.createTime)} · ${num(openCount(job.findings))} open · ${scan.id}`));
    replace(base, opts());
    replace(head, opts());
    if (keep[0]) base.value = keep[0];
    else if (found.length > 1) base.value = found[1].scan.id;
    if (keep[1]) head.value = keep[1];
    else if (found.length > 0) head.value = found[0].scan.id;
    status.textContent = `${found.length} successful scans of this cluster among the ${num(read)} latest scans of the fleet${next ? "" : " (all of them)"}.`;
    more.hidden = next === "";
    show.disabled = found.length < 2;
  };

  const page = async () => {
    more.disabled = true;
    try {
      const res = await scans.listScans({ pageSize: 100, pageToken: next }, { signal });
      read += res.scans.length;
      next = res.nextPageToken;
      for (const scan of res.scans) {
        const job = scan.jobs.find((j) => j.clusterId === clusterId && j.state === JobState.SUCCEEDED);
        if (job) found.push({ scan, job });
      }
      return true;
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener("click", () => {
    page().then(options, (err: unknown) => {
      if (!signal.aborted) replace(result, errorBox(err));
    });
  });

  void load(
    picker,
    signal,
    () =>
      page().catch((err: unknown) => {
        if (code(err) === Code.PermissionDenied) return false;
        throw err;
      }),
    (listed) => {
      if (!listed) return manualDiff(compare);
      options();
      if (found.length >= 2) compare(base.value, head.value);
      return [status, form];
    },
  );
  return section;
}

/** manualDiff asks for two scan ids: ListScans is for operators only. */
function manualDiff(compare: (base: string, head: string) => void): HTMLElement {
  const base = h("input", { type: "text", autocomplete: "off", spellcheck: "false", class: "mono" });
  const head = h("input", { type: "text", autocomplete: "off", spellcheck: "false", class: "mono" });
  const form = h(
    "form",
    { class: "controls", "aria-label": "Scans to compare" },
    h("p", { class: "muted" }, "Listing scans is for operators. Give the ids of two scans of this cluster (a finding's page shows the scans that saw it)."),
    field("Earlier scan id (base)", base),
    field("Later scan id (head)", head),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Show changes")),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    compare(base.value.trim(), head.value.trim());
  });
  return form;
}
