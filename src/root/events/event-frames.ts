import { Packr, Unpackr } from "msgpackr";
import { z } from "zod";
import { EVENT_TYPES, type RootEvent } from "./event-log.js";

// Plain msgpack, as frame payloads: no records, so a peer's bytes cannot define types for us.
const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: "number" });

/** Events in one EVENTS frame, at most. */
export const MAX_EVENTS_PER_FRAME = 1000;

const text = z.string().max(1024);
const eventSchema = z.strictObject({
  id: z.string().regex(/^[0-9a-f]{1,64}$/),
  type: z.enum(EVENT_TYPES),
  time: z.string().max(64),
  severity: z.enum(["info", "warning", "critical"]),
  root: text,
  node: text.optional(),
  job: text.optional(),
  labels: z.record(z.string().max(128), text).refine((l) => Object.keys(l).length <= 64, "at most 64 labels"),
  details: z.record(z.string().max(128), z.unknown()).refine((d) => Object.keys(d).length <= 64, "at most 64 details").optional(),
});
const framePayload = z.array(eventSchema).max(MAX_EVENTS_PER_FRAME);

/** A cluster root's events as the payload of an EVENTS frame. */
export function encodeEvents(events: readonly RootEvent[]): Uint8Array {
  return packr.pack(events);
}

/** The events of an EVENTS frame from a peer, checked whole (a string says what is wrong). */
export function decodeEvents(bytes: Uint8Array): RootEvent[] | string {
  let raw: unknown;
  try {
    raw = unpackr.unpack(bytes);
  } catch (err) {
    return `not msgpack: ${(err as Error).message}`;
  }
  const r = framePayload.safeParse(raw);
  if (!r.success) return r.error.issues.slice(0, 3).map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
  return r.data as RootEvent[];
}
