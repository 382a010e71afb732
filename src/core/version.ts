import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

/** Banyan's version, read once from package.json (two levels up from src/core or dist/src/core). */
export const VERSION: string = (() => {
  for (const candidate of ["../../package.json", "../../../package.json"]) {
    try {
      const pkg = require(candidate) as { name?: string; version?: string };
      if (pkg.name === "banyan" && typeof pkg.version === "string") return pkg.version;
    } catch {
      // not at this depth; try the next
    }
  }
  return "0.0.0";
})();
