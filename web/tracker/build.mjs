// tracker/dist/clickstream.js (readable) and clickstream.min.js: one ES module each, aws4fetch's signer inside.
import { build as esbuild } from "esbuild";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));

export async function build({ outdir = join(HERE, "dist"), only } = {}) {
  for (const minify of only == "min" ? [true] : [false, true]) {
    await esbuild({
      entryPoints: [join(HERE, "src/index.js")],
      outfile: join(outdir, minify ? "clickstream.min.js" : "clickstream.js"),
      bundle: true,
      format: "esm",
      target: "es2020",
      minify,
      legalComments: minify ? "eof" : "inline",
      logLevel: "warning",
    });
  }
}
