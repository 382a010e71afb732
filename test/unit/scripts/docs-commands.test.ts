import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import t from "tap";

/**
 * Every command the README and docs/ show is one that exists as shown: each `banyan …` line of a
 * code block or inline code names subcommands the CLI has and flags its --help lists; each
 * `npm run X` a script of package.json; each `node dist/…/X.js` and `scripts/…` a file of the
 * repository. (What the commands do is what the other tests run.)
 */
const REPO = fileURLToPath(new URL("../../../", import.meta.url));
const CLI = join(REPO, "dist/src/cli/main.js");
const PAGES = ["README.md", ...readdirSync(join(REPO, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];

/** The shell text of a page: its sh/bash/console code blocks' lines, and its inline code spans. */
function shellTexts(page: string): { text: string; where: string }[] {
  const lines = readFileSync(join(REPO, page), "utf8").split("\n");
  const out: { text: string; where: string }[] = [];
  let inShell = false;
  let inBlock = false;
  lines.forEach((line, k) => {
    const where = `${page}:${k + 1}`;
    const fence = /^\s*```(\w*)/.exec(line);
    if (fence !== null) {
      if (inBlock) inBlock = inShell = false;
      else {
        inBlock = true;
        inShell = ["sh", "bash", "console", "shell", ""].includes(fence[1]!);
      }
      return;
    }
    if (inBlock) {
      if (inShell) out.push({ text: line.replace(/^\s*\$\s+/, ""), where });
      return;
    }
    for (const m of line.matchAll(/`([^`]+)`/g)) out.push({ text: m[1]!, where });
  });
  return out;
}

/** The `banyan …` commands of a text: each as its words up to a shell operator or comment. */
function banyanCommands(text: string): string[][] {
  const cmds: string[][] = [];
  for (const part of text.split(/&&|\|\||;|\||\$\(|\)/)) {
    const words = part.replace(/#.*$/, "").trim().split(/\s+/);
    const at = words.findIndex((w) => w === "banyan" || w.endsWith("/banyan") || w === "dist/src/cli/main.js");
    if (at < 0 || (at > 0 && !["sudo", "npx", "node", "exec", "-u", "banyan"].includes(words[at - 1]!) && !words[at - 1]!.endsWith("/node"))) continue;
    cmds.push(words.slice(at + 1).filter((w) => w !== ""));
  }
  return cmds;
}

const helpCache = new Map<string, string>();
function help(path: readonly string[]): string {
  const key = path.join(" ");
  let h = helpCache.get(key);
  if (h === undefined) {
    const r = spawnSync(process.execPath, [CLI, ...path, "--help"], { encoding: "utf8" });
    h = r.stdout + r.stderr;
    helpCache.set(key, h);
  }
  return h;
}

/** The subcommands a help text lists under "Commands:". */
function subcommandsOf(text: string): Set<string> {
  const at = text.indexOf("\nCommands:\n");
  if (at < 0) return new Set();
  const names = new Set<string>();
  for (const line of text.slice(at + 11).split("\n")) {
    const m = /^ {2}([a-z][\w-]*)(\|[\w-]+)?\b/.exec(line);
    if (m !== null) names.add(m[1]!);
    else if (line.trim() === "" || !line.startsWith(" ")) break;
  }
  return names;
}

t.test("every banyan command the docs show has the subcommands and flags they give it", async (t) => {
  t.ok(existsSync(CLI), "the CLI is built (npm test builds it first)");
  let checked = 0;
  for (const page of PAGES) {
    for (const { text, where } of shellTexts(page)) {
      for (const words of banyanCommands(text)) {
        const path: string[] = [];
        let k = 0;
        // Descend while the next word is a subcommand of the one so far (`topology generate`).
        while (k < words.length && subcommandsOf(help(path)).has(words[k]!.split("|")[0]!)) path.push(words[k++]!.split("|")[0]!);
        if (path.length === 0) {
          if (words.length > 0 && /^[a-z]/.test(words[0]!)) t.fail(`${where}: banyan ${words[0]}: not a subcommand of banyan`);
          continue;
        }
        const h = help(path);
        for (const w of words.slice(k)) {
          if (!w.startsWith("-") || w === "-" || w === "--") continue;
          const flag = w.split("=")[0]!.replace(/[,.:;)'"]+$/, "");
          if (!new RegExp(`(^|[\\s,])${flag.replace(/[-/\\^$*+?.()|[\]{}]/g, "\\$&")}([\\s,=<\\[]|$)`, "m").test(h)) t.fail(`${where}: banyan ${path.join(" ")} ${flag}: not a flag its --help lists`);
        }
        checked++;
      }
    }
  }
  t.ok(checked >= 30, `${checked} banyan commands checked`);
});

t.test("every npm script, bench program and script the docs name exists", async (t) => {
  const scripts = (JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;
  let checked = 0;
  for (const page of PAGES) {
    const text = readFileSync(join(REPO, page), "utf8");
    for (const m of text.matchAll(/npm run ([\w:-]+)/g)) {
      t.ok(m[1]! in scripts, `${page}: npm run ${m[1]} is a script of package.json`);
      checked++;
    }
    for (const m of text.matchAll(/node (?:--[\w-]+ )*dist\/((?:bench|src|scripts)\/[\w/.-]+)\.js/g)) {
      t.ok(existsSync(join(REPO, `${m[1]}.ts`)), `${page}: dist/${m[1]}.js is built from ${m[1]}.ts`);
      checked++;
    }
    for (const m of text.matchAll(/(?<![\w/.-])(scripts\/[\w.-]+\.(?:mjs|sh))/g)) {
      t.ok(existsSync(join(REPO, m[1]!)), `${page}: ${m[1]} exists`);
      checked++;
    }
  }
  t.ok(checked >= 10, `${checked} names checked`);
});
