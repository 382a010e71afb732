import { DEFAULT_SERIES_LIMITS, type SeriesLimits } from "../series/payload.js";

/**
 * Every limit of the wire, enforced where bytes arrive. A peer past one gets its frame (or stream)
 * refused with a logged reason and a counted drop; the process never falls over.
 */
export interface WireLimits extends SeriesLimits {
  /** Largest gRPC message accepted (Up or Down), bytes. */
  readonly maxMessageBytes: number;
  /** Most frames (and alive records) in one Batch. */
  readonly maxFramesPerBatch: number;
  /** Largest payload after lz4, bytes: no lz4 bomb gets past this. */
  readonly maxDecompressedBytes: number;
  /** Longest node (origin) name. */
  readonly maxNameLength: number;
}

export const DEFAULT_WIRE_LIMITS: WireLimits = Object.freeze({
  ...DEFAULT_SERIES_LIMITS,
  maxMessageBytes: 16 * 1024 * 1024,
  maxFramesPerBatch: 4096,
  maxDecompressedBytes: 8 * 1024 * 1024,
  maxNameLength: 255,
});
