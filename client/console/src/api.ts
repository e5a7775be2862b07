// The API clients: the fleetscan.v1 services over the Connect protocol,
// on the origin that served the console, with the signed-in token as a
// bearer token. The messages and services are the TypeScript SDK's
// generated code.
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import type { Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";

import { ClusterService } from "../../typescript/src/gen/fleetscan/v1/cluster_service_pb.js";
import { ExceptionService } from "../../typescript/src/gen/fleetscan/v1/exception_service_pb.js";
import { FindingService } from "../../typescript/src/gen/fleetscan/v1/finding_service_pb.js";
import { ScanService } from "../../typescript/src/gen/fleetscan/v1/scan_service_pb.js";
import { token } from "./session.js";

/** unauthenticated is dispatched on window when the server refuses the token. */
export const unauthenticated = "fleetscan:unauthenticated";

const bearer: Interceptor = (next) => async (req) => {
  const t = token();
  if (t !== null) req.header.set("Authorization", `Bearer ${t}`);
  try {
    return await next(req);
  } catch (err) {
    if (err instanceof ConnectError && err.code === Code.Unauthenticated) {
      window.dispatchEvent(new CustomEvent(unauthenticated, { detail: err.rawMessage }));
    }
    throw err;
  }
};

// The binary encoding: the overview of a thousand clusters is a megabyte
// of JSON, whose 64-bit counts are strings to turn into bigints one by
// one; in protobuf it is a fifth of that and decodes several times faster.
const transport = createConnectTransport({
  baseUrl: location.origin,
  useBinaryFormat: true,
  interceptors: [bearer],
  defaultTimeoutMs: 30_000,
});

export const clusters = createClient(ClusterService, transport);
export const findings = createClient(FindingService, transport);
export const scans = createClient(ScanService, transport);
export const exceptions = createClient(ExceptionService, transport);

/** Role is what the signed-in token may do, as far as the console needs to know. */
export type Role = "operator" | "tenant";

let role: Promise<Role> | null = null;

/**
 * whoAmI tells an operator's token from a tenant's: the API has no call
 * for it, so it asks for one scan (ListScans is for operators; a tenant
 * gets PERMISSION_DENIED). The answer is kept until sign-out; an error
 * other than that refusal is not.
 */
export function whoAmI(): Promise<Role> {
  if (role === null) {
    role = scans.listScans({ pageSize: 1 }).then(
      (): Role => "operator",
      (err: unknown): Role => {
        if (code(err) === Code.PermissionDenied) return "tenant";
        role = null;
        throw err;
      },
    );
  }
  return role;
}

/** forgetRole drops what whoAmI learnt, at sign-out. */
export function forgetRole(): void {
  role = null;
}

/** isCanceled reports an error of a call that the console itself abandoned. */
export function isCanceled(err: unknown): boolean {
  return err instanceof ConnectError && err.code === Code.Canceled;
}

/** code is the gRPC code of err, or undefined for an error not from a call. */
export function code(err: unknown): Code | undefined {
  return err instanceof ConnectError ? err.code : undefined;
}

/** describe says what went wrong in a sentence, with the server's message. */
export function describe(err: unknown): string {
  if (!(err instanceof ConnectError)) return `Unexpected error: ${String(err)}`;
  const msg = err.rawMessage;
  switch (err.code) {
    case Code.PermissionDenied:
      return `This token may not do that: ${msg}`;
    case Code.NotFound:
      return `Not found: ${msg}`;
    case Code.ResourceExhausted:
      return `Too many calls for this token; wait a moment and reload. (${msg})`;
    case Code.Unavailable:
      return `The server cannot be reached: ${msg}`;
    case Code.DeadlineExceeded:
      return `The server did not answer in time: ${msg}`;
    case Code.InvalidArgument:
      return `The server refused the request: ${msg}`;
    default:
      return `${Code[err.code]}: ${msg}`;
  }
}
