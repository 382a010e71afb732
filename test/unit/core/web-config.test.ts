import { mkdtempSync, writeFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import bcrypt from "bcrypt";
import t from "tap";
import { WebAuth, readWebConfig } from "../../../src/core/web-config.js";

const dir = mkdtempSync(join(tmpdir(), "banyan-webcfg-"));
const file = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
const hash = bcrypt.hashSync("pw", 4).replace(/^\$2b\$/, "$2y$");
const req = (authorization?: string): IncomingMessage => ({ headers: authorization === undefined ? {} : { authorization }, socket: {} }) as unknown as IncomingMessage;
const basic = (user: string, pw: string): string => `Basic ${Buffer.from(`${user}:${pw}`).toString("base64")}`;

t.test("web config - what a file may say, and what it may not, with the file and the key named", async (t) => {
  t.throws(() => readWebConfig(join(dir, "none.yml"), "web.configFile"), /web.configFile: .*none.yml: ENOENT/);
  t.throws(() => readWebConfig(file("a.yml", "http_server_config:\n  http2: false\n"), "web.configFile"), /a.yml: .*http_server_config/, "a key it does not implement is an error, not ignored");
  t.throws(() => readWebConfig(file("b.yml", "basic_auth_users:\n  alice: plaintext\n"), "web.configFile"), /basic_auth_users.alice: expected a bcrypt hash/);
  t.throws(() => readWebConfig(file("c.yml", `tls_server_config:\n  cert_file: ${join(dir, "x.crt")}\n  key_file: ${join(dir, "x.key")}\n`), "web.configFile"), /tls_server_config.cert_file: .*x.crt: ENOENT/);
  writeFileSync(join(dir, "x.crt"), "");
  writeFileSync(join(dir, "x.key"), "");
  t.throws(() => readWebConfig(file("d.yml", `tls_server_config:\n  cert_file: ${join(dir, "x.crt")}\n  key_file: ${join(dir, "x.key")}\n  client_auth_type: RequireAndVerifyClientCert\n`), "web.configFile"), /client_ca_file: expected one/);
  t.match(readWebConfig(file("e.yml", `basic_auth_users:\n  alice: "${hash}"\n`), "web.configFile"), { tls: null });
});

t.test("web config - basic auth: right password in, anything else 401; an empty password never", async (t) => {
  const auth = new WebAuth(readWebConfig(file("u.yml", `basic_auth_users:\n  alice: "${hash}"\n`), "web.configFile"));
  t.equal(await auth.refusal(req(basic("alice", "pw"))), null);
  t.equal(await auth.refusal(req(basic("alice", "pw"))), null, "remembered");
  for (const a of [undefined, basic("alice", "nope"), basic("bob", "pw"), basic("alice", ""), "Bearer pw", "Basic !!!"]) t.match(await auth.refusal(req(a)), { status: 401 }, String(a));
  t.equal(await new WebAuth(null).refusal(req()), null, "no web config: open");
});
