import type { Logger } from "./logger.js";

/**
 * A part of a daemon with a life of its own: a server, a timer, an output. A daemon is the ordered
 * list of its services (ServiceList): started in order, told of each reloaded config in the same
 * order, stopped in the reverse order.
 */
export interface Service<C> {
  /** What it is, for messages ("tree port", "remote_write"). */
  readonly name: string;
  start?(): void | Promise<void>;
  /**
   * Follows a reloaded config: what can change in place does. It throws to refuse the config, then
   * the services after it keep theirs (read what can fail, files, before changing anything).
   */
  reload?(config: C): void;
  stop?(): void | Promise<void>;
}

/** A daemon's services, in the order they start (each may use what the ones before it started). */
export class ServiceList<C> {
  private readonly services: Service<C>[] = [];
  private started = 0;

  constructor(private readonly log: Logger) {}

  /** Adds services after those added so far. */
  add(...services: Service<C>[]): void {
    this.services.push(...services);
  }

  /** Starts every service in order; when one fails, stops those already started and throws its error. */
  async start(): Promise<void> {
    while (this.started < this.services.length) {
      const s = this.services[this.started]!;
      try {
        await s.start?.();
      } catch (err) {
        await this.stop();
        throw err;
      }
      this.started++;
    }
  }

  /** Tells the started services of a reloaded config, in order (the first that throws ends it: see Service.reload). */
  reload(config: C): void {
    for (let k = 0; k < this.started; k++) this.services[k]!.reload?.(config);
  }

  /** Stops the started services in the reverse order; one that fails to stop is logged and the rest still stop. */
  async stop(): Promise<void> {
    while (this.started > 0) {
      const s = this.services[--this.started]!;
      try {
        await s.stop?.();
      } catch (err) {
        this.log.warn({ err: (err as Error).message, service: s.name }, `${s.name} did not stop cleanly: ${(err as Error).message}`);
      }
    }
  }
}

/** `part`, a service of its own slice of config, in the list of a daemon whose reloads carry more: `pick` takes its slice. */
export function serviceOf<C, P>(part: Service<P>, pick: (config: C) => P): Service<C> {
  return { name: part.name, start: () => part.start?.(), reload: (config) => part.reload?.(pick(config)), stop: () => part.stop?.() };
}
