import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import t from "tap";
import { parseAgentConfig } from "../../../src/agent/agent-config.js";
import { applyOverrides, readYamlFile, sourceOf } from "../../../src/core/config-file.js";
import { BanyanError } from "../../../src/core/errors.js";
import { parseRelayConfig } from "../../../src/relay/relay-config.js";
import { parseRootConfig } from "../../../src/root/root-config.js";

const dir = fileURLToPath(new URL("../../fixtures/bad-configs/", import.meta.url));
const parsers: Record<string, (raw: unknown) => unknown> = {
  root: (raw) => parseRootConfig(raw),
  agent: (raw) => parseAgentConfig(raw),
  relay: (raw) => parseRelayConfig(raw),
};

t.test("config - each bad file in fixtures/bad-configs fails with its expected message", async (t) => {
  const files = readdirSync(dir).filter((f) => f.endsWith(".yaml"));
  t.ok(files.length >= 10);
  for (const f of files) {
    const expected = readFileSync(dir + f.replace(/\.yaml$/, ".expected"), "utf8").trim();
    const parse = parsers[f.split("-")[0]!]!;
    try {
      parse(readYamlFile(dir + f));
      t.fail(`${f} was accepted`);
    } catch (err) {
      t.ok(err instanceof BanyanError && err.isBadInput, `${f}: bad input (exit 2)`);
      t.ok((err as Error).message.split("\n").includes(expected), `${f}: ${(err as Error).message} ⊇ ${expected}`);
    }
  }
});

t.test("config - defaults, frozen results, --set overrides", async (t) => {
  const root = parseRootConfig({});
  t.equal(root.intervalMs, 1000);
  t.equal(root.exposeRaw, true);
  t.ok(Object.isFrozen(root) && Object.isFrozen(root.aggregates), "frozen");
  const agent = parseAgentConfig(applyOverrides({ synthetic: { series: 10 } }, ["synthetic.changeRate=0.5", "precision=[{match: 'a*', relative: 0.1}]", "log.level=debug"]));
  t.same(agent.synthetic, { series: 10, changeRate: 0.5, seed: 1 });
  t.same(agent.precision, [{ match: "a*", relative: 0.1, absolute: 0 }]);
  t.equal(agent.log.level, "debug");
  t.throws(() => applyOverrides({}, ["novalue"]), /--set: got "novalue", expected key.path=value/);
  t.throws(() => readYamlFile(dir + "missing.yaml"), /cannot read config/);
});

t.test("config - an error names the file, or the --set that made it", async (t) => {
  const source = { file: "/etc/banyan/root.yaml", flags: ["log.level", "remoteWrite"] };
  t.equal(sourceOf(source, "log.level"), "--set log.level");
  t.equal(sourceOf(source, "remoteWrite.0.url"), "--set remoteWrite", "inside what a flag set");
  t.equal(sourceOf(source, "intervalMs"), "/etc/banyan/root.yaml");
  t.equal(sourceOf({ file: null, flags: [] }, "intervalMs"), "flags");
  t.throws(() => parseRootConfig(applyOverrides({ intervalMs: 500 }, ["bogus=1"]), { file: "/x/root.yaml", flags: ["bogus"] }), /^--set bogus: unknown key "bogus"$/m);
  t.throws(() => parseRootConfig({ bogus: 1 }, { file: "/x/root.yaml", flags: ["intervalMs"] }), /^\/x\/root\.yaml: unknown key "bogus"$/m);
});
