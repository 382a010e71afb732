import { isDeepStrictEqual } from "node:util";
import type { Registry } from "prom-client";
import { readTopologyFile } from "../../topology/topology-file.js";
import type { Logger } from "../../core/logger.js";
import type { Service } from "../../core/service.js";
import { CentralUplink, type CentralSources } from "./central/central-uplink.js";
import type { CentralConfig } from "./central/central-config.js";
import { RemoteWriteOutput } from "./remote-write/remote-write-output.js";
import type { RemoteWriteConfig } from "./remote-write/remote-write-config.js";
import type { OutputView, RootOutput } from "./root-output.js";

/** The root's config as its outputs read it. */
export interface RootOutputsConfig {
  readonly remoteWrite: readonly RemoteWriteConfig[];
  readonly central?: CentralConfig | undefined;
}

/**
 * The outputs the root's config asks for (each remote_write, the central uplink), fed with those
 * that are always there (the watch hub) through `feed` (the store's). A reload that changes them
 * stops the old ones first (one with a queue on disk at once, leaving it to its successor on the
 * same directory; one in memory drains in the background), then starts the new; one that does not
 * still reads the central topology again (a new chain of central roots).
 */
export class RootOutputs implements Service<RootOutputsConfig> {
  readonly name = "outputs";
  private outputs: RootOutput[] = [];
  private central: CentralUplink | null = null;
  private current: RootOutputsConfig;

  constructor(
    config: RootOutputsConfig,
    private readonly view: OutputView,
    private readonly always: readonly RootOutput[],
    private readonly feed: (outputs: readonly RootOutput[]) => void,
    private readonly centralSources: CentralSources,
    private readonly log: Logger,
    private readonly registry: Registry,
  ) {
    this.current = config;
  }

  start(): void {
    for (const o of this.always) o.start(this.view);
    this.make(this.current);
  }

  reload(config: RootOutputsConfig): void {
    if (this.same(config)) {
      if (config.central !== undefined) this.central?.setTopology(readTopologyFile(config.central.topology));
      return;
    }
    for (const o of this.outputs) void o.stop();
    this.make(config);
  }

  async stop(): Promise<void> {
    this.feed([]);
    await Promise.all(this.outputs.map((o) => o.stop()));
    for (const o of this.always) await o.stop();
  }

  private same(config: RootOutputsConfig): boolean {
    return isDeepStrictEqual(config.remoteWrite, this.current.remoteWrite) && isDeepStrictEqual(config.central, this.current.central);
  }

  private make(config: RootOutputsConfig): void {
    const outs: RootOutput[] = config.remoteWrite.map((w) => new RemoteWriteOutput(w, this.log.child({ part: "remote_write" }), this.registry));
    this.central = config.central !== undefined ? new CentralUplink(config.central, readTopologyFile(config.central.topology), this.centralSources, this.log, this.registry) : null;
    if (this.central !== null) outs.push(this.central);
    for (const o of outs) o.start(this.view);
    this.feed([...outs, ...this.always]);
    this.outputs = outs;
    this.current = config;
  }
}
