// The scans (#/scans: ListScans, StartScan) and a scan's page (#/scan/ID:
// WatchScan). ScanService is for operators: a tenant's token is refused,
// and the pages say that scans are for operators rather than show an
// error.
import { Code } from "@connectrpc/connect";

import { JobState, ScanState } from "../../typescript/src/gen/fleetscan/v1/scan_pb.js";
import type { Job, Scan, ScanTarget } from "../../typescript/src/gen/fleetscan/v1/scan_pb.js";
import { clusters, code, describe, isCanceled, scans } from "./api.js";
import { h, replace } from "./dom.js";
import { jobStateName, num, openCount, scanStateName, time, timeEl } from "./format.js";
import { errorBox, load, pager, panel } from "./ui.js";
import type { View } from "./ui.js";

const pageSize = 25;

/** operatorsOnly says, without an error dump, that a tenant cannot see scans. */
function operatorsOnly(what: string): HTMLElement {
  return h(
    "div",
    { class: "notice", role: "status" },
    h("p", null, h("strong", null, `${what} are for operators.`), " This token is a tenant's: the API lists and watches scans for the provider's operators only."),
    h(
      "p",
      null,
      "What the scans found in your clusters is in the ",
      h("a", { href: "#/" }, "fleet overview"),
      " and on each ",
      h("a", { href: "#/clusters" }, "cluster's page"),
      "; a finding's page names the scans that saw it.",
    ),
  );
}

/** scanHref is a scan's page. */
export function scanHref(id: string): string {
  return `#/scan/${encodeURIComponent(id)}`;
}

/** targetText says which clusters a scan covers. */
function targetText(t: ScanTarget | undefined): string {
  if (!t) return "—";
  if (t.allClusters) return "the whole fleet";
  if (t.clusterIds.length > 0) return t.clusterIds.join(", ");
  if (t.labelSelector) return `clusters matching ${t.labelSelector}`;
  if (t.tenant) return `tenant ${t.tenant}'s clusters`;
  return "—";
}

function ended(s: ScanState): boolean {
  return s === ScanState.SUCCEEDED || s === ScanState.FAILED || s === ScanState.CANCELLED;
}

function stateBadge(name: string): HTMLElement {
  return h("span", { class: `state state-${name.replace(/ /g, "-")}` }, name);
}

/** scansPage renders #/scans: the scans, newest first, and a form to start one. */
export function scansPage(view: View): void {
  const { main, signal } = view;
  document.title = "Scans · fleetscan";
  main.append(h("h1", null, "Scans"));
  const start = panel("Start a scan");
  const list = panel("Scans, newest first");
  const results = h("div", { class: "results", tabindex: "-1" });
  const nav = h("div", { class: "pager" });
  list.body.append(results, nav);

  let tokens: string[] = [""];
  const show = (focus: boolean) => {
    const page = tokens.length;
    replace(nav);
    void load(
      results,
      signal,
      () =>
        scans.listScans({ pageSize, pageToken: tokens[page - 1] }, { signal }).catch((err: unknown) => {
          if (code(err) === Code.PermissionDenied) return null;
          throw err;
        }),
      (res) => {
        if (res === null) {
          // A tenant: no list, no form, one sentence instead.
          replace(main, h("h1", null, "Scans"), operatorsOnly("Scans"));
          return;
        }
        if (page === 1 && !start.section.isConnected) {
          main.insertBefore(start.section, list.section);
          start.body.append(startForm(signal));
        }
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
        if (res.scans.length === 0) return h("p", { class: "muted" }, "No scan yet.");
        return scansTable(res.scans, page);
      },
    );
  };
  main.append(list.section);
  show(false);
}

function scansTable(list: Scan[], page: number): HTMLElement {
  return h(
    "div",
    { class: "scroll" },
    h(
      "table",
      { class: "data numbers scans" },
      h("caption", null, `${list.length} scan${list.length === 1 ? "" : "s"} (page ${page}), newest first`),
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          h("th", { scope: "col", class: "text" }, "Scan"),
          h("th", { scope: "col", class: "text" }, "State"),
          h("th", { scope: "col", class: "text" }, "Clusters"),
          h("th", { scope: "col", class: "text" }, "Started"),
          h("th", { scope: "col", class: "text" }, "Ended"),
          h("th", { scope: "col" }, "Jobs done"),
          h("th", { scope: "col" }, "Open findings"),
        ),
      ),
      h(
        "tbody",
        null,
        list.map((s) =>
          h(
            "tr",
            null,
            h("th", { scope: "row", class: "text" }, h("a", { href: scanHref(s.id), class: "mono" }, s.id)),
            h("td", { class: "text" }, stateBadge(scanStateName(s.state))),
            h("td", { class: "text" }, targetText(s.target)),
            h("td", { class: "text nowrap" }, timeEl(s.createTime)),
            h("td", { class: "text nowrap" }, timeEl(s.finishTime)),
            h("td", null, `${s.progress?.clustersDone ?? 0} / ${s.progress?.clustersTotal ?? s.jobs.length}`),
            h("td", null, s.state === ScanState.SUCCEEDED || s.state === ScanState.FAILED ? num(openCount(s.findings)) : "—"),
          ),
        ),
      ),
    ),
  );
}

/**
 * startForm starts a scan (StartScan) of the whole fleet or of the
 * clusters ticked (ListClusters, 1,000 at most), with every check of the
 * catalog, and then opens the new scan's page.
 */
function startForm(signal: AbortSignal): HTMLElement {
  const wrap = h("div");
  const all = h("input", { type: "radio", name: "target", value: "all", id: "target-all", checked: true });
  const some = h("input", { type: "radio", name: "target", value: "some", id: "target-some" });
  const choices = h("fieldset", { class: "cluster-choices", disabled: true }, h("legend", null, "Clusters to scan"), h("p", { class: "muted" }, "Loading…"));
  const message = h("p", { role: "alert" });
  const submit = h("button", { type: "submit" }, "Start scan");
  const form = h(
    "form",
    { class: "start-scan", "aria-label": "Start a scan" },
    h(
      "fieldset",
      { class: "target" },
      h("legend", null, "Scan"),
      h("div", null, all, " ", h("label", { for: all.id }, "the whole fleet (every registered cluster)")),
      h("div", null, some, " ", h("label", { for: some.id }, "chosen clusters")),
    ),
    choices,
    h("p", { class: "muted" }, "Every check of the catalog runs. Jobs of clusters whose worker is connected start at once; the others wait for their worker."),
    h("div", { class: "actions" }, submit),
    message,
  );
  const sync = () => {
    choices.disabled = !some.checked;
  };
  all.addEventListener("change", sync);
  some.addEventListener("change", sync);
  clusters.listClusters({ pageSize: 1000 }, { signal }).then(
    (res) => {
      if (signal.aborted) return;
      replace(
        choices,
        h("legend", null, "Clusters to scan"),
        res.clusters.map((c) => {
          const box = h("input", { type: "checkbox", name: "cluster", value: c.id, id: `scan-cluster-${c.id}` });
          return h(
            "div",
            { class: "choice" },
            box,
            " ",
            h("label", { for: box.id, class: "mono" }, c.id),
            c.worker?.connected ? null : h("span", { class: "muted" }, " (worker not connected: its job waits)"),
          );
        }),
        res.nextPageToken ? h("p", { class: "muted" }, "The first 1,000 clusters; scan the whole fleet for all.") : null,
      );
    },
    (err: unknown) => {
      if (!signal.aborted && !isCanceled(err)) replace(choices, h("legend", null, "Clusters to scan"), errorBox(err));
    },
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    message.className = "";
    message.textContent = "";
    const ids = [...choices.querySelectorAll<HTMLInputElement>("input[name=cluster]:checked")].map((b) => b.value);
    if (some.checked && ids.length === 0) {
      message.className = "error";
      message.textContent = "Tick at least one cluster, or scan the whole fleet.";
      return;
    }
    submit.disabled = true;
    message.textContent = "Starting…";
    scans.startScan({ target: some.checked ? { clusterIds: ids } : { allClusters: true } }, { signal }).then(
      (res) => {
        if (res.scan) location.hash = scanHref(res.scan.id);
      },
      (err: unknown) => {
        if (signal.aborted) return;
        submit.disabled = false;
        message.className = "error";
        message.textContent = describe(err);
      },
    );
  });
  wrap.append(form);
  return wrap;
}

/**
 * scanPage renders #/scan/ID from WatchScan: the scan at once, then again
 * on every change until it ends. Leaving the page aborts the view's
 * signal, which closes the stream. A stream that breaks while the scan
 * runs is opened again, a few times.
 */
export function scanPage(view: View, id: string): void {
  const { main, signal } = view;
  document.title = `Scan ${id} · fleetscan`;
  const live = h("p", { class: "live", role: "status", "aria-live": "polite" }, "Connecting…");
  const about = h("div", { class: "about" });
  const jobs = panel("Jobs, one per cluster");
  main.append(
    h("p", { class: "crumbs" }, h("a", { href: "#/scans" }, "Scans"), " / ", id),
    h("h1", null, "Scan ", h("span", { class: "mono" }, id)),
    live,
    about,
    jobs.section,
  );
  let lastState: ScanState | null = null;
  const render = (s: Scan) => {
    replace(about, scanFacts(s));
    replace(jobs.body, jobsTable(s.jobs));
    if (s.state !== lastState) {
      lastState = s.state;
      live.textContent = ended(s.state)
        ? `The scan ended: ${scanStateName(s.state)}${s.finishTime ? ` at ${time(s.finishTime)}` : ""}.`
        : `The scan is ${scanStateName(s.state)}; this page follows it live.`;
      live.className = `live state-${scanStateName(s.state)}`;
    }
  };

  const watch = async (attempt: number): Promise<void> => {
    let seen: Scan | undefined;
    try {
      // No deadline: the stream lasts as long as the scan does.
      for await (const res of scans.watchScan({ scanId: id }, { signal, timeoutMs: 0 })) {
        if (signal.aborted) return;
        if (res.scan) {
          seen = res.scan;
          render(res.scan);
        }
      }
      if (seen && !ended(seen.state) && attempt < 5 && !signal.aborted) return watch(attempt + 1);
    } catch (err) {
      if (signal.aborted || isCanceled(err)) return;
      if (code(err) === Code.PermissionDenied) {
        replace(main, h("p", { class: "crumbs" }, h("a", { href: "#/" }, "Fleet overview")), h("h1", null, "Scan ", h("span", { class: "mono" }, id)), operatorsOnly("Scans"));
        return;
      }
      if (code(err) === Code.NotFound) {
        live.className = "live error";
        live.textContent = `No scan ${id}.`;
        return;
      }
      if ((seen === undefined || !ended(seen.state)) && attempt < 5) {
        live.textContent = `The live connection broke (${describe(err)}); reconnecting…`;
        await new Promise((r) => setTimeout(r, 1000 * (attempt + 1)));
        if (!signal.aborted) return watch(attempt + 1);
        return;
      }
      replace(
        live,
        h("span", { class: "error" }, describe(err)),
        " ",
        h("button", { type: "button", onclick: () => void watch(0) }, "Watch again"),
      );
    }
  };
  void watch(0);
}

function scanFacts(s: Scan): HTMLElement {
  const p = s.progress;
  const total = p?.clustersTotal ?? s.jobs.length;
  const done = p?.clustersDone ?? 0;
  const running = !ended(s.state);
  return h(
    "div",
    null,
    h(
      "div",
      { class: "progress-line" },
      h("label", { for: `progress-${s.id}` }, "Clusters done"),
      h("progress", { id: `progress-${s.id}`, max: Math.max(total, 1), value: done }, `${done} of ${total}`),
      h("span", { class: "progress-text" }, `${done} of ${total}`),
    ),
    h(
      "dl",
      { class: "facts" },
      h("dt", null, "State"),
      h("dd", null, stateBadge(scanStateName(s.state))),
      h("dt", null, "Clusters"),
      h("dd", null, targetText(s.target)),
      h("dt", null, "Started"),
      h("dd", null, timeEl(s.createTime)),
      h("dt", null, "Ended"),
      h("dd", null, running ? "not yet" : timeEl(s.finishTime)),
      h("dt", null, "Objects read"),
      h("dd", null, num(p?.objectsScanned ?? 0n)),
      h("dt", null, running ? "Findings received so far" : "Open findings"),
      h("dd", null, running ? num(p?.findings ?? 0n) : num(openCount(s.findings))),
      s.spec && (s.spec.includeChecks.length > 0 || s.spec.namespaces.length > 0)
        ? [
            h("dt", null, "Only"),
            h(
              "dd",
              null,
              [s.spec.includeChecks.length > 0 ? `checks ${s.spec.includeChecks.join(", ")}` : "", s.spec.namespaces.length > 0 ? `namespaces ${s.spec.namespaces.join(", ")}` : ""]
                .filter((x) => x !== "")
                .join("; "),
            ),
          ]
        : null,
    ),
  );
}

function jobsTable(list: Job[]): HTMLElement {
  if (list.length === 0) return h("p", { class: "muted" }, "No job: the target matched no cluster.");
  return h(
    "div",
    { class: "scroll" },
    h(
      "table",
      { class: "data numbers jobs" },
      h("caption", null, `${list.length} job${list.length === 1 ? "" : "s"}, by cluster`),
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          h("th", { scope: "col", class: "text" }, "Cluster"),
          h("th", { scope: "col", class: "text" }, "State"),
          h("th", { scope: "col", class: "text" }, "Started"),
          h("th", { scope: "col", class: "text" }, "Ended"),
          h("th", { scope: "col" }, "Objects"),
          h("th", { scope: "col" }, "Findings"),
          h("th", { scope: "col" }, "Not assessable"),
          h("th", { scope: "col", class: "text" }, "Notes"),
        ),
      ),
      h(
        "tbody",
        null,
        list.map((j) => {
          const done = j.state === JobState.SUCCEEDED;
          const notes: HTMLElement[] = [];
          if (j.error) notes.push(h("div", { class: "error" }, j.error));
          if (j.problems.length > 0) notes.push(h("div", { class: "warn" }, `incomplete: ${j.problems.length} thing(s) could not be read`));
          if (j.attempts > 1) notes.push(h("div", { class: "muted" }, `${j.attempts} attempts`));
          return h(
            "tr",
            null,
            h("th", { scope: "row", class: "text" }, h("a", { href: `#/cluster/${encodeURIComponent(j.clusterId)}`, class: "mono" }, j.clusterId)),
            h("td", { class: "text" }, stateBadge(jobStateName(j.state))),
            h("td", { class: "text nowrap" }, timeEl(j.startTime)),
            h("td", { class: "text nowrap" }, timeEl(j.finishTime)),
            h("td", null, num(j.objectsScanned)),
            h("td", null, done ? num(openCount(j.findings)) : j.findingsReceived > 0n ? `${num(j.findingsReceived)} so far` : "—"),
            h(
              "td",
              null,
              j.notAssessable.length === 0
                ? done
                  ? "0"
                  : "—"
                : h(
                    "details",
                    null,
                    h("summary", null, `${j.notAssessable.length} checks`),
                    h(
                      "ul",
                      { class: "plain" },
                      j.notAssessable.map((n) => h("li", null, h("span", { class: "mono" }, n.checkId), `: ${n.reason}`)),
                    ),
                  ),
            ),
            h("td", { class: "text" }, notes),
          );
        }),
      ),
    ),
  );
}
