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
      "src/cli/main.ts": 'import "../relay/server.js";\nimport { a } from "../../topology/generate.js";',
      "topology/generate.ts": 'import { BanyanError } from "../src/core/errors.js";',
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
      "topology/generate.ts": 'import { Frame } from "../src/wire/frame.js";',
      "src/agent/ok.ts": 'import { x } from "@grpc/grpc-js";',
    }),
  );
  t.equal(res.status, 1);
  t.match(res.stderr, /src\/relay\/server\.ts: imports \.\.\/agent\/sampler\.js \(src\/agent\)/);
  t.match(res.stderr, /src\/series\/encoder\.ts: imports \.\.\/root\/store\.js \(src\/root\)/);
  t.match(res.stderr, /src\/wire\/codec\.ts: imports \.\.\/relay\/server\.js/);
  t.match(res.stderr, /topology\/generate\.ts: imports \.\.\/src\/wire\/frame\.js \(src\/wire\), but topology may only import src\/core, topology/);
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
