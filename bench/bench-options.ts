/** The scenarios of emulated hosts (`hosts: "netns"`): the faults a real network has. */
export const LAB_SCENARIOS = ["blackhole", "partition", "root-isolated", "thin-uplink", "lossy", "latency", "skew"] as const;
export type LabScenario = (typeof LAB_SCENARIOS)[number];

/** What `banyan bench` runs: every knob with its default. */
export interface BenchOptions {
  /** Simulated compute nodes. */
  readonly nodes: number;
  readonly trees: number;
  readonly roots: number;
  /** Series per node. */
  readonly series: number;
  readonly intervalMs: number;
  /** Share of series that move per tick. */
  readonly changeRate: number;
  /** Relative precision of gauges. */
  readonly precision: number;
  /** Measurement window of the steady scenario. */
  readonly durationS: number;
  /** Processes hosting the real relays. */
  readonly relayProcesses: number;
  /** Most real relays (the top levels of each tree); the levels below them are simulated. */
  readonly maxRealRelays: number;
  /**
   * steady only; then the failover of killed relays; a root SIGKILLed and restarted (storm: the
   * same, with the keyframe storm's figures); all of them. On emulated hosts (`hosts: "netns"`)
   * also the network's faults: a relay's host silent (blackhole), a rack cut off (partition), a
   * root's host cut off (root-isolated), a root's link capped through the start (thin-uplink),
   * packet loss on every link (lossy), every link longer (latency), two nodes' clocks ±30 s (skew).
   */
  readonly scenario: "steady" | "failover" | "root-restart" | "storm" | "all" | LabScenario;
  /** Where the cluster's processes run: all on this machine's loopback, or each root, real relay and real agent on an emulated host of its own (network namespaces; root only). */
  readonly hosts: "local" | "netns";
  /** With `hosts: "netns"`, mutual TLS on the tree (certificates from `banyan certs`); false: plain. */
  readonly treeTls: boolean;
  /** How long a fault lasts in the network scenarios, seconds (lossy: at each level). */
  readonly faultS: number;
  /** The lossy scenario's levels of packet loss, % each way. */
  readonly lossPercents: readonly number[];
  /** The thin-uplink scenario's cap on the first root's link, Mbit/s each way. */
  readonly uplinkMbit: number;
  /** The latency scenario's delay on arrival at every host, ms. */
  readonly delayMs: number;
  /** Relays killed in the failover scenario. */
  readonly killRelays: number;
  readonly baselinePrometheus: boolean;
  /** The roots write to a real receiver of this kind: its cost against a Prometheus scraping every node directly, bytes, catch-up after an outage. */
  readonly remoteWrite: "prometheus" | "victoriametrics" | null;
  /** The receiver's outage in the remote_write measurement. */
  readonly remoteWriteOutageS: number;
  /** The roots' remoteWrite refreshMs in that measurement. */
  readonly remoteWriteRefreshMs: number;
  readonly seed: number;
  /** First port of the local topology; kept below the kernel's ephemeral range (32768+), where outgoing connections would take ports a relay needs. */
  readonly basePort: number;
  readonly json: string | null;
  readonly plot: string | null;
  /** Show a progress bar (only when stdout is a terminal). */
  readonly progress: boolean;
}

export const BENCH_DEFAULTS: BenchOptions = Object.freeze({
  nodes: 1000,
  trees: 8,
  roots: 2,
  series: 500,
  intervalMs: 1000,
  changeRate: 0.023,
  precision: 0.01,
  durationS: 20,
  relayProcesses: 2,
  maxRealRelays: 256,
  scenario: "steady",
  killRelays: 4,
  hosts: "local",
  treeTls: true,
  faultS: 60,
  lossPercents: [1, 5],
  uplinkMbit: 20,
  delayMs: 50,
  baselinePrometheus: false,
  remoteWrite: null,
  remoteWriteOutageS: 60,
  remoteWriteRefreshMs: 15_000,
  seed: 1,
  basePort: 20000,
  json: null,
  plot: null,
  progress: true,
});
