// After a failed `tap` run: every failed assertion again, with its diagnostics and the file it is in,
// read from tap's saved results (.tap/test-results). A CI log keeps only its tail, where tap prints
// the coverage table; this puts what failed after it.
import { readFileSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";

const ROOT = ".tap/test-results";
/** Lines kept of one failure's diagnostics (a long diff or a daemon's log is cut). */
const MAX_LINES = 80;

function* files(dir) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) yield* files(path);
    else if (e.name.endsWith(".tap")) yield path;
  }
}

let failures = 0;
for (const path of files(ROOT)) {
  const lines = readFileSync(path, "utf8").split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (!/^\s*not ok /.test(lines[i])) continue;
    failures++;
    const indent = lines[i].length - lines[i].trimStart().length;
    console.log(`\n## ${relative(ROOT, path).replace(/\.tap$/, "")}`);
    console.log(lines[i].trim());
    // Its diagnostics: the indented lines after it, up to the next line at its own depth or above.
    let shown = 0;
    for (let j = i + 1; j < lines.length; j++) {
      const l = lines[j];
      if (l.trim() !== "" && l.length - l.trimStart().length <= indent) break;
      if (shown++ < MAX_LINES) console.log(l);
    }
    if (shown > MAX_LINES) console.log(`  … ${shown - MAX_LINES} more lines in ${path}`);
  }
}
console.log(failures === 0 ? "\n# tap failed, but no saved result has a failed assertion: coverage under .taprc's levels, or a crash before any result" : `\n# ${failures} failed assertions (above, each with its file)`);
