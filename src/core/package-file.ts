import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The root of the Banyan package, found by walking up from this file to the package.json named
 * "banyan" (this file runs from src/core under the tests and from dist/src/core once built).
 */
export const PACKAGE_ROOT: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let k = 0; k < 6; k++) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "banyan") return dir;
      } catch {
        // not ours
      }
    }
    dir = dirname(dir);
  }
  return process.cwd();
})();

/** A file shipped with the package, e.g. `data/node_exporter-1.5.0-sample.prom`. */
export function packageFile(relative: string): string {
  return join(PACKAGE_ROOT, relative);
}
