#!/usr/bin/env node
// npm's prepare hook: builds dist/ after `npm ci` in a clone. `npm ci --omit=dev` has no TypeScript:
// then say how to get a built Banyan instead of failing with "tsc: not found".
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";

try {
  createRequire(import.meta.url).resolve("typescript/package.json");
} catch {
  console.error(
    "banyan: dist/ not built: TypeScript is a dev dependency (npm ci --omit=dev leaves it out).\n" +
      "  On a build host: npm ci && npm run build (or npm run package for the .deb and tarball).\n" +
      "  On nodes: install the .deb, the tarball, or npm install -g ./banyan-<version>.tgz (built already).",
  );
  process.exit(0);
}
execFileSync("npm", ["run", "build", "--silent"], { stdio: "inherit" });
