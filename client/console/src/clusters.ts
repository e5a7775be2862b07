// The clusters list (#/clusters): every cluster the token may see, its
// own and those that grant it namespaces, a page at a time (ListClusters).
import { clusters } from "./api.js";
import { h, replace } from "./dom.js";
import { timeEl } from "./format.js";
import { load, pager } from "./ui.js";
import type { View } from "./ui.js";

const pageSize = 100;

/** clustersPage renders #/clusters. */
export function clustersPage(view: View): void {
  const { main, signal } = view;
  document.title = "Clusters · fleetscan";
  const results = h("div", { class: "results", tabindex: "-1" });
  const nav = h("div", { class: "pager" });
  main.append(
    h("h1", null, "Clusters"),
    h("p", { class: "lead" }, "Every cluster this token may read findings of, by id. The overview ranks only those it sees in full."),
    results,
    nav,
  );
  let tokens: string[] = [""];
  const show = (focus: boolean) => {
    const page = tokens.length;
    replace(nav);
    void load(
      results,
      signal,
      () => clusters.listClusters({ pageSize, pageToken: tokens[page - 1] }, { signal }),
      (res) => {
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
        if (res.clusters.length === 0) return h("p", { class: "muted" }, "No cluster.");
        return h(
          "div",
          { class: "scroll" },
          h(
            "table",
            { class: "data" },
            h("caption", null, `Clusters, page ${page}`),
            h(
              "thead",
              null,
              h(
                "tr",
                null,
                ["Cluster", "Name", "Tenant", "Labels", "Worker", "Kubernetes"].map((t) => h("th", { scope: "col" }, t)),
              ),
            ),
            h(
              "tbody",
              null,
              res.clusters.map((c) =>
                h(
                  "tr",
                  null,
                  h("th", { scope: "row" }, h("a", { href: `#/cluster/${encodeURIComponent(c.id)}`, class: "mono" }, c.id)),
                  h("td", null, c.displayName),
                  h("td", null, c.tenant || h("span", { class: "muted" }, "shared")),
                  h("td", null, Object.entries(c.labels).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => h("span", { class: "label mono" }, `${k}=${v}`))),
                  h(
                    "td",
                    null,
                    c.worker?.connected ? h("span", { class: "ok" }, "connected") : h("span", { class: "warn" }, "not connected"),
                    c.worker?.lastSeenTime ? [h("br"), h("span", { class: "sub" }, "last heard from ", timeEl(c.worker.lastSeenTime))] : null,
                  ),
                  h("td", { class: "mono" }, c.worker?.kubernetesVersion ?? ""),
                ),
              ),
            ),
          ),
        );
      },
    );
  };
  show(false);
}
