import { execFile } from "node:child_process";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
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
 * The power of a Redfish answer: a Power resource's `PowerControl[0].PowerConsumedWatts`
 * (`/redfish/v1/Chassis/<id>/Power`), an EnvironmentMetrics' `PowerWatts.Reading`, or a Sensor's
 * `Reading` (`…/Sensors/<power sensor>`); null when it has none.
 */
export function parseRedfishPower(body: unknown): number | null {
  const o = body as { PowerControl?: { PowerConsumedWatts?: unknown }[]; PowerWatts?: { Reading?: unknown }; Reading?: unknown; ReadingUnits?: unknown } | null;
  const candidates = [o?.PowerControl?.[0]?.PowerConsumedWatts, o?.PowerWatts?.Reading, o?.ReadingUnits === undefined || o?.ReadingUnits === "W" ? o?.Reading : undefined];
  for (const c of candidates) if (typeof c === "number" && Number.isFinite(c) && c >= 0) return c;
  return null;
}

/** Where a BMC is asked over Redfish instead of ipmitool. */
export interface RedfishTarget {
  readonly url: string;
  /** `user:password` (its file's first line), for Basic auth; none: no auth. */
  readonly credentials: string | null;
  /** A BMC's self-signed certificate: a CA file to check it against, or no check at all. */
  readonly ca: Buffer | null;
  readonly insecureSkipVerify: boolean;
}

/**
 * The node's power as its BMC measures it (`ipmitool dcmi power reading`, or Redfish), asked in the background
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
    private readonly redfish: RedfishTarget | null = null,
  ) {
    this.failed = new LimitedWarning(log, `${redfish !== null ? "Redfish" : "ipmitool dcmi power reading"} failed: no ipmi_dcmi_power_consumption_watts`, 3_600_000);
    this.poller = new BackgroundPoll(() => this.pollOnce(), intervalMs);
  }

  /** The node's power now (W), or null. */
  powerWatts(): number | null {
    return this.watts;
  }

  async pollOnce(): Promise<void> {
    if (this.redfish !== null) return this.pollRedfish(this.redfish);
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

  private async pollRedfish(t: RedfishTarget): Promise<void> {
    try {
      const body = await getJson(t, this.timeoutMs);
      this.watts = parseRedfishPower(body);
      this.up = this.watts === null ? 0 : 1;
      if (this.watts === null) this.failed.warn({ url: t.url, why: "no PowerConsumedWatts, PowerWatts.Reading or Reading in the answer" });
    } catch (err) {
      this.watts = null;
      this.up = 0;
      this.failed.warn({ url: t.url, err: (err as Error).message });
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

/** GETs a Redfish resource as JSON (at most 1 MiB), with the target's credentials and certificate check. */
function getJson(t: RedfishTarget, timeoutMs: number): Promise<unknown> {
  const url = new URL(t.url);
  const get = url.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = get(
      url,
      {
        method: "GET",
        timeout: timeoutMs,
        // A connection a poll (every 10 s or more): no pooled socket kept between them.
        agent: false,
        headers: { accept: "application/json", ...(t.credentials !== null ? { authorization: `Basic ${Buffer.from(t.credentials).toString("base64")}` } : {}) },
        ...(url.protocol === "https:" ? { ...(t.ca !== null ? { ca: t.ca } : {}), rejectUnauthorized: !t.insecureSkipVerify } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        res.on("data", (c: Buffer) => {
          bytes += c.length;
          if (bytes > 1024 * 1024) req.destroy(new Error("an answer past 1 MiB"));
          else chunks.push(c);
        });
        res.on("end", () => {
          if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode}`));
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown);
          } catch {
            reject(new Error("not JSON"));
          }
        });
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end();
  });
}
