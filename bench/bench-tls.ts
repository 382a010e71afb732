import { join } from "node:path";
import type { TreeTlsConfig } from "../src/wire/tree-tls.js";

/** The tree.tls files of `name` in a directory `banyan certs` made. */
export function treeTlsFiles(dir: string, name: string): TreeTlsConfig {
  return { caFile: join(dir, "ca.crt"), certFile: join(dir, `${name}.crt`), keyFile: join(dir, `${name}.key`) };
}

/** The same as `--set` flags of a daemon. */
export function treeTlsSets(dir: string, name: string): string[] {
  const f = treeTlsFiles(dir, name);
  return ["--set", `tree.tls.caFile=${f.caFile}`, "--set", `tree.tls.certFile=${f.certFile}`, "--set", `tree.tls.keyFile=${f.keyFile}`];
}
