// How values of the API read on the page. Times are UTC everywhere, as
// the trend's buckets are.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Timestamp } from "@bufbuild/protobuf/wkt";

import { FindingStatus, ResponsibleParty, Severity } from "../../typescript/src/gen/fleetscan/v1/finding_pb.js";
import type { ResourceRef, SeverityCounts } from "../../typescript/src/gen/fleetscan/v1/finding_pb.js";
import { JobState, ScanState } from "../../typescript/src/gen/fleetscan/v1/scan_pb.js";
import { h } from "./dom.js";

/** severities lists the open-finding severities, worst first, with their count field. */
export const severities = [
  { sev: Severity.CRITICAL, name: "critical", field: "critical" },
  { sev: Severity.HIGH, name: "high", field: "high" },
  { sev: Severity.MEDIUM, name: "medium", field: "medium" },
  { sev: Severity.LOW, name: "low", field: "low" },
  { sev: Severity.INFO, name: "info", field: "info" },
] as const;

/** severityName is "critical", "high", … or "unspecified". */
export function severityName(s: Severity): string {
  return severities.find((x) => x.sev === s)?.name ?? "unspecified";
}

/** severityBadge shows a severity as text with its colour. */
export function severityBadge(s: Severity): HTMLElement {
  const name = severityName(s);
  return h("span", { class: `sev sev-${name}` }, name);
}

/** statusName is "open", "resolved" or "suppressed". */
export function statusName(s: FindingStatus): string {
  switch (s) {
    case FindingStatus.OPEN:
      return "open";
    case FindingStatus.RESOLVED:
      return "resolved";
    case FindingStatus.SUPPRESSED:
      return "suppressed";
    default:
      return "unspecified";
  }
}

/** partyName is who fixes a finding. */
export function partyName(p: ResponsibleParty): string {
  switch (p) {
    case ResponsibleParty.PROVIDER:
      return "provider";
    case ResponsibleParty.PLATFORM:
      return "platform";
    case ResponsibleParty.WORKLOAD:
      return "workload";
    default:
      return "unspecified";
  }
}

/** scanStateName is a scan's state in lower case. */
export function scanStateName(s: ScanState): string {
  return (ScanState[s] ?? "unspecified").toLowerCase();
}

/** jobStateName is a job's state in lower case, with spaces. */
export function jobStateName(s: JobState): string {
  return (JobState[s] ?? "unspecified").toLowerCase().replace("_", " ");
}

const numbers = new Intl.NumberFormat("en-US");

/** num formats a count, int64 (bigint) or not. */
export function num(n: bigint | number): string {
  return numbers.format(n);
}

/** count reads one severity's count; 0 when the counts are unset. */
export function count(c: SeverityCounts | undefined, field: (typeof severities)[number]["field"] | "suppressed"): number {
  return c ? Number(c[field]) : 0;
}

/** openCount sums the open findings of every severity, suppressed ones aside. */
export function openCount(c: SeverityCounts | undefined): number {
  return severities.reduce((n, s) => n + count(c, s.field), 0);
}

function pad(n: number): string {
  return String(n).padStart(2, "0");
}

/** day is "2025-03-01" (UTC), or "—" when ts is unset. */
export function day(ts: Timestamp | Date | undefined): string {
  if (!ts) return "—";
  const d = ts instanceof Date ? ts : timestampDate(ts);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
}

/** time is "2025-03-01 14:05 UTC", or "—" when ts is unset. */
export function time(ts: Timestamp | undefined): string {
  if (!ts) return "—";
  const d = timestampDate(ts);
  return `${day(d)} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} UTC`;
}

/** timeEl is a <time> element of ts, machine-readable too. */
export function timeEl(ts: Timestamp | undefined): HTMLElement | string {
  if (!ts) return "—";
  return h("time", { datetime: timestampDate(ts).toISOString() }, time(ts));
}

/** resource names a finding's object: "Deployment shop/web containers[app]". */
export function resource(r: ResourceRef | undefined): string {
  if (!r) return "—";
  const name = r.namespace ? `${r.namespace}/${r.name}` : r.name;
  return [r.kind, name, r.subPath].filter((s) => s !== "").join(" ");
}

/**
 * relative says how far ts is from now, coarsely: "in 3 days", "5 hours
 * ago", "in 2 minutes".
 */
export function relative(ts: Timestamp | undefined, now = Date.now()): string {
  if (!ts) return "";
  const ms = timestampDate(ts).getTime() - now;
  const abs = Math.abs(ms);
  const units: [number, string][] = [
    [365 * 86_400_000, "year"],
    [30 * 86_400_000, "month"],
    [86_400_000, "day"],
    [3_600_000, "hour"],
    [60_000, "minute"],
  ];
  let text = "less than a minute";
  for (const [size, name] of units) {
    const n = Math.floor(abs / size);
    if (n >= 1) {
      text = `${n} ${name}${n === 1 ? "" : "s"}`;
      break;
    }
  }
  return ms >= 0 ? `in ${text}` : `${text} ago`;
}
