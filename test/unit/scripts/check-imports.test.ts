import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import t from "tap";
import { fileTree } from "../../fixtures/file-tree.js";

const script = fileURLToPath(new URL("../../../scripts/check-imports.mjs", import.meta.url));

const tree = (files: Record<string, string>): string => fileTree(files, "banyan-imports-");
const run = (root: string) => spawnSync(process.execPath, [script, "--root", root], { encoding: "utf8" });

t.test("import boundaries - the one-way flow passes", async (t) => {
  const res = run(
    tree({
      "src/core/errors.ts": "export const x = 1;",
      "src/series/encoder.ts": 'import { x } from "../core/errors.js";',
      "src/relay/server.ts": 'import type { X } from "../wire/frame.js";\nimport { y } from "./local.js";',
      "src/cli/main.ts": 'import "../relay/server.js";\nimport { a } from "../tools/topology/generate.js";',
      "src/tools/topology/generate.ts": 'import { BanyanError } from "../../core/errors.js";\nimport { hosts } from "../../topology/hostlist.js";',
      "src/topology/hostlist.ts": 'import { BanyanError } from "../core/errors.js";',
    }),
  );
  t.equal(res.status, 0, res.stderr);
});

t.test("import boundaries - a daemon importing another daemon, or series importing a daemon, fails", async (t) => {
  const res = run(
    tree({
      "src/relay/server.ts": 'import { Sampler } from "../agent/sampler.js";',
      "src/series/encoder.ts": 'export { Store } from "../root/store.js";',
      "src/wire/codec.ts": 'const m = await import("../relay/server.js");',
      "src/topology/topology-file.ts": 'import { Frame } from "../wire/frame.js";',
      "src/tools/usage/usage-report.ts": 'import { RootStore } from "../../root/ingest/root-store.js";',
      "src/agent/ok.ts": 'import { x } from "@grpc/grpc-js";',
    }),
  );
  t.equal(res.status, 1);
  t.match(res.stderr, /src\/relay\/server\.ts: imports \.\.\/agent\/sampler\.js \(src\/agent\)/);
  t.match(res.stderr, /src\/series\/encoder\.ts: imports \.\.\/root\/store\.js \(src\/root\)/);
  t.match(res.stderr, /src\/wire\/codec\.ts: imports \.\.\/relay\/server\.js/);
  t.match(res.stderr, /src\/topology\/topology-file\.ts: imports \.\.\/wire\/frame\.js \(src\/wire\), but src\/topology may only import src\/core, src\/topology/);
  t.match(res.stderr, /src\/tools\/usage\/usage-report\.ts: imports \.\.\/\.\.\/root\/ingest\/root-store\.js \(src\/root\)/, "the admin's tools never import a daemon");
  t.notMatch(res.stderr, /ok\.ts/, "packages are not layers");
});

t.test("import boundaries - a circle of imports fails, type-only imports included, and is named as a path", async (t) => {
  const res = run(
    tree({
      "src/wire/a.ts": 'import { b } from "./b.js";\nexport const a = 1;',
      "src/wire/b.ts": 'import type { C } from "./c.js";\nexport const b = 2;',
      "src/wire/c.ts": 'import { a } from "./a.js";\nexport type C = number;',
      "src/wire/d.ts": 'import { a } from "./a.js";',
    }),
  );
  t.equal(res.status, 1);
  t.match(res.stderr, /a circle of imports: src\/wire\/a\.ts → src\/wire\/b\.ts → src\/wire\/c\.ts → src\/wire\/a\.ts/);
  t.notMatch(res.stderr, /d\.ts/, "a file that only imports into the circle is not in it");
});

t.test("import boundaries - inside the root, rooms import only the rooms below them, never the root's top files", async (t) => {
  const ok = run(
    tree({
      "src/root/exposition/cache.ts": "export const c = 1;",
      "src/root/outputs/root-output.ts": 'import { c } from "../exposition/cache.js";',
      "src/root/ingest/store.ts": 'import type { RootOutput } from "../outputs/root-output.js";',
      "src/root/api/http.ts": 'import { Store } from "../ingest/store.js";',
      "src/root/root-daemon.ts": 'import "./api/http.js";\nimport "./ingest/store.js";',
      "src/node/node-daemon.ts": 'import { x } from "../wire/frame.js";',
      "src/agent/agent-daemon.ts": 'import { startNode } from "../node/node-daemon.js";',
    }),
  );
  t.equal(ok.status, 0, ok.stderr);
  const res = run(
    tree({
      "src/root/outputs/remote-write/out.ts": 'import type { OriginState } from "../../ingest/origin-state.js";',
      "src/root/ingest/store.ts": 'import { Jobs } from "../fleet/jobs.js";',
      "src/root/fleet/plan.ts": 'import type { RootConfig } from "../root-config.js";',
      "src/root/attic/old.ts": 'import { c } from "../exposition/cache.js";',
      "src/wire/frame.ts": 'import { Sampler } from "../node/sampler.js";',
    }),
  );
  t.equal(res.status, 1);
  t.match(res.stderr, /src\/root\/outputs\/remote-write\/out\.ts: imports \.\.\/\.\.\/ingest\/origin-state\.js \(src\/root\/ingest\), but src\/root\/outputs may only import src\/root\/exposition, src\/root\/events: an arrow back up/);
  t.match(res.stderr, /src\/root\/ingest\/store\.ts: imports \.\.\/fleet\/jobs\.js \(src\/root\/fleet\)/);
  t.match(res.stderr, /src\/root\/fleet\/plan\.ts: imports \.\.\/root-config\.js, a top file of src\/root/);
  t.match(res.stderr, /src\/root\/attic\/old\.ts: src\/root\/attic is not a room/);
  t.match(res.stderr, /src\/wire\/frame\.ts: imports \.\.\/node\/sampler\.js \(src\/node\)/);
});

t.test("import boundaries - bench/ enters the daemons and tools by their front doors only", async (t) => {
  const ok = run(
    tree({
      "src/root/index.ts": 'export { startRoot } from "./root-daemon.js";',
      "src/root/ingest/index.ts": 'export { RootStore } from "./root-store.js";',
      "bench/a.ts": 'import { startRoot } from "../src/root/index.js";\nimport { RootStore } from "../src/root/ingest/index.js";\nimport { encodePayload } from "../src/wire/payload-codec.js";',
    }),
  );
  t.equal(ok.status, 0, ok.stderr);
  const res = run(
    tree({
      "bench/b.ts": 'import { OriginState } from "../src/root/ingest/origin-state.js";\nimport { startAgent } from "../src/agent/agent-daemon.js";',
    }),
  );
  t.equal(res.status, 1);
  t.match(res.stderr, /bench\/b\.ts: imports \.\.\/src\/root\/ingest\/origin-state\.js, inside src\/root: bench\/ enters src\/root by its front door \(src\/root\/ingest\/index\.ts/);
  t.match(res.stderr, /bench\/b\.ts: imports \.\.\/src\/agent\/agent-daemon\.js, inside src\/agent: bench\/ enters src\/agent by its front door \(src\/agent\/index\.ts/);
});
