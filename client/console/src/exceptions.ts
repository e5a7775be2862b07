// The exceptions page (#/exceptions?state=active): the exceptions the
// token may see, a page at a time (ListExceptions), a form to create one
// (CreateException) and a two-step "Revoke" (DeleteException).
//
// ListExceptions filters only "active" against "active, expired and
// deleted" (show_expired); "expired" and "deleted" are picked out of each
// page of the latter here, and the page says so.
import { timestampFromMs } from "@bufbuild/protobuf/wkt";

import { ExceptionState } from "../../typescript/src/gen/fleetscan/v1/exception_service_pb.js";
import type { Exception } from "../../typescript/src/gen/fleetscan/v1/exception_service_pb.js";
import { describe, exceptions, whoAmI } from "./api.js";
import type { Role } from "./api.js";
import { catalog } from "./catalog.js";
import { h, replace, uid } from "./dom.js";
import { relative, time, timeEl } from "./format.js";
import { field, load, pager, panel, select } from "./ui.js";
import type { View } from "./ui.js";

const pageSize = 50;
/** The API's limit is 366 days; the form keeps to a year. */
const maxDays = 365;
const dayMs = 24 * 60 * 60 * 1000;

const stateOptions: [string, string][] = [
  ["active", "active"],
  ["all", "all: active, expired and deleted"],
  ["expired", "expired"],
  ["deleted", "deleted (revoked)"],
];

function stateName(s: ExceptionState): string {
  return (ExceptionState[s] ?? "unspecified").toLowerCase();
}

/** exceptionsPage renders #/exceptions. */
export function exceptionsPage(view: View, query: URLSearchParams): void {
  const { main, signal } = view;
  document.title = "Exceptions · fleetscan";
  const status = h("p", { class: "status", role: "status" });
  main.append(
    h("h1", null, "Exceptions"),
    h(
      "p",
      { class: "lead" },
      "Accepted risks: an exception suppresses the findings that match every field of its scope until it expires or is revoked. Lists follow it at once; counts, trends and summaries from each cluster's next scan.",
    ),
    status,
  );
  const create = panel("Create an exception");
  const list = panel("Exceptions this token sees");
  main.append(list.section, create.section);

  let state = stateOptions.some(([v]) => v === query.get("state")) ? (query.get("state") as string) : "active";
  const stateSelect = select(stateOptions, state);
  const filterForm = h(
    "form",
    { class: "controls", "aria-label": "Which exceptions" },
    field("State", stateSelect, "The API filters active ones; expired and deleted are picked from each page of all of them"),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Show")),
  );
  const results = h("div", { class: "results", tabindex: "-1" });
  const nav = h("div", { class: "pager" });
  list.body.append(filterForm, results, nav);

  // tokens[i] is the page_token of page i+1.
  let tokens: string[] = [""];
  const show = (focus: boolean) => {
    const page = tokens.length;
    replace(nav);
    void load(
      results,
      signal,
      () =>
        Promise.all([
          exceptions.listExceptions({ pageSize, pageToken: tokens[page - 1], showExpired: state !== "active" }, { signal }),
          whoAmI().catch((): Role | null => null),
        ]),
      ([res, r]) => {
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
        const picked =
          state === "expired" || state === "deleted"
            ? res.exceptions.filter((e) => stateName(e.state) === state)
            : res.exceptions;
        const note =
          state === "expired" || state === "deleted"
            ? h(
                "p",
                { class: "muted" },
                `The API lists active exceptions or all of them; the ${state} ones shown are those of page ${page} of all (${res.exceptions.length} on it), filtered here. Other pages may hold more.`,
              )
            : null;
        if (picked.length === 0) return [note, h("p", { class: "muted" }, state === "active" ? "No active exception." : `No ${state === "all" ? "" : `${state} `}exception on this page.`)];
        return [note, exceptionsTable(picked, page, r, refresh, say)];
      },
    );
  };
  // After a revocation the row goes: focus moves to the list, not to the page's start.
  const refresh = () => show(true);
  const say = (text: string, error = false) => {
    status.className = error ? "status error" : "status ok";
    status.textContent = text;
  };
  filterForm.addEventListener("submit", (e) => {
    e.preventDefault();
    state = stateSelect.value;
    history.replaceState(null, "", state === "active" ? "#/exceptions" : `#/exceptions?state=${encodeURIComponent(state)}`);
    tokens = [""];
    show(false);
  });
  show(false);

  void whoAmI().then(
    (r) => {
      if (!signal.aborted) create.body.append(createForm(r, signal, say, () => ((tokens = [""]), show(false))));
    },
    (err: unknown) => {
      if (!signal.aborted) create.body.append(h("p", { class: "error", role: "alert" }, describe(err)));
    },
  );
}

/** scopeOf names an exception's scope, field by field. */
function scopeOf(e: Exception): HTMLElement {
  const parts: [string, string][] = [];
  if (e.tenant) parts.push(["tenant", e.tenant]);
  if (e.clusterId) parts.push(["cluster", e.clusterId]);
  if (e.namespace) parts.push(["namespace", e.namespace]);
  if (e.checkId) parts.push(["check", e.checkId]);
  if (e.resourceKind) parts.push(["resource", [e.resourceKind, e.resourceName].filter((s) => s !== "").join(" ")]);
  return h(
    "dl",
    { class: "scope" },
    parts.map(([k, v]) => [h("dt", null, k), h("dd", { class: "mono" }, v)]),
  );
}

/**
 * exceptionsTable lists exceptions; an active one the token may revoke
 * has a "Revoke" button that asks again before it calls DeleteException.
 * A tenant revokes only its own (owner_tenant set); an operator any.
 */
function exceptionsTable(list: Exception[], page: number, role: Role | null, refresh: () => void, say: (t: string, error?: boolean) => void): HTMLElement {
  const now = Date.now();
  return h(
    "div",
    { class: "scroll" },
    h(
      "table",
      { class: "data exceptions" },
      h("caption", null, `${list.length} exception${list.length === 1 ? "" : "s"} (page ${page}), newest first`),
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          h("th", { scope: "col" }, "Scope"),
          h("th", { scope: "col" }, "Reason"),
          h("th", { scope: "col" }, "Author"),
          h("th", { scope: "col" }, "Created"),
          h("th", { scope: "col" }, "Expires"),
          h("th", { scope: "col" }, "State"),
          h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Actions")),
        ),
      ),
      h(
        "tbody",
        null,
        list.map((e) => {
          const mayRevoke = e.state === ExceptionState.ACTIVE && (role === "operator" || (role === "tenant" && e.ownerTenant !== ""));
          const name = stateName(e.state);
          return h(
            "tr",
            { "data-id": e.id },
            h("td", null, scopeOf(e), h("span", { class: "sub mono" }, e.id)),
            h("td", { class: "reason" }, e.reason),
            h("td", null, e.author),
            h("td", { class: "nowrap" }, timeEl(e.createTime)),
            h(
              "td",
              { class: "nowrap" },
              timeEl(e.expireTime),
              h("span", { class: "sub" }, e.state === ExceptionState.DELETED ? `revoked ${time(e.deleteTime)}` : relative(e.expireTime, now)),
            ),
            h("td", null, h("span", { class: `state state-${name}` }, name)),
            h("td", { class: "row-actions" }, mayRevoke ? revokeButton(e, refresh, say) : null),
          );
        }),
      ),
    ),
  );
}

/**
 * revokeButton is "Revoke"; pressed, it turns into "Yes, revoke" and
 * "Keep it" (focus on the first), so that one slip of the mouse or the
 * Enter key revokes nothing. No window.confirm: it is the page's own
 * buttons, reachable by keyboard.
 */
function revokeButton(e: Exception, refresh: () => void, say: (t: string, error?: boolean) => void): HTMLElement {
  const cell = h("div", { class: "confirm" });
  const what = [e.checkId, e.clusterId, e.namespace, e.tenant].filter((s) => s !== "").join(" ");
  const ask = () => {
    const yes = h("button", { type: "button", class: "danger" }, "Yes, revoke");
    const no = h("button", { type: "button", class: "secondary" }, "Keep it");
    const msg = h("span", { class: "muted" }, "Revoke now?");
    yes.addEventListener("click", () => {
      yes.disabled = true;
      no.disabled = true;
      exceptions.deleteException({ exceptionId: e.id }).then(
        (res) => {
          say(`Revoked exception ${e.id} (${what}) at ${time(res.exception?.deleteTime)}.`);
          refresh();
        },
        (err: unknown) => {
          replace(cell, h("span", { class: "error", role: "alert" }, describe(err)), " ", first());
        },
      );
    });
    no.addEventListener("click", () => {
      const b = first();
      replace(cell, b);
      b.focus();
    });
    replace(cell, msg, " ", yes, " ", no);
    yes.focus();
  };
  const first = () => h("button", { type: "button", class: "secondary", "aria-label": `Revoke exception ${e.id} (${what})`, onclick: ask }, "Revoke");
  cell.append(first());
  return cell;
}

/**
 * createForm is CreateException's form: the scope, the reason and how
 * long (a number of days as ttl, or a date as expire_time; at most a
 * year). A tenant's is for a cluster it owns or namespaces granted to it,
 * and only where the server lets tenants (--tenant-exceptions): the
 * server's answer, refusal included, is shown as it gives it.
 */
function createForm(role: Role, signal: AbortSignal, say: (t: string, error?: boolean) => void, created: () => void): HTMLElement {
  const text = (hint?: string) => h("input", { type: "text", autocomplete: "off", spellcheck: "false", placeholder: hint });
  const tenant = text();
  const cluster = text();
  const namespace = text();
  const checks = h("datalist", { id: uid("checks") });
  const check = h("input", { type: "text", autocomplete: "off", spellcheck: "false", list: checks.id });
  const kind = text("e.g. Deployment");
  const name = text();
  const reason = h("textarea", { rows: 3, maxlength: 1024, required: true });
  const days = h("input", { type: "number", min: 1, max: maxDays, step: 1, value: 30, required: true });
  const today = new Date();
  const iso = (d: Date) => d.toISOString().slice(0, 10);
  const until = h("input", { type: "date", min: iso(new Date(today.getTime() + dayMs)), max: iso(new Date(today.getTime() + maxDays * dayMs)) });
  const message = h("p", { role: "alert" });
  const submit = h("button", { type: "submit" }, "Create exception");
  void catalog().then(
    (m) => {
      if (!signal.aborted) replace(checks, [...m.values()].map((c) => h("option", { value: c.id }, c.title)));
    },
    () => undefined,
  );

  const form = h(
    "form",
    { class: "controls create-exception", "aria-label": "New exception" },
    h(
      "p",
      { class: "muted" },
      role === "operator"
        ? "Give at least one of tenant, cluster, namespace or check: the exception suppresses the findings matching every field given."
        : "As a tenant: a cluster you own (or one of your namespaces of a shared cluster) is required. The server lets tenants create and revoke exceptions only when it runs with --tenant-exceptions; if it does not, it says so here.",
    ),
    role === "operator" ? field("Tenant", tenant) : null,
    field("Cluster", cluster),
    field("Namespace", namespace),
    field("Check", check, "e.g. POD-001"),
    checks,
    field("Resource kind", kind),
    field("Resource name", name, "with the kind; in the namespace"),
    field("Reason (required)", reason, "why the risk is accepted; at most 1,024 characters"),
    field("Applies for (days)", days, `1 to ${maxDays}`),
    field("Or until (UTC date)", until, "instead of days; at most a year"),
    h("div", { class: "actions" }, submit),
    message,
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    message.className = "";
    message.textContent = "";
    const r = reason.value.trim();
    if (r === "") {
      message.className = "error";
      message.textContent = "Give a reason: every exception says why the risk is accepted.";
      reason.focus();
      return;
    }
    let expireTime: ReturnType<typeof timestampFromMs> | undefined;
    let ttl: { seconds: bigint } | undefined;
    if (until.value) {
      const ms = Date.parse(`${until.value}T00:00:00Z`);
      if (Number.isNaN(ms) || ms <= Date.now() || ms - Date.now() > maxDays * dayMs) {
        message.className = "error";
        message.textContent = `The date must be in the future and at most ${maxDays} days away.`;
        until.focus();
        return;
      }
      expireTime = timestampFromMs(ms);
    } else {
      const n = Number(days.value);
      if (!Number.isInteger(n) || n < 1 || n > maxDays) {
        message.className = "error";
        message.textContent = `Give a number of days from 1 to ${maxDays}, or a date.`;
        days.focus();
        return;
      }
      ttl = { seconds: BigInt(n * 86_400) };
    }
    submit.disabled = true;
    exceptions
      .createException({
        exception: {
          tenant: role === "operator" ? tenant.value.trim() : "",
          clusterId: cluster.value.trim(),
          namespace: namespace.value.trim(),
          checkId: check.value.trim(),
          resourceKind: kind.value.trim(),
          resourceName: name.value.trim(),
          reason: r,
          expireTime,
        },
        ttl,
      })
      .then(
        (res) => {
          const e = res.exception;
          say(`Created exception ${e?.id ?? ""}; it expires ${time(e?.expireTime)} (${relative(e?.expireTime)}).`);
          form.reset();
          created();
        },
        (err: unknown) => {
          message.className = "error";
          message.textContent = describe(err);
        },
      )
      .finally(() => {
        submit.disabled = false;
      });
  });
  return form;
}
