// End-to-end tests of the SDK against a real fleetscan-server over TLS,
// with two real workers scanning demo snapshots (deploy/demo/clusters).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { fromJson } from "@bufbuild/protobuf";
import type { JsonValue } from "@bufbuild/protobuf";

import {
  Code,
  ConnectError,
  createClient,
  FindingSchema,
  FindingStatus,
  JobState,
  ScanState,
  Severity,
  TokenRole,
} from "../src/index.js";
import type { Finding, FleetscanClient, Interceptor, Scan, SeverityCounts } from "../src/index.js";
import { Fleet, offlineScan } from "./fleet.js";

// Two clusters of two tenants, each with its worker, and one cluster whose
// worker never connects (its scans stay pending).
const scanned = [
  { id: "acme-dev", tenant: "acme" },
  { id: "globex-prod", tenant: "globex" },
];
const idle = { id: "idle", tenant: "nobody" };

/** Open findings of a SeverityCounts, suppressed ones apart. */
function total(c: SeverityCounts | undefined): number {
  assert.ok(c, "counts missing");
  return Number(c.critical + c.high + c.medium + c.low + c.info);
}

function counts(c: SeverityCounts | undefined) {
  assert.ok(c, "counts missing");
  const { critical, high, medium, low, info, suppressed } = c;
  return { critical, high, medium, low, info, suppressed };
}

function sum(a: ReturnType<typeof counts>, b: ReturnType<typeof counts>) {
  return {
    critical: a.critical + b.critical,
    high: a.high + b.high,
    medium: a.medium + b.medium,
    low: a.low + b.low,
    info: a.info + b.info,
    suppressed: a.suppressed + b.suppressed,
  };
}

/** What identifies a finding across the server and an offline scan (whose fingerprints use another cluster id). */
function identity(f: Finding): string {
  const r = f.resource;
  return [f.checkId, Severity[f.severity], r?.apiVersion, r?.kind, r?.namespace, r?.name, r?.subPath].join("|");
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

function assertCode(code: Code): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof ConnectError, `want a ConnectError, got ${String(err)}`);
    assert.equal(Code[err.code], Code[code], err.message);
    return true;
  };
}

describe("fleetscan SDK against a real server", { timeout: 180_000 }, () => {
  const fleet = new Fleet();
  let client: FleetscanClient;
  let scan: Scan;
  const updates: Scan[] = [];
  let fleetFindings: Finding[];

  before(async () => {
    try {
      await fleet.startServer();
      client = createClient({ baseUrl: fleet.baseUrl, token: fleet.operatorToken, caFile: fleet.caFile, timeoutMs: 10_000 });
      for (const c of [...scanned, idle]) {
        const res = await client.clusters.registerCluster({ clusterId: c.id, tenant: c.tenant, labels: { suite: "ts" } });
        assert.equal(res.cluster?.id, c.id);
        assert.ok(res.joinToken.length > 0, "no join token");
        if (c !== idle) fleet.startWorker(c.id, res.joinToken);
      }
      const started = await client.scans.startScan({
        target: { clusterIds: scanned.map((c) => c.id) },
      });
      assert.ok(started.scan, "StartScan returned no scan");
      scan = await client.waitForScan(started.scan.id, {
        intervalMs: 100,
        signal: AbortSignal.timeout(90_000),
        onProgress: (s) => updates.push(s),
      });
      fleetFindings = await collect(client.listAllFindings({ pageSize: 1000 }));
    } catch (err) {
      throw new Error(`setup failed: ${String(err)}\n${fleet.logs()}`, { cause: err });
    }
  });

  after(async () => {
    client?.close();
    await fleet.stop();
  });

  it("scans both clusters through their workers", async () => {
    assert.equal(ScanState[scan.state], ScanState[ScanState.SUCCEEDED], JSON.stringify(scan.jobs.map((j) => j.error)));
    assert.deepEqual(scan.jobs.map((j) => j.clusterId), scanned.map((c) => c.id));
    for (const job of scan.jobs) {
      assert.equal(JobState[job.state], JobState[JobState.SUCCEEDED]);
      assert.ok(job.objectsScanned > 0n, `${job.clusterId}: no object scanned`);
      assert.ok(total(job.findings) > 0, `${job.clusterId}: no finding`);
    }
    assert.deepEqual(counts(scan.findings), sum(counts(scan.jobs[0].findings), counts(scan.jobs[1].findings)));
    // The severity filter below means something only if there are CRITICAL findings.
    assert.ok(scan.findings!.critical > 0n, "no CRITICAL finding in the demo clusters");

    const cluster = (await client.clusters.getCluster({ clusterId: "acme-dev" })).cluster;
    assert.equal(cluster?.worker?.connected, true, "the worker of acme-dev is not connected");
    assert.notEqual(cluster?.worker?.workerVersion, "");
  });

  it("reports progress while waiting, ending with every cluster done", async () => {
    assert.ok(updates.length >= 1, "onProgress was never called");
    const last = updates[updates.length - 1];
    assert.equal(last.id, scan.id);
    assert.equal(last.progress?.clustersTotal, 2);
    assert.equal(last.progress?.clustersDone, 2);
    // Progress counts every finding received, suppressed ones too.
    assert.equal(Number(last.progress?.findings), total(scan.findings) + Number(scan.findings!.suppressed));
    assert.ok((last.progress?.objectsScanned ?? 0n) > 0n, "no objects scanned in the progress");
    for (let i = 1; i < updates.length; i++) {
      assert.ok(updates[i].progress!.clustersDone >= updates[i - 1].progress!.clustersDone, "clusters done went back");
    }
  });

  it("lists every finding across pages of 25", async () => {
    let pages = 0;
    const countPages: Interceptor = (next) => (req) => {
      if (req.method.name === "ListFindings") pages++;
      return next(req);
    };
    const paged = createClient({ baseUrl: fleet.baseUrl, token: fleet.operatorToken, caFile: fleet.caFile, interceptors: [countPages] });
    try {
      const findings = await collect(paged.listAllFindings({ pageSize: 25 }));
      const want = total(scan.findings);
      assert.equal(findings.length, want);
      assert.ok(pages >= Math.ceil(want / 25) && pages <= Math.ceil(want / 25) + 1, `${pages} pages for ${want} findings`);
      assert.equal(new Set(findings.map((f) => `${f.clusterId}/${f.fingerprint}`)).size, want, "a finding came twice");
      assert.deepEqual(findings.map((f) => f.fingerprint), fleetFindings.map((f) => f.fingerprint), "pages of 25 and of 1000 differ");
      for (const f of findings) {
        assert.equal(FindingStatus[f.status], FindingStatus[FindingStatus.OPEN]);
        assert.equal(f.lastScanId, scan.id);
      }
    } finally {
      paged.close();
    }
  });

  it("returns per cluster exactly what the worker's offline scan of the snapshot finds", async () => {
    for (const { id } of scanned) {
      const offline = (await offlineScan(id)).findings.map((j) =>
        fromJson(FindingSchema, j as JsonValue, { ignoreUnknownFields: true }),
      );
      const served = await collect(client.listAllFindings({ clusterId: id, pageSize: 100 }));
      assert.ok(served.every((f) => f.clusterId === id), "clusterId filter leaked another cluster");
      assert.deepEqual(served.map(identity).sort(), offline.map(identity).sort(), id);
      const job = scan.jobs.find((j) => j.clusterId === id);
      assert.equal(served.length, total(job?.findings), id);
    }
  });

  it("filters by minimum severity", async () => {
    const critical = await collect(client.listAllFindings({ minSeverity: Severity.CRITICAL, pageSize: 2 }));
    assert.equal(critical.length, Number(scan.findings!.critical));
    assert.ok(critical.every((f) => f.severity === Severity.CRITICAL), "a finding below CRITICAL");

    const high = await collect(client.listAllFindings({ minSeverity: Severity.HIGH, pageSize: 10 }));
    assert.equal(high.length, Number(scan.findings!.critical + scan.findings!.high));
    assert.ok(high.every((f) => f.severity >= Severity.HIGH), "a finding below HIGH");
    assert.deepEqual(
      high.map((f) => f.fingerprint).sort(),
      fleetFindings.filter((f) => f.severity >= Severity.HIGH).map((f) => f.fingerprint).sort(),
    );
  });

  it("summarizes and trends the same numbers as the scan", async () => {
    const summary = await client.findings.getSummary({ scope: { scope: { case: "fleet", value: true } } });
    assert.deepEqual(counts(summary.counts), counts(scan.findings));
    assert.equal(summary.clusters, 3);
    assert.equal(summary.clustersScanned, 2);
    assert.ok(summary.score >= 0 && summary.score < 100, `score ${summary.score}`);
    assert.ok(summary.topChecks.length > 0 && summary.topChecks.length <= 10);
    for (let i = 0; i < summary.topChecks.length; i++) {
      const { checkId, count } = summary.topChecks[i];
      assert.equal(Number(count), fleetFindings.filter((f) => f.checkId === checkId).length, checkId);
      if (i > 0) assert.ok(count <= summary.topChecks[i - 1].count, "top checks not ordered");
    }

    const acme = await client.findings.getSummary({ scope: { scope: { case: "tenant", value: "acme" } } });
    assert.deepEqual(counts(acme.counts), counts(scan.jobs.find((j) => j.clusterId === "acme-dev")?.findings));

    const trend = await client.findings.getTrend({ scope: { scope: { case: "fleet", value: true } } });
    assert.ok(trend.points.length > 0, "no trend point");
    const last = trend.points[trend.points.length - 1];
    assert.deepEqual(counts(last.counts), counts(summary.counts));
    assert.equal(last.score, summary.score);
    assert.equal(last.clusters, 2);
    const times = trend.points.map((p) => p.time!.seconds);
    assert.deepEqual(times, [...times].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)), "points not oldest first");
  });

  it("iterates over clusters and scans", async () => {
    const clusters = await collect(client.listAllClusters({ pageSize: 1 }));
    assert.deepEqual(clusters.map((c) => c.id), [...scanned, idle].map((c) => c.id).sort());
    const scans = await collect(client.listAllScans({ pageSize: 1 }));
    assert.ok(scans.some((s) => s.id === scan.id), "the scan is not listed");
  });

  it("maps errors to gRPC codes", async () => {
    const anonymous = createClient({ baseUrl: fleet.baseUrl, caFile: fleet.caFile });
    const wrongToken = createClient({ baseUrl: fleet.baseUrl, caFile: fleet.caFile, token: "not-a-token" });
    const noCA = createClient({ baseUrl: fleet.baseUrl, token: fleet.operatorToken });
    try {
      await assert.rejects(wrongToken.scans.getScan({ scanId: scan.id }), assertCode(Code.Unauthenticated));
      await assert.rejects(anonymous.findings.listChecks({}), assertCode(Code.Unauthenticated));
      // A well-formed id that no scan has.
      await assert.rejects(client.scans.getScan({ scanId: "01ARZ3NDEKTSV4RRFFQ69G5FAV" }), assertCode(Code.NotFound));
      await assert.rejects(client.waitForScan("01ARZ3NDEKTSV4RRFFQ69G5FAV"), assertCode(Code.NotFound));
      await assert.rejects(client.clusters.getCluster({ clusterId: "no-such-cluster" }), assertCode(Code.NotFound));
      await assert.rejects(client.scans.getScan({ scanId: "not-an-id" }), assertCode(Code.InvalidArgument));
      await assert.rejects(collect(client.listAllFindings({ pageSize: -1 })), assertCode(Code.InvalidArgument));
      await assert.rejects(collect(client.listAllFindings({ checkId: "bogus" })), assertCode(Code.InvalidArgument));
      // A page token is bound to the filters it was issued for.
      const first = await client.findings.listFindings({ pageSize: 5 });
      assert.notEqual(first.nextPageToken, "");
      await assert.rejects(
        client.findings.listFindings({ pageSize: 5, pageToken: first.nextPageToken, minSeverity: Severity.HIGH }),
        assertCode(Code.InvalidArgument),
      );
      await assert.rejects(
        client.clusters.registerCluster({ clusterId: "acme-dev", tenant: "acme" }),
        assertCode(Code.AlreadyExists),
      );
      // connect-node reports a certificate it cannot verify as Internal.
      await assert.rejects(noCA.findings.listChecks({}), (err) => {
        assertCode(Code.Internal)(err);
        assert.match((err as Error).message, /certificate/);
        return true;
      });
    } finally {
      anonymous.close();
      wrongToken.close();
      noCA.close();
    }
  });

  it("gives a tenant token its own findings and nothing else", async () => {
    const minted = await client.tokens.createToken({ name: "acme-sdk", role: TokenRole.TENANT, tenant: "acme" });
    assert.ok(minted.secret.startsWith("fsa_"), "secret without its prefix");
    const acme = createClient({ baseUrl: fleet.baseUrl, caFile: fleet.caFile, token: minted.secret });
    try {
      const mine = await collect(acme.listAllFindings({ pageSize: 50 }));
      const want = fleetFindings.filter((f) => f.clusterId === "acme-dev");
      assert.equal(mine.length, want.length);
      assert.ok(mine.every((f) => f.clusterId === "acme-dev"), "a tenant sees another tenant's findings");
      const clusters = await collect(acme.listAllClusters());
      assert.deepEqual(clusters.map((c) => c.id), ["acme-dev"]);
      await assert.rejects(acme.clusters.getCluster({ clusterId: "globex-prod" }), assertCode(Code.NotFound));
      await assert.rejects(acme.scans.listScans({}), assertCode(Code.PermissionDenied));
      await client.tokens.revokeToken({ tokenId: minted.token!.id });
      await assert.rejects(acme.clusters.listClusters({}), assertCode(Code.Unauthenticated));
    } finally {
      acme.close();
    }
  });

  it("stops waiting when the signal aborts, and sees a cancelled scan as final", async () => {
    const res = await client.scans.startScan({ target: { clusterIds: [idle.id] } });
    const id = res.scan!.id;
    await assert.rejects(
      client.waitForScan(id, { intervalMs: 50, signal: AbortSignal.timeout(300) }),
      assertCode(Code.Canceled),
    );
    const pending = (await client.scans.getScan({ scanId: id })).scan!;
    assert.equal(ScanState[pending.state], ScanState[ScanState.PENDING]);

    await client.scans.cancelScan({ scanId: id });
    const cancelled = await client.waitForScan(id, { intervalMs: 50, signal: AbortSignal.timeout(10_000) });
    assert.equal(ScanState[cancelled.state], ScanState[ScanState.CANCELLED]);
    assert.equal(JobState[cancelled.jobs[0].state], JobState[JobState.CANCELLED]);
  });
});
