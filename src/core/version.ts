import { readFileSync } from "node:fs";
import { packageFile } from "./package-file.js";

/** Banyan's version, read once from package.json. */
export const VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(packageFile("package.json"), "utf8")) as { version?: string }).version ?? "0.0.0";
  } catch {
    return "0.0.0";
  }
})();
