import t from "tap";
import { bindAddress, treeBindAddress } from "../../../topology/topology-lookup.js";

t.test("lookup - the tree port binds the topology's address only; HTTP a host name's port on every interface", async (t) => {
  t.equal(await treeBindAddress("10.1.2.3:7470", "test"), "10.1.2.3:7470", "an IP literal as it is");
  t.equal(await treeBindAddress("[::1]:7470", "test"), "[::1]:7470");
  t.match(await treeBindAddress("localhost:7470", "test"), /^(127\.0\.0\.1|\[::1\]):7470$/, "a host name resolved, not 0.0.0.0");
  t.equal(bindAddress("node01:9470"), "0.0.0.0:9470", "HTTP: every interface");
});
