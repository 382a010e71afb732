import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { LimitedWarning, type Logger } from "../../core/logger.js";
import { SeriesWriter } from "../collectors/series-writer.js";
import { BackgroundPoll } from "../background-poll.js";
import type { SampleTarget, Source } from "../../node/source.js";

const run = promisify(execFile);

/** The instantaneous power of `ipmitool dcmi power reading`, in watts; null when the output has none (a BMC without DCMI power). */
export function parseDcmiPowerReading(text: string): number | null {
  // A BMC whose power reading is switched off still prints 0 W: that is no reading, not a node drawing nothing.
  if (/Power reading state is\s*:\s*deactivated/i.test(text)) return null;
  const m = /Instantaneous power reading\s*:\s*([\d.]+)\s*Watts/i.exec(text);
  const w = m === null ? NaN : Number(m[1]);
  return Number.isFinite(w) ? w : null;
}

/**
 * The node's power as its BMC measures it (`ipmitool dcmi power reading`), asked in the background
 * every `intervalMs` (10 s by default: a BMC answers in tenths of a second to seconds, and is not
 * asked more often than it refreshes), served as ipmi_exporter's `ipmi_dcmi_power_consumption_watts`
 * and `ipmi_up{collector="dcmi"}`. Its last reading, with when it was read, is what a job's share of
 * the node's energy is made of. Nothing when ipmitool cannot be run (a line an hour says so).
 */
export class IpmiPowerSource implements Source {
  readonly name = "ipmi";
  private watts: number | null = null;
  private up = 0;
  private readonly poller: BackgroundPoll;
  private writer: SeriesWriter | null = null;
  private readonly failed: LimitedWarning;

  constructor(
    private readonly binary: string,
    intervalMs: number,
    private readonly timeoutMs: number,
    log: Logger,
  ) {
    this.failed = new LimitedWarning(log, "ipmitool dcmi power reading failed: no ipmi_dcmi_power_consumption_watts", 3_600_000);
    this.poller = new BackgroundPoll(() => this.pollOnce(), intervalMs);
  }

  /** The node's power now (W), or null. */
  powerWatts(): number | null {
    return this.watts;
  }

  async pollOnce(): Promise<void> {
    try {
      const { stdout } = await run(this.binary, ["dcmi", "power", "reading"], { timeout: this.timeoutMs, maxBuffer: 64 * 1024 });
      this.watts = parseDcmiPowerReading(stdout);
      this.up = this.watts === null ? 0 : 1;
      if (this.watts === null) this.failed.warn({ output: stdout.slice(0, 200) });
    } catch (err) {
      this.watts = null;
      this.up = 0;
      this.failed.warn({ binary: this.binary, err: (err as Error).message.split("\n")[0] });
    }
  }

  collect(target: SampleTarget): void {
    this.poller.ensure();
    this.writer ??= new SeriesWriter(target);
    const w = this.writer;
    w.begin();
    w.gauge("ipmi_up", { collector: "dcmi" }, this.up, "'1' if a scrape of the IPMI device was successful, '0' otherwise.");
    if (this.watts !== null) w.gauge("ipmi_dcmi_power_consumption_watts", {}, this.watts, "Current power consumption in Watts.");
    w.end();
  }

  close(): void {
    this.poller.close();
  }
}
