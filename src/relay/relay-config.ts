import { z } from "zod";
import { parseConfig, type ConfigSource } from "../core/config-file.js";
import { nodeSchemaFields } from "../wire/wire-config.js";

/** A dedicated relay: the trees' forwarding role with no collectors. */
export const relayConfigSchema = z.strictObject({ ...nodeSchemaFields });

export type RelayConfig = z.infer<typeof relayConfigSchema>;

export function parseRelayConfig(raw: unknown, source: ConfigSource = "relay config"): Readonly<RelayConfig> {
  return parseConfig(relayConfigSchema, raw, source);
}
