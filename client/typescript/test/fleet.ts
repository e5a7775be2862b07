// Starts and stops the real fleetscan binaries that the tests talk to: a
// fleetscan-server with a development TLS certificate on loopback and
// fleetscan-workers reading the demo snapshots. The binaries are those of
// `make build` in .tmp/bin (FLEETSCAN_BIN overrides the directory).
import { spawn, execFile } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

/** The repository, from dist/test/ of client/typescript. */
export const repoRoot = fileURLToPath(new URL("../../../../", import.meta.url));
export const binDir = process.env.FLEETSCAN_BIN ?? join(repoRoot, ".tmp", "bin");
export const demoClusters = join(repoRoot, "deploy", "demo", "clusters");

function bin(name: string): string {
  const path = join(binDir, name);
  if (!existsSync(path)) {
    throw new Error(`${path} is missing: run 'make build' first`);
  }
  return path;
}

interface Proc {
  name: string;
  child: ChildProcess;
  log: string;
  exited: Promise<void>;
}

/** The processes of one test file and the temporary directory they use. */
export class Fleet {
  readonly dir = mkdtempSync(join(tmpdir(), "fleetscan-ts-test-"));
  readonly dataDir = join(this.dir, "data");
  readonly caFile = join(this.dataDir, "tls", "ca.crt");
  address = "";
  private procs: Proc[] = [];
  private readonly killOnExit = () => {
    for (const p of this.procs) p.child.kill("SIGKILL");
  };

  constructor() {
    // Should the test runner die without running the after hooks.
    process.on("exit", this.killOnExit);
  }

  /** The operator token the server wrote on its first start. */
  get operatorToken(): string {
    return readFileSync(join(this.dataDir, "operator.token"), "utf8").trim();
  }

  get baseUrl(): string {
    return `https://${this.address}`;
  }

  /** Starts fleetscan-server on a free loopback port and waits until it listens. */
  async startServer(): Promise<void> {
    const addressFile = join(this.dir, "address");
    const server = this.spawn("server", bin("fleetscan-server"), [
      "--data-dir", this.dataDir,
      "--listen", "127.0.0.1:0",
      "--dev-tls",
      "--address-file", addressFile,
      "--shutdown-timeout", "2s",
    ]);
    let gone = false;
    void server.exited.then(() => (gone = true));
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (existsSync(addressFile)) {
        const address = readFileSync(addressFile, "utf8").trim();
        if (address !== "") {
          this.address = address;
          return;
        }
      }
      if (gone) throw new Error(`fleetscan-server exited\n${this.logs()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`fleetscan-server did not write its address within 15 s\n${this.logs()}`);
  }

  /** Starts a fleetscan-worker for clusterId that scans the demo snapshot of the same name. */
  startWorker(clusterId: string, joinToken: string): void {
    const tokenFile = join(this.dir, `${clusterId}.token`);
    writeFileSync(tokenFile, joinToken, { mode: 0o600 });
    this.spawn(`worker-${clusterId}`, bin("fleetscan-worker"), [
      "--server", this.address,
      "--ca", this.caFile,
      "--cluster-id", clusterId,
      "--token-file", tokenFile,
      "--snapshot", join(demoClusters, clusterId),
    ]);
  }

  /** The last lines of every log, for error messages. */
  logs(lines = 20): string {
    return this.procs
      .map((p) => {
        const text = existsSync(p.log) ? readFileSync(p.log, "utf8").trimEnd().split("\n").slice(-lines).join("\n") : "";
        return `--- ${p.name}\n${text}`;
      })
      .join("\n");
  }

  /** Stops every process (SIGTERM, then SIGKILL after 5 s) and removes the directory. */
  async stop(): Promise<void> {
    // Workers first, so that the server does not log their reconnects.
    for (const p of [...this.procs].reverse()) {
      p.child.kill("SIGTERM");
      const timer = setTimeout(() => p.child.kill("SIGKILL"), 5_000);
      await p.exited;
      clearTimeout(timer);
    }
    this.procs = [];
    process.off("exit", this.killOnExit);
    if (process.env.FLEETSCAN_KEEP_TEST_DIR) {
      console.error(`kept ${this.dir}`);
    } else {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }

  private spawn(name: string, path: string, args: string[]): Proc {
    const log = join(this.dir, `${name}.log`);
    const fd = openSync(log, "a");
    const child = spawn(path, args, { stdio: ["ignore", fd, fd] });
    closeSync(fd);
    const exited = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      child.once("exit", () => resolve());
      child.once("error", () => resolve());
    });
    const proc = { name, child, log, exited };
    this.procs.push(proc);
    return proc;
  }
}

/** What `fleetscan-worker scan --snapshot DIR -o json` prints: the offline scan of a snapshot. */
export async function offlineScan(clusterId: string): Promise<{ findings: unknown[] }> {
  const { stdout } = await promisify(execFile)(
    bin("fleetscan-worker"),
    ["scan", "--snapshot", join(demoClusters, clusterId), "-o", "json"],
    { maxBuffer: 64 << 20 },
  );
  return JSON.parse(stdout) as { findings: unknown[] };
}
