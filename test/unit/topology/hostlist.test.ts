import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { BanyanError } from "../../../src/core/errors.js";
import { assertUnique, expandHostlist, readHostlistArgument } from "../../../src/topology/hostlist.js";

t.test("hostlist - expands ranges with the lower bound's zero padding", async (t) => {
  t.same(expandHostlist("node[001-003]"), ["node001", "node002", "node003"]);
  t.same(expandHostlist("n[8-10]"), ["n8", "n9", "n10"]);
  t.same(expandHostlist("n[08-10]"), ["n08", "n09", "n10"]);
  t.equal(expandHostlist("node[001-128]").length, 128);
  t.equal(expandHostlist("node[001-128]")[127], "node128");
});

t.test("hostlist - lists, singles and several groups", async (t) => {
  t.same(expandHostlist("gpu[01-03,12,20-21]"), ["gpu01", "gpu02", "gpu03", "gpu12", "gpu20", "gpu21"]);
  t.same(expandHostlist("a1,b2,c[1-2]"), ["a1", "b2", "c1", "c2"]);
  t.same(expandHostlist("svc1"), ["svc1"]);
  t.same(expandHostlist("login-1.cluster_x"), ["login-1.cluster_x"]);
});

t.test("hostlist - several bracket groups in one name vary the leftmost slowest", async (t) => {
  t.same(expandHostlist("r[1-2]n[01-03]"), ["r1n01", "r1n02", "r1n03", "r2n01", "r2n02", "r2n03"]);
  t.same(expandHostlist("r[1-2]n[1-2]-ib"), ["r1n1-ib", "r1n2-ib", "r2n1-ib", "r2n2-ib"]);
});

t.test("hostlist - a malformed hostlist quotes the text and points at the column", async (t) => {
  const cases: [string, string, number][] = [
    ["node[001-12", "unclosed '['", 5],
    ["node[3-1]", "goes backwards", 6],
    ["node[1-]", "expected a number after '-'", 8],
    ["node[a-3]", "expected a number", 6],
    ["node[]", "empty '[]'", 6],
    ["node[1-3]]", "unexpected ']'", 10],
    ["node[1[2]]", "nested '['", 7],
    ["a,,b", "empty host name", 3],
    ["a,b,", "trailing ','", 4],
    ["node 1", "unexpected character \" \"", 5],
    ["node[1,]", "trailing ',' in range", 8],
    ["node[1;2]", "unexpected character \";\" in range", 7],
    ["", "empty hostlist", 1],
    ["n[1-9999999999]", "number longer than 9 digits", 3],
    ["n[1-3000000]", "too large", 3],
    ["a[1-2000]b[1-2000]", "expands to more than", 1],
  ];
  for (const [text, why, column] of cases) {
    try {
      expandHostlist(text);
      t.fail(`${JSON.stringify(text)} should not parse`);
    } catch (err) {
      t.ok(err instanceof BanyanError, `${text}: a BanyanError`);
      const msg = (err as Error).message;
      t.match(msg, why, `${JSON.stringify(text)}: says ${why}`);
      t.match(msg, `at column ${column}`, `${JSON.stringify(text)}: column ${column}`);
      t.ok(msg.split("\n")[1] === `  ${text}`, `${JSON.stringify(text)}: quotes the text`);
      const caret = msg.split("\n")[2]!;
      t.equal(caret.indexOf("^") - 2, column - 1, `${JSON.stringify(text)}: caret under column ${column}`);
      t.equal((err as BanyanError).isBadInput, true);
    }
  }
});

t.test("hostlist - @file reads one name or hostlist per line, skipping blanks and comments", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "banyan-hl-"));
  const f = join(dir, "nodes.txt");
  writeFileSync(f, "# from scontrol show hostnames\nnode01\nnode02\n\ngpu[1-2]   # gpus\n");
  t.same(readHostlistArgument(`@${f}`), ["node01", "node02", "gpu1", "gpu2"]);
  writeFileSync(f, "node01\nnode[02\n");
  t.throws(() => readHostlistArgument(`@${f}`), /nodes\.txt:2: unclosed '\['/);
  writeFileSync(f, "# nothing\n\n");
  t.throws(() => readHostlistArgument(`@${f}`), /no host names/);
  t.throws(() => readHostlistArgument(`@${join(dir, "missing.txt")}`), /cannot read node list/);
  t.same(readHostlistArgument("n[1-2]"), ["n1", "n2"]);
});

t.test("hostlist - a name listed twice is refused by name", async (t) => {
  t.throws(() => assertUnique(expandHostlist("n[1-3],n2"), "--nodes"), /--nodes: n2 is listed twice/);
  t.doesNotThrow(() => assertUnique(["a", "b"], "--nodes"));
});
