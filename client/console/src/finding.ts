// A finding's page (#/cluster/ID/finding/FINGERPRINT): the finding and
// the scans that saw it (GetFinding).
import type { GetFindingResponse } from "../../typescript/src/gen/fleetscan/v1/finding_service_pb.js";
import { findings } from "./api.js";
import { h } from "./dom.js";
import { num, partyName, resource, severityBadge, statusName, timeEl } from "./format.js";
import { load, panel } from "./ui.js";
import type { View } from "./ui.js";

/** findingPage renders #/cluster/ID/finding/FINGERPRINT. */
export function findingPage(view: View, clusterId: string, fingerprint: string): void {
  const { main, signal } = view;
  document.title = `Finding in ${clusterId} · fleetscan`;
  const clusterLink = `#/cluster/${encodeURIComponent(clusterId)}`;
  const body = h("div");
  main.append(
    h("p", { class: "crumbs" }, h("a", { href: "#/" }, "Fleet overview"), " / ", h("a", { href: clusterLink }, clusterId), " / finding"),
    body,
  );
  void load(body, signal, () => findings.getFinding({ clusterId, fingerprint }, { signal }), (res) => details(res));
}

function details(res: GetFindingResponse): HTMLElement[] {
  const f = res.finding;
  if (!f) return [h("p", { class: "error" }, "The server answered without the finding.")];
  document.title = `${f.checkId} in ${f.clusterId} · fleetscan`;
  const dd = (label: string, value: string | Node | null) => (value === null || value === "" ? null : [h("dt", null, label), h("dd", null, value)]);
  const sightings = panel("Scans that saw it");
  sightings.body.append(
    res.sightings.length === 0
      ? h("p", { class: "muted" }, "None recorded.")
      : h(
          "table",
          { class: "data" },
          h("caption", null, `${num(res.sightingsTotal)} scans saw it${res.sightingsTotal > BigInt(res.sightings.length) ? `; the latest ${res.sightings.length}` : ""}, newest first`),
          h("thead", null, h("tr", null, h("th", { scope: "col" }, "Scan"), h("th", { scope: "col" }, "Time"))),
          h("tbody", null, res.sightings.map((s) => h("tr", null, h("td", { class: "mono" }, s.scanId), h("td", null, timeEl(s.time))))),
        ),
  );
  const intervals = panel("Earlier open periods");
  intervals.body.append(
    res.previousIntervals.length === 0
      ? h("p", { class: "muted" }, "None: it has not been resolved and reopened.")
      : h(
          "table",
          { class: "data" },
          h("caption", null, "Periods during which it was open, then resolved"),
          h("thead", null, h("tr", null, h("th", { scope: "col" }, "First seen"), h("th", { scope: "col" }, "Last seen"), h("th", { scope: "col" }, "Resolved"))),
          h(
            "tbody",
            null,
            res.previousIntervals.map((i) => h("tr", null, h("td", null, timeEl(i.firstSeenTime)), h("td", null, timeEl(i.lastSeenTime)), h("td", null, timeEl(i.resolvedTime)))),
          ),
        ),
  );
  return [
    h("h1", null, h("span", { class: "mono" }, f.checkId), " ", f.title),
    h("p", { class: "lead" }, f.message),
    h(
      "dl",
      { class: "facts" },
      dd("Severity", severityBadge(f.severity)),
      dd("Status", statusName(f.status)),
      dd("Resource", resource(f.resource)),
      dd("API version", f.resource?.apiVersion ?? ""),
      dd("Defined at", f.location),
      dd("Category", f.category),
      dd("Responsible", partyName(f.responsibleParty)),
      dd("Remediation", f.remediation),
      dd("Suppressed because", f.suppressionReason),
      dd("Exception", f.exceptionId),
      dd("First seen", timeEl(f.firstSeenTime) as Node),
      dd("Last seen", timeEl(f.lastSeenTime) as Node),
      f.resolvedTime ? dd("Resolved", timeEl(f.resolvedTime) as Node) : null,
      dd("Last scan", f.lastScanId),
      dd("Fingerprint", f.fingerprint),
    ),
    sightings.section,
    intervals.section,
  ];
}
