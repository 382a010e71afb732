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
