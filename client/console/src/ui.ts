// Pieces shared by the views: panels that load one API answer each,
// errors, severity counts and the findings table.
import type { Finding, SeverityCounts } from "../../typescript/src/gen/fleetscan/v1/finding_pb.js";
import { describe, isCanceled } from "./api.js";
import { append, h, replace, uid } from "./dom.js";
import type { Child } from "./dom.js";
import { count, num, resource, severities, severityBadge, statusName, timeEl } from "./format.js";

/** View is what a view renders into and the signal that ends it. */
export interface View {
  /** The page's <main>, emptied for the view. */
  main: HTMLElement;
  /** Aborted when the view is left: its calls stop, its listeners go. */
  signal: AbortSignal;
}

/** panel is a titled <section>; its body is where its content loads. */
export function panel(title: string, ...intro: Child[]): { section: HTMLElement; body: HTMLElement } {
  const id = uid("panel");
  const body = h("div", { class: "panel-body" });
  const section = h("section", { class: "panel", "aria-labelledby": id }, h("h2", { id }, title), intro, body);
  return { section, body };
}

/** errorBox says what went wrong with a call. */
export function errorBox(err: unknown): HTMLElement {
  return h("p", { class: "error", role: "alert" }, describe(err));
}

/** Loads under way on the page, of every panel. */
let pending = 0;

/**
 * settledMark is the User Timing mark set each time the page's last
 * pending load has shown its answer: how long a view took to load, from
 * the navigation's start, for real-user monitoring and for the console's
 * benchmark (BenchmarkConsoleOverview).
 */
export const settledMark = "fleetscan:view-settled";

/**
 * load shows "Loading…" in body, calls fetch, then fills body with
 * show's content, or with the error. It does nothing once the view is
 * left. It resolves to the answer, or undefined after an error.
 */
export async function load<T>(body: HTMLElement, signal: AbortSignal, fetch: () => Promise<T>, show: (v: T) => Child | void): Promise<T | undefined> {
  pending++;
  body.setAttribute("aria-busy", "true");
  replace(body, h("p", { class: "muted" }, "Loading…"));
  try {
    const v = await fetch();
    if (signal.aborted) return undefined;
    replace(body);
    const content = show(v);
    if (content) append(body, [content]);
    return v;
  } catch (err) {
    if (!signal.aborted && !isCanceled(err)) replace(body, errorBox(err));
    return undefined;
  } finally {
    body.removeAttribute("aria-busy");
    if (--pending === 0) performance.mark(settledMark);
  }
}

/** countTiles shows open findings by severity, and the suppressed ones. */
export function countTiles(c: SeverityCounts | undefined): HTMLElement {
  return h(
    "dl",
    { class: "tiles" },
    severities.map((s) => h("div", { class: `tile sev-${s.name}` }, h("dt", null, s.name), h("dd", null, num(count(c, s.field))))),
    h("div", { class: "tile" }, h("dt", null, "suppressed"), h("dd", null, num(count(c, "suppressed")))),
  );
}

/** findingHref is the address of a finding's page. */
export function findingHref(f: Finding): string {
  return `#/cluster/${encodeURIComponent(f.clusterId)}/finding/${encodeURIComponent(f.fingerprint)}`;
}

/**
 * findingsTable lists findings, each row reached by the link on its
 * check: Tab moves from finding to finding, Enter opens one.
 */
export function findingsTable(caption: string, list: Finding[], withCluster = false): HTMLElement {
  if (list.length === 0) return h("p", { class: "muted" }, `${caption}: none.`);
  return h(
    "div",
    { class: "scroll" },
    h(
      "table",
      { class: "data findings" },
      h("caption", null, caption),
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          h("th", { scope: "col" }, "Severity"),
          h("th", { scope: "col" }, "Check"),
          withCluster ? h("th", { scope: "col" }, "Cluster") : null,
          h("th", { scope: "col" }, "Resource"),
          h("th", { scope: "col" }, "Message"),
          h("th", { scope: "col" }, "Status"),
          h("th", { scope: "col" }, "First seen"),
          h("th", { scope: "col" }, "Last seen"),
        ),
      ),
      h(
        "tbody",
        null,
        list.map((f) =>
          h(
            "tr",
            null,
            h("td", null, severityBadge(f.severity)),
            h("th", { scope: "row" }, h("a", { href: findingHref(f) }, f.checkId), h("span", { class: "sub" }, f.title)),
            withCluster ? h("td", null, f.clusterId) : null,
            h("td", { class: "resource" }, resource(f.resource)),
            h("td", null, f.message),
            h("td", null, statusName(f.status)),
            h("td", { class: "nowrap" }, timeEl(f.firstSeenTime)),
            h("td", { class: "nowrap" }, timeEl(f.lastSeenTime)),
          ),
        ),
      ),
    ),
  );
}

/** field is a labelled form control. */
export function field(label: string, control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement, hint?: string): HTMLElement {
  const id = control.id || uid("field");
  control.id = id;
  let hintEl: HTMLElement | null = null;
  if (hint) {
    hintEl = h("span", { class: "hint", id: `${id}-hint` }, hint);
    control.setAttribute("aria-describedby", hintEl.id);
  }
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hintEl);
}

/** select makes a <select> of [value, text] options. */
export function select(options: [string, string][], value: string): HTMLSelectElement {
  const el = h("select", null, options.map(([v, t]) => h("option", { value: v }, t)));
  el.value = value;
  return el;
}

/** pager is "Previous page", the page number and "Next page". */
export function pager(page: number, next: string, previous: () => void, following: () => void): HTMLElement[] {
  return [
    h("button", { type: "button", disabled: page === 1, onclick: previous }, "Previous page"),
    h("span", { class: "muted" }, ` Page ${page} `),
    h("button", { type: "button", disabled: next === "", onclick: following }, "Next page"),
  ];
}
