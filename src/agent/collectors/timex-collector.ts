import type { Collector, SeriesWriter } from "./series-writer.js";

/**
 * node_exporter's timex collector: the kernel's clock discipline state from adjtimex(2) (read only:
 * modes 0), with node_exporter 1.5's names and units. Node has no binding for the call; it goes
 * through koffi (a C FFI with prebuilt binaries for every platform, loaded on the first tick only
 * where this collector is on: ~3.5 MB of RSS, one syscall per tick).
 */

/** struct timex as adjtimex(2) fills it: what the collector reads. */
export interface Timex {
  readonly offset: number;
  readonly freq: number;
  readonly maxerror: number;
  readonly esterror: number;
  readonly status: number;
  readonly constant: number;
  readonly tick: number;
  readonly ppsfreq: number;
  readonly jitter: number;
  readonly shift: number;
  readonly stabil: number;
  readonly jitcnt: number;
  readonly calcnt: number;
  readonly errcnt: number;
  readonly stbcnt: number;
  readonly tai: number;
}

/** adjtimex's return value when the clock is not synchronised. */
const TIME_ERROR = 5;
/** status bit: offset and jitter are in ns rather than µs. */
const STA_NANO = 0x2000;
/** freq, ppsfreq and stabil are ppm with a 16-bit fraction. */
const PPM16 = 65536e6;

/** Writes node_exporter's node_timex_* from one adjtimex(2) result. */
export function writeTimex(w: SeriesWriter, state: number, t: Timex): void {
  const divisor = (t.status & STA_NANO) !== 0 ? 1e9 : 1e6;
  w.gauge("node_timex_sync_status", {}, state === TIME_ERROR ? 0 : 1, "Is clock synchronized to a reliable server (1 = yes, 0 = no).");
  w.gauge("node_timex_offset_seconds", {}, t.offset / divisor, "Time offset in between local system and reference clock.");
  w.gauge("node_timex_frequency_adjustment_ratio", {}, 1 + t.freq / PPM16, "Local clock frequency adjustment.");
  w.gauge("node_timex_maxerror_seconds", {}, t.maxerror / 1e6, "Maximum error in seconds.");
  w.gauge("node_timex_estimated_error_seconds", {}, t.esterror / 1e6, "Estimated error in seconds.");
  w.gauge("node_timex_status", {}, t.status, "Value of the status array bits.");
  w.gauge("node_timex_loop_time_constant", {}, t.constant, "Phase-locked loop time constant.");
  w.gauge("node_timex_tick_seconds", {}, t.tick / 1e6, "Seconds between clock ticks.");
  w.gauge("node_timex_pps_frequency_hertz", {}, t.ppsfreq / PPM16, "Pulse per second frequency.");
  w.gauge("node_timex_pps_jitter_seconds", {}, t.jitter / divisor, "Pulse per second jitter.");
  w.gauge("node_timex_pps_shift_seconds", {}, t.shift, "Pulse per second interval duration.");
  w.gauge("node_timex_pps_stability_hertz", {}, t.stabil / PPM16, "Pulse per second stability, average of recent frequency changes.");
  w.counter("node_timex_pps_jitter_total", {}, t.jitcnt, "Pulse per second count of jitter limit exceeded events.");
  w.counter("node_timex_pps_calibration_total", {}, t.calcnt, "Pulse per second count of calibration intervals.");
  w.counter("node_timex_pps_error_total", {}, t.errcnt, "Pulse per second count of calibration errors.");
  w.counter("node_timex_pps_stability_exceeded_total", {}, t.stbcnt, "Pulse per second count of stability limit exceeded events.");
  w.gauge("node_timex_tai_offset_seconds", {}, t.tai, "International Atomic Time (TAI) offset.");
}

type Adjtimex = () => { state: number; t: Timex };

let adjtimex: Promise<Adjtimex> | null = null;

/** Binds adjtimex(2) of the C library once per process; rejects where there is no glibc-like libc. */
async function bind(): Promise<Adjtimex> {
  const koffi = (await import("koffi")).default;
  const libc = koffi.load(process.platform === "linux" ? "libc.so.6" : "libc.dylib");
  const timeval = koffi.struct("banyan_timeval", { tv_sec: "long", tv_usec: "long" });
  // glibc's layout (the same on x86_64 and aarch64): longs, ints where the kernel has ints, then
  // eleven ints of padding the kernel may write.
  const timex = koffi.struct("banyan_timex", {
    modes: "uint",
    offset: "long",
    freq: "long",
    maxerror: "long",
    esterror: "long",
    status: "int",
    constant: "long",
    precision: "long",
    tolerance: "long",
    time: timeval,
    tick: "long",
    ppsfreq: "long",
    jitter: "long",
    shift: "int",
    stabil: "long",
    jitcnt: "long",
    calcnt: "long",
    errcnt: "long",
    stbcnt: "long",
    tai: "int",
    pad: koffi.array("int", 11),
  });
  const call = libc.func("adjtimex", "int", [koffi.inout(koffi.pointer(timex))]);
  const buf: Record<string, unknown> = { modes: 0 };
  return () => {
    // modes 0: read only, whoever the agent runs as.
    buf["modes"] = 0;
    const state = call(buf) as number;
    if (state < 0) throw new Error("adjtimex failed");
    return { state, t: buf as unknown as Timex };
  };
}

export const timexCollector: Collector = {
  name: "timex",
  async collect(w) {
    adjtimex ??= bind();
    const read = await adjtimex;
    const { state, t } = read();
    writeTimex(w, state, t);
  },
};
