// store/dist/: index.html, assets/app-<hash>.js and assets/app-<hash>.css (content-hashed, cacheable forever),
// and config.example.json. /config.json itself is the server's (clickstream serve, or the deployed bucket).
import { build as esbuild } from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
export const DIST = join(HERE, "dist");

export async function build({ outdir = DIST } = {}) {
  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(join(outdir, "assets"), { recursive: true });
  const result = await esbuild({
    entryPoints: { app: join(HERE, "src/main.jsx") },
    outdir: join(outdir, "assets"),
    entryNames: "[name]-[hash]",
    bundle: true,
    format: "esm",
    target: "es2020",
    minify: true,
    jsx: "automatic",
    jsxImportSource: "preact",
    legalComments: "eof",
    metafile: true,
    logLevel: "warning",
  });
  const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
  const js = outputs.find((f) => f.endsWith(".js"));
  const css = outputs.find((f) => f.endsWith(".css"));
  const html = readFileSync(join(HERE, "src/index.html"), "utf8").replace("%JS%", js).replace("%CSS%", css);
  writeFileSync(join(outdir, "index.html"), html);
  copyFileSync(join(HERE, "config.example.json"), join(outdir, "config.example.json"));
  return { outdir, js, css };
}
