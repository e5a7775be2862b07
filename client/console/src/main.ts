// The console's entry point: sign-in, the header, and the hash router
// (#/, #/clusters, #/cluster/ID, #/cluster/ID/finding/FINGERPRINT,
// #/exceptions, #/scans, #/scan/ID, #/compliance, #/responsibility), so
// that the server serves one page at "/" and needs no fallback route.
import { Code } from "@connectrpc/connect";

import { clusters, code, describe, forgetRole, unauthenticated } from "./api.js";
import { forgetCatalog } from "./catalog.js";
import { clusterPage } from "./cluster.js";
import { clustersPage } from "./clusters.js";
import { compliancePage } from "./compliance.js";
import { h, replace } from "./dom.js";
import { exceptionsPage } from "./exceptions.js";
import { findingPage } from "./finding.js";
import { overview } from "./overview.js";
import { responsibilityPage } from "./responsibility.js";
import { scanPage, scansPage } from "./scans.js";
import * as session from "./session.js";

function byId(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (!el) throw new Error(`index.html has no #${id}`);
  return el;
}

const main = byId("main");
const nav = byId("nav");
const account = byId("account");

/** The view on screen; aborting it stops its calls and listeners. */
let current: AbortController | null = null;
/** Said on the sign-in form: why the reader is there. */
let notice = "";

type Route =
  | { view: "overview" }
  | { view: "clusters" }
  | { view: "cluster"; id: string; query: URLSearchParams }
  | { view: "finding"; id: string; fingerprint: string }
  | { view: "exceptions"; query: URLSearchParams }
  | { view: "scans" }
  | { view: "scan"; id: string }
  | { view: "compliance"; query: URLSearchParams }
  | { view: "responsibility" }
  | { view: "unknown" };

/** parse reads a location.hash. */
function parse(hash: string): Route {
  const raw = hash.replace(/^#/, "");
  const q = raw.indexOf("?");
  const path = q < 0 ? raw : raw.slice(0, q);
  const query = new URLSearchParams(q < 0 ? "" : raw.slice(q + 1));
  let parts: string[];
  try {
    parts = path.split("/").filter((p) => p !== "").map(decodeURIComponent);
  } catch {
    return { view: "unknown" };
  }
  if (parts.length === 0) return { view: "overview" };
  if (parts.length === 1 && parts[0] === "clusters") return { view: "clusters" };
  if (parts.length === 1 && parts[0] === "exceptions") return { view: "exceptions", query };
  if (parts.length === 1 && parts[0] === "scans") return { view: "scans" };
  if (parts[0] === "scan" && parts.length === 2) return { view: "scan", id: parts[1] };
  if (parts.length === 1 && parts[0] === "compliance") return { view: "compliance", query };
  if (parts.length === 1 && parts[0] === "responsibility") return { view: "responsibility" };
  if (parts[0] === "cluster" && parts.length === 2) return { view: "cluster", id: parts[1], query };
  if (parts[0] === "cluster" && parts.length === 4 && parts[2] === "finding") return { view: "finding", id: parts[1], fingerprint: parts[3] };
  return { view: "unknown" };
}

function chrome(route: Route | null): void {
  if (route === null) {
    replace(nav);
    replace(account);
    return;
  }
  const link = (href: string, text: string, here: boolean) => h("a", { href, "aria-current": here ? "page" : null }, text);
  replace(
    nav,
    h(
      "ul",
      null,
      h("li", null, link("#/", "Overview", route.view === "overview")),
      h("li", null, link("#/clusters", "Clusters", route.view === "clusters")),
      h("li", null, link("#/exceptions", "Exceptions", route.view === "exceptions")),
      h("li", null, link("#/scans", "Scans", route.view === "scans" || route.view === "scan")),
      h("li", null, link("#/responsibility", "Who must act", route.view === "responsibility")),
      h("li", null, link("#/compliance", "Compliance", route.view === "compliance")),
    ),
  );
  replace(account, h("button", { type: "button", class: "quiet", onclick: signOut }, "Sign out"));
}

/** render shows the view of the address, or the sign-in form. */
function render(focus: boolean): void {
  current?.abort();
  current = new AbortController();
  const view = { main, signal: current.signal };
  replace(main);
  if (session.token() === null) {
    chrome(null);
    signIn();
    return;
  }
  notice = "";
  const route = parse(location.hash);
  chrome(route);
  switch (route.view) {
    case "overview":
      overview(view);
      break;
    case "clusters":
      clustersPage(view);
      break;
    case "cluster":
      clusterPage(view, route.id, route.query);
      break;
    case "finding":
      findingPage(view, route.id, route.fingerprint);
      break;
    case "exceptions":
      exceptionsPage(view, route.query);
      break;
    case "scans":
      scansPage(view);
      break;
    case "scan":
      scanPage(view, route.id);
      break;
    case "responsibility":
      responsibilityPage(view);
      break;
    case "compliance":
      compliancePage(view, route.query);
      break;
    default:
      document.title = "Not found · fleetscan";
      main.append(h("h1", null, "Page not found"), h("p", null, "The console has no page at this address. ", h("a", { href: "#/" }, "Go to the fleet overview.")));
  }
  if (focus) {
    window.scrollTo(0, 0);
    main.focus();
  }
}

function signIn(): void {
  document.title = "Sign in · fleetscan";
  const input = h("input", { id: "token", type: "password", autocomplete: "off", spellcheck: "false", required: true, "aria-describedby": "token-hint" });
  const message = h("p", { id: "signin-message", class: notice ? "error" : "", role: "alert" }, notice);
  const button = h("button", { type: "submit" }, "Sign in");
  // The input has no name: were the form ever submitted by the browser
  // itself, the token would not be in the request.
  const form = h(
    "form",
    { class: "signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in to fleetscan"),
    message,
    h("div", { class: "field" }, h("label", { for: "token" }, "API token"), input),
    h(
      "p",
      { id: "token-hint", class: "hint" },
      "Paste an operator or tenant token (fsa_…). The console keeps it in this tab's session storage until you sign out or close the tab, and sends it to this server only.",
    ),
    button,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const t = input.value.trim().replace(/^Bearer\s+/i, "");
    if (t === "") return;
    button.disabled = true;
    message.className = "";
    message.textContent = "Checking the token…";
    session.signIn(t);
    clusters.listClusters({ pageSize: 1 }).then(
      () => render(true),
      (err: unknown) => {
        // Unauthenticated already signed out and said why.
        if (code(err) === Code.Unauthenticated) return;
        session.signOut();
        notice = describe(err);
        render(true);
      },
    );
  });
  main.append(form);
  input.focus();
}

function signOut(): void {
  session.signOut();
  forgetCatalog();
  forgetRole();
  notice = "Signed out. The token is no longer kept in this tab.";
  render(true);
}

window.addEventListener(unauthenticated, () => {
  if (session.token() === null) return; // an earlier call said so already
  session.signOut();
  forgetCatalog();
  forgetRole();
  notice = "The server refused the token: it is wrong, expired or revoked. Sign in with a valid token.";
  render(true);
});
window.addEventListener("hashchange", () => render(true));
byId("skip").addEventListener("click", (e) => {
  e.preventDefault();
  main.focus();
});
render(false);
