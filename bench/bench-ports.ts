import { createServer } from "node:net";
import { BanyanError, Code } from "../src/core/errors.js";
import { readFileSync } from "node:fs";

/**
 * Ports for a bench cluster on one machine. Only what listens takes a port: the roots (gRPC and
 * HTTP), the real relays, and the bench's own Prometheus and exporter. The block lies outside the
 * kernel's ephemeral range, where outgoing connections take their local ports (a listener there
 * fails with EADDRINUSE at random: at 40,000 simulated nodes the old one-port-per-node layout ran
 * into it at 45016).
 */
export function ephemeralRange(path = "/proc/sys/net/ipv4/ip_local_port_range"): [number, number] {
  try {
    const [lo, hi] = readFileSync(path, "utf8").trim().split(/\s+/).map(Number);
    if (Number.isInteger(lo) && Number.isInteger(hi) && lo! > 0 && hi! >= lo!) return [lo!, hi!];
  } catch {
    // not Linux: the IANA range
  }
  return [49152, 65535];
}

/** The first port of a block of `count` free of the ephemeral range: `preferred` when it fits below it, else the ports above it. */
export function choosePortBase(count: number, preferred: number, range = ephemeralRange()): number {
  const [lo, hi] = range;
  if (preferred >= 1024 && preferred + count <= lo) return preferred;
  if (preferred > hi && preferred + count <= 65536) return preferred;
  if (1024 + count <= lo) return Math.max(1024, lo - count);
  if (hi + 1 + count <= 65536) return hi + 1;
  throw new Error(`no block of ${count} ports outside the ephemeral range ${lo}-${hi}`);
}

/**
 * Throws naming the first port of [base, base + count) that something on 127.0.0.1 holds already
 * (another bench, most likely), and the option that moves the block; one listen per port, closed at once.
 */
export async function assertPortsFree(base: number, count: number): Promise<void> {
  for (let port = base; port < base + count; port++) {
    const busy = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once("error", () => resolve(true));
      s.listen(port, "127.0.0.1", () => s.close(() => resolve(false)));
    });
    if (busy) throw new BanyanError(Code.InvalidArgument, `port ${port} (of this run's ports ${base}-${base + count - 1}) is in use on this host, by another bench perhaps: give --base-port a block that is free`);
  }
}
