import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { certificateIsFor, certificateNames, parseSubjectAltName } from "../../../src/wire/tree-tls.js";
import { requireProgram } from "../../fixtures/programs.js";

t.test("tree TLS names - Node's subjectAltName read whole: a comma inside a name is not a second name", async (t) => {
  t.same(parseSubjectAltName('DNS:n01, DNS:"x\\u002c DNS:n02", IP Address:10.0.0.1'), [
    { type: "DNS", value: "n01" },
    { type: "DNS", value: "x, DNS:n02" },
    { type: "IP Address", value: "10.0.0.1" },
  ]);
  t.same(parseSubjectAltName(undefined), []);
  t.same(parseSubjectAltName('DNS:"unterminated'), [], "not Node's format: no names");
});

t.test("tree TLS names - certificates crafted to claim another node are not for it (openssl-made)", async (t) => {
  requireProgram("openssl");
  const dir = mkdtempSync(join(tmpdir(), "banyan-san-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const make = (subject: string, alt: string[]): X509Certificate => {
    const cnf = join(dir, "san.cnf");
    writeFileSync(cnf, `[req]\ndistinguished_name=dn\n[dn]\n[ext]\n${alt.length > 0 ? `subjectAltName=@alt\n[alt]\n${alt.map((a, k) => `DNS.${k + 1}=${a}`).join("\n")}\n` : "basicConstraints=CA:FALSE\n"}`);
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", join(dir, "k.pem"), "-out", join(dir, "c.pem"), "-subj", subject, "-config", cnf, "-extensions", "ext", "-days", "1"], { stdio: "ignore" });
    return new X509Certificate(readFileSync(join(dir, "c.pem")));
  };
  const honest = make("/CN=n01", ["n01"]);
  t.ok(certificateIsFor(honest, "n01"));
  t.notOk(certificateIsFor(honest, "n02"));
  const comma = make("/CN=n01", ["x, DNS:n02"]);
  t.notOk(certificateIsFor(comma, "n02"), "a SAN holding ', DNS:n02' is not n02's");
  t.same(certificateNames(comma), ["x, DNS:n02"]);
  const subject = make("/O=a, CN=n03/CN=n04", []);
  t.notOk(certificateIsFor(subject, "n03"), "an O holding ', CN=n03' is not n03's");
  t.ok(certificateIsFor(subject, "n04"), "with no DNS names, the CN is the name");
  const wild = make("/CN=x", ["*.cluster", "n0*"]);
  t.notOk(certificateIsFor(wild, "n05.cluster") || certificateIsFor(wild, "n05"), "no wildcards");
  const both = make("/CN=n06", ["n07"]);
  t.notOk(certificateIsFor(both, "n06"), "with DNS names, the CN is not one (RFC 6125)");
});
