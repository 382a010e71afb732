import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { KernelFiles } from "../../../src/agent/collectors/kernel-files.js";

t.test("kernel files - a kept descriptor reads the file's content now; an absent file is not asked again for a minute", async (t) => {
  const root = mkdtempSync(join(tmpdir(), "banyan-kf-"));
  const kf = new KernelFiles();
  t.teardown(() => kf.close());
  kf.setRoots([root]);
  const f = join(root, "stat");
  writeFileSync(f, "cpu 1 2 3\n");
  t.equal(kf.read(f, 0), "cpu 1 2 3\n");
  t.equal(kf.openCount, 1, "its descriptor kept");
  writeFileSync(f, "cpu 4 5 6 7\n"); // in place, as the kernel regenerates a file
  t.equal(kf.read(f, 0), "cpu 4 5 6 7\n", "read again from offset 0: the new content");
  const big = "x".repeat(200_000);
  writeFileSync(f, big);
  t.equal(kf.read(f, 0), big, "a file larger than the buffer, whole");

  const later = join(root, "infiniband");
  t.equal(kf.read(later, 1000), null);
  mkdirSync(later);
  t.same(kf.list(later, 2000), [], "absent, remembered");
  t.equal(kf.list(later, 62_000).length, 0, "after a minute it is asked again (and is there, empty)");
  writeFileSync(join(later, "port"), "1\n");
  t.same(kf.list(later, 62_001), ["port"]);

  const outside = join(mkdtempSync(join(tmpdir(), "banyan-kf-out-")), "os-release");
  writeFileSync(outside, "ID=debian\n");
  const before = kf.openCount;
  t.equal(kf.read(outside, 0), "ID=debian\n");
  t.equal(kf.openCount, before, "a file outside the kernel roots is read whole, no descriptor kept");
});

t.test("kernel files - descriptors are bounded", async (t) => {
  const root = mkdtempSync(join(tmpdir(), "banyan-kf-"));
  const kf = new KernelFiles();
  t.teardown(() => kf.close());
  kf.setRoots([root]);
  for (let i = 0; i < 300; i++) {
    writeFileSync(join(root, `f${i}`), String(i));
    t.equal(kf.read(join(root, `f${i}`), 0), String(i));
  }
  t.equal(kf.openCount, 256, "at most 256 kept; the rest read whole");
});
