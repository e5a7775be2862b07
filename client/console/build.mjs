// Bundles the console into one directory of three files, the same bytes
// for the same sources and locked packages:
//
//   index.html   src/index.html, copied
//   console.js   src/main.ts and what it imports, minified, ES2020
//   console.css  src/console.css with uPlot's CSS, minified
//
// Usage: node build.mjs [OUTDIR]; OUTDIR defaults to the directory the Go
// server embeds, server/internal/web/console/dist. No source maps: the
// sources are in the repository, and the bundle stays small to review.
import { copyFile, mkdir, readFile, rm } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const outdir = resolve(process.argv[2] ?? join(here, "../../server/internal/web/console/dist"));

// The generated messages live in the TypeScript SDK (client/typescript/src/gen)
// and import @bufbuild/protobuf; it is resolved from this package's
// node_modules whether or not the SDK's own are installed, so that one
// `npm ci` here builds the console and the bundle does not depend on what
// else happens to be installed.
const ownPackages = {
  name: "own-packages",
  setup(build) {
    build.onResolve({ filter: /^@bufbuild\/protobuf(\/|$)/ }, (args) => {
      if (args.pluginData === "own") return undefined;
      return build.resolve(args.path, { kind: args.kind, resolveDir: here, pluginData: "own" });
    });
  },
};

// Third-party notices, kept in the bundle: minifying drops the packages'
// own comments.
async function version(pkg) {
  return JSON.parse(await readFile(join(here, "node_modules", pkg, "package.json"), "utf8")).version;
}
const uplotCopyright = (await readFile(join(here, "node_modules/uplot/dist/uPlot.esm.js"), "utf8")).match(/Copyright \(c\) [^\n]*/)[0];
const uplot = `uPlot ${await version("uplot")}, ${uplotCopyright}, MIT License`;
const notices = {
  js:
    `/*! fleetscan console. Bundles ${uplot}; @bufbuild/protobuf ${await version("@bufbuild/protobuf")},` +
    ` Apache-2.0 AND BSD-3-Clause; @connectrpc/connect and @connectrpc/connect-web ${await version("@connectrpc/connect-web")}, Apache-2.0. */`,
  css: `/*! fleetscan console. Includes the CSS of ${uplot}. */`,
};

await rm(outdir, { recursive: true, force: true });
await mkdir(outdir, { recursive: true });
await esbuild.build({
  absWorkingDir: here,
  entryPoints: [
    { in: "src/main.ts", out: "console" },
    { in: "src/console.css", out: "console" },
  ],
  outdir,
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2020",
  platform: "browser",
  charset: "utf8",
  legalComments: "none",
  banner: notices,
  sourcemap: false,
  metafile: false,
  logLevel: "warning",
  plugins: [ownPackages],
});
await copyFile(join(here, "src/index.html"), join(outdir, "index.html"));
