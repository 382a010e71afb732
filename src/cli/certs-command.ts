import type { Command } from "commander";
import { makeCertificates, type CertsFlags } from "../tools/certs/certificates.js";
import { exitOnError } from "./cli-errors.js";
import { subcommand } from "./subcommand.js";

export function certsCommand(): Command {
  return subcommand("certs")
    .description("make the site CA and a certificate per node and root of a topology, for mutual TLS on the trees (tree.tls)")
    .requiredOption("--topology <file>", "topology file (every node and root gets a certificate)")
    .requiredOption("-o, --out <dir>", "directory for ca.crt, ca.key and <name>.crt, <name>.key")
    .option("--ca-cert <file>", "an existing CA certificate (PEM) to sign with (default: <out>/ca.crt, made when missing)")
    .option("--ca-key <file>", "its key (PKCS #8 PEM, ECDSA P-256)")
    .option("--days <n>", "validity of the certificates made", "825")
    .option("--names <hostlist>", "only these nodes and roots (e.g. n[0001-0100])")
    .option("--force", "make certificates again for names that have one in --out")
    .option("--owner <user[:group]>", "give the certificates and keys made to this user (the packaged root and relay run as banyan; keys stay mode 600; the CA's key stays yours)")
    .addHelpText(
      "after",
      `
Keys are ECDSA P-256; each certificate names its node as a DNS subject alternative name (what a
parent checks against the node's Hello) and its topology address. Existing certificates are kept
unless --force, so a grown topology only gets the new names'. Keys are mode 600: the packaged
root and relay units run as user banyan, so make theirs with --owner banyan (or install them with
install -o banyan -m 0600). Copy to each host its own
<name>.crt and <name>.key and the CA's ca.crt, and point tree.tls at them:
  tree: { tls: { caFile: /etc/banyan/tls/ca.crt, certFile: /etc/banyan/tls/node.crt, keyFile: /etc/banyan/tls/node.key } }

Examples:
  banyan certs --topology /etc/banyan/topology.json --out /etc/banyan/tls --owner banyan
  banyan certs --topology topology.json --out tls --ca-cert site-ca.crt --ca-key site-ca.key --names "n[0001-0100]"`,
    )
    .action(async (flags: CertsFlags) => {
      try {
        const started = Date.now();
        const r = await makeCertificates(flags);
        process.stderr.write(
          `${r.caMade ? `made the CA ${r.caPath} (its key beside it, mode 600); ` : `signed with ${r.caPath}; `}${r.made} certificate${r.made === 1 ? "" : "s"} made, ${r.kept} kept, in ${flags.out}${flags.owner !== undefined ? `, given to ${flags.owner}` : ""} (${((Date.now() - started) / 1000).toFixed(1)} s)\n`,
        );
      } catch (err) {
        exitOnError(err);
      }
    });
}
