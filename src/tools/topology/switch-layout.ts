import { readFileSync } from "node:fs";
import { BanyanError, Code } from "../../core/errors.js";
import { expandHostlist } from "../../topology/hostlist.js";

/**
 * The rack layout from Slurm's topology.conf (topology/tree plugin):
 *
 *   SwitchName=s0 Nodes=tux[0-31]
 *   SwitchName=s1 Nodes=tux[32-63]
 *   SwitchName=spine Switches=s[0-1]
 *
 * Leaf switches are those with `Nodes=`. `BlockName=… Nodes=…` lines (topology/block) count as
 * leaf groups too. Leaf switches are ordered depth-first from the top switches, so leaves under
 * the same spine come next to each other.
 */
export interface SwitchLayout {
  /** Leaf switch of each node listed in the file. */
  readonly switchOf: ReadonlyMap<string, string>;
  /** Leaf switches, depth-first from the top of the switch tree. */
  readonly leafOrder: readonly string[];
}

interface SwitchDef {
  readonly name: string;
  readonly nodes: string[];
  readonly switches: string[];
  readonly line: number;
}

const KNOWN_KEYS = new Set(["switchname", "blockname", "nodes", "switches", "linkspeed", "blocksizes"]);

export function parseSwitchLayout(text: string, source: string): SwitchLayout {
  const defs = new Map<string, SwitchDef>();
  const order: SwitchDef[] = [];
  // Join continuation lines ("\" at the end) but remember where each logical line began.
  const logical: { text: string; line: number }[] = [];
  let pending = "";
  let pendingLine = 0;
  text.split("\n").forEach((raw, idx) => {
    const line = raw.replace(/#.*/, "").trimEnd();
    if (pending === "") pendingLine = idx + 1;
    if (line.endsWith("\\")) {
      pending += line.slice(0, -1) + " ";
      return;
    }
    pending += line;
    if (pending.trim() !== "") logical.push({ text: pending.trim(), line: pendingLine });
    pending = "";
  });

  for (const { text: lineText, line } of logical) {
    const where = `${source}:${line}`;
    const fields = new Map<string, string>();
    for (const token of lineText.split(/\s+/)) {
      const eq = token.indexOf("=");
      if (eq <= 0) throw new BanyanError(Code.InvalidConfig, `${where}: expected Key=Value, got ${JSON.stringify(token)}`);
      const key = token.slice(0, eq).toLowerCase();
      if (!KNOWN_KEYS.has(key)) {
        throw new BanyanError(
          Code.InvalidConfig,
          `${where}: unknown key ${JSON.stringify(token.slice(0, eq))}, expected SwitchName, Nodes, Switches or LinkSpeed`,
        );
      }
      fields.set(key, token.slice(eq + 1));
    }
    if (fields.has("blocksizes") && fields.size === 1) continue;
    const switchName = fields.get("switchname") ?? fields.get("blockname");
    if (switchName === undefined || switchName === "") {
      throw new BanyanError(Code.InvalidConfig, `${where}: line has no SwitchName=`);
    }
    if (defs.has(switchName)) {
      throw new BanyanError(Code.InvalidConfig, `${where}: switch ${switchName} is defined twice`);
    }
    const nodes = fields.has("nodes") ? expandHostlist(fields.get("nodes")!, `${where}: Nodes`) : [];
    const switches = fields.has("switches") ? expandHostlist(fields.get("switches")!, `${where}: Switches`) : [];
    const def: SwitchDef = { name: switchName, nodes, switches, line };
    defs.set(switchName, def);
    order.push(def);
  }

  const switchOf = new Map<string, string>();
  for (const def of order) {
    for (const node of def.nodes) {
      const other = switchOf.get(node);
      if (other !== undefined) {
        throw new BanyanError(
          Code.InvalidConfig,
          `${source}:${def.line}: node ${node} is under both ${other} and ${def.name}`,
        );
      }
      switchOf.set(node, def.name);
    }
  }

  const referenced = new Set<string>();
  for (const def of order) {
    for (const child of def.switches) {
      if (!defs.has(child)) {
        throw new BanyanError(Code.InvalidConfig, `${source}:${def.line}: switch ${def.name} names unknown switch ${child}`);
      }
      referenced.add(child);
    }
  }
  const leafOrder: string[] = [];
  const visited = new Set<string>();
  const visit = (def: SwitchDef): void => {
    if (visited.has(def.name)) return;
    visited.add(def.name);
    if (def.nodes.length > 0) leafOrder.push(def.name);
    for (const child of def.switches) visit(defs.get(child)!);
  };
  for (const def of order) if (!referenced.has(def.name)) visit(def);
  // A cycle among switches leaves some unvisited: take them in file order.
  for (const def of order) visit(def);
  return { switchOf, leafOrder };
}

export function readSwitchLayout(path: string): SwitchLayout {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new BanyanError(Code.NotFound, `cannot read switch layout ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return parseSwitchLayout(text, path);
}
