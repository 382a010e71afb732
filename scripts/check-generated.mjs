#!/usr/bin/env node
// Regenerates the protobuf code into a temporary directory and fails when it differs from the
// committed src/gen: generated code is committed, never edited by hand, and never stale.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const out = mkdtempSync(join(tmpdir(), "banyan-gen-"));
try {
  execFileSync(join(root, "node_modules/.bin/buf"), ["generate", "-o", out], {
    cwd: root,
    stdio: ["ignore", "inherit", "inherit"],
    // buf finds the local protoc-gen-es plugin on PATH, as under `npm run`.
    env: { ...process.env, PATH: `${join(root, "node_modules/.bin")}:${process.env.PATH ?? ""}` },
  });
  const list = (dir) =>
    readdirSync(dir, { recursive: true })
      .map(String)
      .filter((f) => statSync(join(dir, f)).isFile())
      .sort();
  const committedDir = join(root, "src/gen");
  const freshDir = join(out, "src/gen");
  const committed = list(committedDir);
  const fresh = list(freshDir);
  const problems = [];
  for (const f of fresh) {
    if (!committed.includes(f)) problems.push(`missing from src/gen: ${f}`);
    else if (!readFileSync(join(committedDir, f)).equals(readFileSync(join(freshDir, f)))) problems.push(`stale: src/gen/${f}`);
  }
  for (const f of committed) if (!fresh.includes(f)) problems.push(`not generated from proto/: src/gen/${f}`);
  if (problems.length > 0) {
    for (const p of problems) console.error(`check:gen: ${p}`);
    console.error("check:gen: run `npm run generate` and commit src/gen");
    process.exit(1);
  }
  console.log(`check:gen: src/gen matches proto/ (${fresh.length} files, ${relative(root, committedDir)})`);
} finally {
  rmSync(out, { recursive: true, force: true });
}
