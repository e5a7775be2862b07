/**
 * The TypeScript SDK of fleetscan: typed clients of the public API
 * (`fleetscan.v1`) over gRPC, with bearer-token authentication, TLS with a
 * custom CA, async iterators over every paginated List and a helper that
 * waits for a scan to end.
 *
 * Every failed call rejects with a `ConnectError` whose `code` is the gRPC
 * status code of the server (see the README for which call returns which).
 *
 * @module
 */
import { readFileSync } from "node:fs";
import type * as http2 from "node:http2";
import { Code, ConnectError, createClient as createConnectClient } from "@connectrpc/connect";
import type { CallOptions, Client, Interceptor } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import type { MessageInitShape } from "@bufbuild/protobuf";

import { ClusterService } from "./gen/fleetscan/v1/cluster_service_pb.js";
import type { ListClustersRequestSchema } from "./gen/fleetscan/v1/cluster_service_pb.js";
import type { Cluster } from "./gen/fleetscan/v1/cluster_pb.js";
import { ScanService } from "./gen/fleetscan/v1/scan_service_pb.js";
import type { ListScansRequestSchema, ListSchedulesRequestSchema, Schedule } from "./gen/fleetscan/v1/scan_service_pb.js";
import { ScanState } from "./gen/fleetscan/v1/scan_pb.js";
import type { Scan } from "./gen/fleetscan/v1/scan_pb.js";
import { FindingService } from "./gen/fleetscan/v1/finding_service_pb.js";
import { TokenService } from "./gen/fleetscan/v1/token_service_pb.js";
import type { ListFindingsRequestSchema } from "./gen/fleetscan/v1/finding_service_pb.js";
import type { Finding } from "./gen/fleetscan/v1/finding_pb.js";

export * from "./gen/fleetscan/v1/cluster_pb.js";
export * from "./gen/fleetscan/v1/cluster_service_pb.js";
export * from "./gen/fleetscan/v1/finding_pb.js";
export * from "./gen/fleetscan/v1/finding_service_pb.js";
export * from "./gen/fleetscan/v1/scan_pb.js";
export * from "./gen/fleetscan/v1/scan_service_pb.js";
export * from "./gen/fleetscan/v1/token_service_pb.js";
export * from "./gen/fleetscan/v1/exception_service_pb.js";
export * from "./gen/fleetscan/v1/audit_service_pb.js";
export * from "./gen/fleetscan/v1/notifier_service_pb.js";
export { Code, ConnectError };
export type { CallOptions, Client, Interceptor };

/** Options of {@link createClient}. */
export interface ClientOptions {
  /**
   * The server: `https://host:port`, or `http://127.0.0.1:port` for a
   * server listening in plaintext on loopback.
   */
  baseUrl: string;
  /** API token sent as `authorization: Bearer <token>` on every call. */
  token?: string;
  /** CA certificate(s), PEM, to verify the server with instead of the system roots. */
  ca?: string | Buffer;
  /** File holding `ca`, e.g. `DATA_DIR/tls/ca.crt` of a `--dev-tls` server. Read once, here. */
  caFile?: string;
  /** Deadline of every call unless the call gives its own `timeoutMs`. */
  timeoutMs?: number;
  /** More interceptors, run after the one that adds the token. */
  interceptors?: Interceptor[];
  /** More options for node's `http2.connect` (client certificates, `servername`…). */
  nodeOptions?: http2.SecureClientSessionOptions;
}

/** Options of {@link FleetscanClient.waitForScan}. */
export interface WaitOptions {
  /** Stops waiting: the promise rejects with a `ConnectError` of code `Canceled`. */
  signal?: AbortSignal;
  /**
   * Time between two GetScan calls when the server has no WatchScan, and
   * the wait before watching again after the server went away; default 1000.
   */
  intervalMs?: number;
  /** Called with the scan each time it changes (state, jobs, progress). */
  onProgress?: (scan: Scan) => void;
}

/** The client returned by {@link createClient}. */
export interface FleetscanClient {
  /** ClusterService: register, list and get clusters. Operators only. */
  readonly clusters: Client<typeof ClusterService>;
  /** ScanService: start, get, list and cancel scans; schedules. Operators only. */
  readonly scans: Client<typeof ScanService>;
  /** FindingService: findings, diffs, trends, summaries, the check catalog. */
  readonly findings: Client<typeof FindingService>;
  /** TokenService: mint, list and revoke operator and tenant tokens. Operators only. */
  readonly tokens: Client<typeof TokenService>;

  /** Every cluster, ordered by id, fetching pages as the loop goes. */
  listAllClusters(req?: MessageInitShape<typeof ListClustersRequestSchema>, options?: CallOptions): AsyncGenerator<Cluster>;
  /** Every scan, newest first. */
  listAllScans(req?: MessageInitShape<typeof ListScansRequestSchema>, options?: CallOptions): AsyncGenerator<Scan>;
  /** Every schedule, by id. */
  listAllSchedules(req?: MessageInitShape<typeof ListSchedulesRequestSchema>, options?: CallOptions): AsyncGenerator<Schedule>;
  /**
   * Every finding matching the filters of `req`, across pages of
   * `req.pageSize` (server default 100). Starts at `req.pageToken` if set.
   */
  listAllFindings(req?: MessageInitShape<typeof ListFindingsRequestSchema>, options?: CallOptions): AsyncGenerator<Finding>;
  /**
   * Follows the scan through WatchScan until it is SUCCEEDED, FAILED or
   * CANCELLED and returns it; watches again if the server restarts
   * (`Unavailable`), and polls GetScan on servers without WatchScan. It does
   * not time out by itself: pass `signal: AbortSignal.timeout(ms)` for a
   * deadline.
   */
  waitForScan(scanId: string, options?: WaitOptions): Promise<Scan>;
  /** Closes the HTTP/2 connection; a later call opens a new one. */
  close(): void;
}

/** The states after which a scan no longer changes. */
export const finalScanStates: ReadonlySet<ScanState> = new Set([
  ScanState.SUCCEEDED,
  ScanState.FAILED,
  ScanState.CANCELLED,
]);

/**
 * Returns a client of the fleetscan server at `options.baseUrl`. Nothing is
 * dialled until the first call.
 */
export function createClient(options: ClientOptions): FleetscanClient {
  const url = new URL(options.baseUrl);
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new Error(`baseUrl ${options.baseUrl}: want https://host:port (or http:// on loopback)`);
  }
  if (options.ca !== undefined && options.caFile !== undefined) {
    throw new Error("give ca or caFile, not both");
  }
  const ca = options.caFile !== undefined ? readFileSync(options.caFile) : options.ca;
  const nodeOptions: http2.SecureClientSessionOptions = { ...options.nodeOptions };
  if (ca !== undefined) {
    nodeOptions.ca = ca;
  }
  const interceptors: Interceptor[] = [];
  if (options.token !== undefined) {
    interceptors.push(bearer(options.token));
  }
  interceptors.push(...(options.interceptors ?? []));

  // Our own session manager, so that close() can end the connection.
  const session = new Http2SessionManager(url, {}, nodeOptions);
  const transport = createGrpcTransport({
    baseUrl: options.baseUrl,
    sessionManager: session,
    interceptors,
    defaultTimeoutMs: options.timeoutMs,
  });
  const clusters = createConnectClient(ClusterService, transport);
  const scans = createConnectClient(ScanService, transport);
  const findings = createConnectClient(FindingService, transport);
  const tokens = createConnectClient(TokenService, transport);

  return {
    clusters,
    scans,
    findings,
    tokens,
    listAllClusters: (req = {}, opts) =>
      paginate(req, async (r) => {
        const res = await clusters.listClusters(r, opts);
        return [res.clusters, res.nextPageToken];
      }),
    listAllScans: (req = {}, opts) =>
      paginate(req, async (r) => {
        const res = await scans.listScans(r, opts);
        return [res.scans, res.nextPageToken];
      }),
    listAllSchedules: (req = {}, opts) =>
      paginate(req, async (r) => {
        const res = await scans.listSchedules(r, opts);
        return [res.schedules, res.nextPageToken];
      }),
    listAllFindings: (req = {}, opts) =>
      paginate(req, async (r) => {
        const res = await findings.listFindings(r, opts);
        return [res.findings, res.nextPageToken];
      }),
    async waitForScan(scanId, { signal, intervalMs = 1000, onProgress } = {}) {
      let watch = true;
      for (;;) {
        try {
          if (watch) {
            for await (const { scan } of scans.watchScan({ scanId }, { signal })) {
              if (scan === undefined) {
                throw new ConnectError(`WatchScan ${scanId}: response without a scan`, Code.Internal);
              }
              onProgress?.(scan);
              if (finalScanStates.has(scan.state)) {
                return scan;
              }
            }
            // The stream ended before the scan did: the server is going away.
            throw new ConnectError("watch ended before the scan did", Code.Unavailable);
          }
          const { scan } = await scans.getScan({ scanId }, { signal });
          if (scan === undefined) {
            throw new ConnectError(`GetScan ${scanId}: response without a scan`, Code.Internal);
          }
          onProgress?.(scan);
          if (finalScanStates.has(scan.state)) {
            return scan;
          }
        } catch (err) {
          const ce = ConnectError.from(err);
          if (signal?.aborted) {
            throw ConnectError.from(signal.reason, Code.Canceled);
          }
          if (ce.code === Code.Unimplemented && watch) {
            watch = false; // an older server: poll
            continue;
          }
          if (ce.code !== Code.Unavailable) {
            throw ce;
          }
        }
        await sleep(intervalMs, signal);
      }
    },
    close: () => session.abort(),
  };
}

function bearer(token: string): Interceptor {
  const value = `Bearer ${token}`;
  return (next) => (req) => {
    req.header.set("authorization", value);
    return next(req);
  };
}

/**
 * Yields the items of page after page of a List RPC, passing each
 * response's next_page_token to the next call, until a page has none.
 */
async function* paginate<R extends { pageToken?: string }, T>(
  req: R,
  page: (req: R) => Promise<[T[], string]>,
): AsyncGenerator<T> {
  let token = req.pageToken ?? "";
  do {
    const [items, next] = await page({ ...req, pageToken: token });
    yield* items;
    token = next;
  } while (token !== "");
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(ConnectError.from(signal.reason));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(ConnectError.from(signal?.reason));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
