// The SDK as a tenant installs it: `npm pack`, `npm install` of the
// tarball into a fresh project, and a program that imports the package by
// its name and calls a real server.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { createClient } from "../src/index.js";
import { Fleet } from "./fleet.js";

// dist/test/pack.test.js → the package's directory.
const pkgDir = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

describe("the published package", () => {
  const fleet = new Fleet();
  const project = mkdtempSync(join(tmpdir(), "fleetscan-sdk-consumer-"));

  before(async () => {
    await fleet.startServer();
  });
  after(async () => {
    await fleet.stop();
    rmSync(project, { recursive: true, force: true });
  });

  it("is publishable: named, versioned, licensed, typed, not private", () => {
    const pkg = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"));
    assert.equal(pkg.name, "@fleetscan/sdk");
    assert.match(pkg.version, /^\d+\.\d+\.\d+/);
    assert.equal(pkg.private, undefined, "private packages cannot be published");
    assert.ok(pkg.license, "license missing");
    assert.ok(pkg.types && pkg.files?.includes("dist/src"), "types or files missing");
  });

  it("installs from its tarball and calls a real server", () => {
    // The build ran already (make ts-test); --ignore-scripts keeps npm from
    // rebuilding dist/ under the tests that run from it.
    const packed = execFileSync("npm", ["pack", "--ignore-scripts", "--pack-destination", project, "--silent"], { cwd: pkgDir, encoding: "utf8" }).trim();
    const tarball = join(project, packed.split("\n").pop()!);
    const listing = execFileSync("tar", ["-tzf", tarball], { encoding: "utf8" });
    assert.match(listing, /package\/dist\/src\/index\.d\.ts/);
    assert.doesNotMatch(listing, /package\/dist\/test\//, "tests were packed");

    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "consumer", version: "1.0.0", type: "module", private: true }));
    execFileSync("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--silent", tarball], { cwd: project, stdio: "pipe" });
    assert.ok(readdirSync(join(project, "node_modules", "@fleetscan")).includes("sdk"));

    writeFileSync(
      join(project, "main.mjs"),
      `import { createClient } from "@fleetscan/sdk";
const client = createClient({ baseUrl: process.env.BASE_URL, token: process.env.TOKEN, caFile: process.env.CA_FILE });
const resp = await client.clusters.registerCluster({ clusterId: "from-the-package", tenant: "acme" });
const ids = [];
for await (const c of client.listAllClusters()) ids.push(c.id);
client.close();
console.log(resp.cluster.id, ids.join(","));
`,
    );
    const out = execFileSync("node", ["main.mjs"], {
      cwd: project,
      encoding: "utf8",
      env: { ...process.env, BASE_URL: fleet.baseUrl, TOKEN: fleet.operatorToken, CA_FILE: fleet.caFile },
    });
    assert.equal(out.trim(), "from-the-package from-the-package");
  });

  it("runs the tenant guide's TypeScript program as it stands", async () => {
    // A scanned cluster with critical findings for the program to list.
    const op = createClient({ baseUrl: fleet.baseUrl, token: fleet.operatorToken, caFile: fleet.caFile });
    const reg = await op.clusters.registerCluster({ clusterId: "globex-prod", tenant: "globex" });
    fleet.startWorker("globex-prod", reg.joinToken);
    const started = await op.scans.startScan({ target: { clusterIds: ["globex-prod"] } });
    const scan = await op.waitForScan(started.scan!.id);
    op.close();
    const critical = Number(scan.findings?.critical ?? 0n);
    assert.ok(critical > 0, "the demo cluster has no critical finding to list");

    const guide = readFileSync(join(pkgDir, "..", "..", "docs", "tenant-guide.md"), "utf8");
    const program = /```ts\n([\s\S]*?)```/.exec(guide);
    assert.ok(program, "no TypeScript program in docs/tenant-guide.md");
    writeFileSync(join(project, "guide.ts"), program[1]);
    execFileSync(
      "node",
      [join(pkgDir, "node_modules", "typescript", "bin", "tsc"), "--module", "nodenext", "--target", "es2022", "--strict",
        "--types", "node", "--typeRoots", join(pkgDir, "node_modules", "@types"), "guide.ts"],
      { cwd: project, stdio: "pipe" },
    );
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "consumer", version: "1.0.0", type: "module", private: true }));
    const out = execFileSync("node", ["guide.js"], {
      cwd: project,
      encoding: "utf8",
      env: { ...process.env, FLEETSCAN_SERVER: fleet.address, FLEETSCAN_TOKEN: fleet.operatorToken, FLEETSCAN_CA: fleet.caFile },
    });
    const lines = out.trim().split("\n");
    assert.equal(lines.length, critical, out);
    assert.match(lines[0], /^globex-prod /);
  });
});
