// The shared-responsibility view (#/responsibility): who must act on the
// open findings of each cluster the token sees in full. The provider
// answers for the control plane and the nodes, the platform team for
// cluster-wide RBAC, network policy defaults and admission, the workload
// owners for what each tenant deploys: GetSummary's and CompareClusters'
// open findings by responsible party.
import type { ClusterPosture, PartyCounts } from "../../typescript/src/gen/fleetscan/v1/finding_service_pb.js";
import { ResponsibleParty } from "../../typescript/src/gen/fleetscan/v1/finding_pb.js";
import type { SeverityCounts } from "../../typescript/src/gen/fleetscan/v1/finding_pb.js";
import { findings } from "./api.js";
import { h } from "./dom.js";
import { count, num, openCount, partyName } from "./format.js";
import { clusterHref } from "./overview.js";
import { load, panel } from "./ui.js";
import type { View } from "./ui.js";

/** The parties in the order responsibility is layered, provider first. */
const parties = [
  { party: ResponsibleParty.PROVIDER, title: "Provider", what: "control plane and nodes" },
  { party: ResponsibleParty.PLATFORM, title: "Platform team", what: "cluster-wide RBAC, network policy defaults, admission" },
  { party: ResponsibleParty.WORKLOAD, title: "Workload owners", what: "what each tenant deploys" },
];

function of(list: PartyCounts[], party: ResponsibleParty): SeverityCounts | undefined {
  return list.find((p) => p.party === party)?.counts;
}

/** cell is one party's open findings: all of them, and how many are critical or high. */
function cell(c: SeverityCounts | undefined, href: string | null): HTMLElement {
  const all = openCount(c);
  const severe = count(c, "critical") + count(c, "high");
  const text = h("span", null, num(all), severe > 0 ? h("span", { class: "sub" }, ` ${num(severe)} critical or high`) : null);
  return h("td", { class: severe > 0 ? "party severe" : "party" }, all > 0 && href ? h("a", { href }, text) : text);
}

/** responsibilityPage renders #/responsibility. */
export function responsibilityPage(view: View): void {
  const { main, signal } = view;
  document.title = "Who must act · fleetscan";
  main.append(
    h("h1", null, "Who must act"),
    h(
      "p",
      { class: "lead" },
      "The open findings of each cluster this token sees in full, by the party that must fix them: the provider, the platform team, or the workload owners. Each count links to the findings.",
    ),
  );
  const fleet = panel("The fleet");
  const perCluster = panel("Per cluster, lowest score first");
  main.append(fleet.section, perCluster.section);

  void load(
    fleet.body,
    signal,
    () => findings.getSummary({ scope: { scope: { case: "fleet", value: true } } }, { signal }),
    (s) => {
      if (s.clustersScanned === 0) return h("p", { class: "muted" }, "No cluster scanned yet.");
      return [
        h(
          "dl",
          { class: "tiles" },
          parties.map((p) =>
            h("div", { class: "tile" }, h("dt", null, p.title), h("dd", null, num(openCount(of(s.parties, p.party)))), h("span", { class: "sub" }, p.what)),
          ),
        ),
        s.partiesClusters < s.clustersScanned
          ? h(
              "p",
              { class: "muted" },
              `Over ${num(s.partiesClusters)} of ${num(s.clustersScanned)} scanned clusters: the latest scans of the others ended before the server recorded parties; their next scan adds them.`,
            )
          : null,
      ];
    },
  );

  void load(
    perCluster.body,
    signal,
    () => findings.compareClusters({}, { signal }),
    (res) => {
      const scanned = res.clusters.filter((c: ClusterPosture) => c.scanTime !== undefined);
      if (scanned.length === 0) return h("p", { class: "muted" }, "No cluster scanned yet.");
      return h(
        "div",
        { class: "scroll" },
        h(
          "table",
          { class: "data numbers responsibility" },
          h("caption", null, `${scanned.length} scanned clusters; a count is the open findings, with those critical or high`),
          h(
            "thead",
            null,
            h(
              "tr",
              null,
              h("th", { scope: "col", class: "text" }, "Cluster"),
              h("th", { scope: "col", class: "text" }, "Tenant"),
              h("th", { scope: "col" }, "Score"),
              parties.map((p) => h("th", { scope: "col" }, p.title)),
            ),
          ),
          h(
            "tbody",
            null,
            scanned.map((c: ClusterPosture) => {
              const known = c.parties.length > 0 || openCount(c.counts) === 0;
              return h(
                "tr",
                null,
                h("th", { scope: "row", class: "text" }, h("a", { href: clusterHref(c.clusterId) }, c.clusterId)),
                h("td", { class: "text" }, c.tenant || h("span", { class: "muted" }, "shared")),
                h("td", null, String(c.score)),
                known
                  ? parties.map((p) => cell(of(c.parties, p.party), clusterHref(c.clusterId, { party: partyName(p.party) })))
                  : h("td", { class: "muted", colspan: String(parties.length) }, "not recorded by its latest scan: the next one adds it"),
              );
            }),
          ),
        ),
      );
    },
  );
}
