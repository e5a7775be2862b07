// The check catalog (ListChecks), read once per sign-in: it gives the
// titles next to check ids. A custom check is not in it and shows by id.
import type { Check } from "../../typescript/src/gen/fleetscan/v1/finding_service_pb.js";
import { findings } from "./api.js";

let cached: Promise<Map<string, Check>> | null = null;

/** catalog maps check ids to the built-in checks. */
export function catalog(): Promise<Map<string, Check>> {
  if (cached === null) {
    cached = findings.listChecks({}).then(
      (res) => new Map(res.checks.map((c) => [c.id, c])),
      (err: unknown) => {
        cached = null;
        throw err;
      },
    );
  }
  return cached;
}

/** titles resolves to a function giving a check's title, or "" when the catalog does not have it. */
export async function titles(): Promise<(id: string) => string> {
  try {
    const m = await catalog();
    return (id) => m.get(id)?.title ?? "";
  } catch {
    return () => ""; // titles are a nicety: the ids stand alone
  }
}

/** forgetCatalog drops the cache, at sign-out. */
export function forgetCatalog(): void {
  cached = null;
}
