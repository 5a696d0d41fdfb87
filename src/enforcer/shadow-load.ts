import type { Engine } from "./engine.ts";
import type { Shadow, ShadowSetup } from "./shadow.ts";
import type { EnforcerOptions, ShadowStats } from "./types.ts";

export const NO_SHADOW_STATS: Readonly<ShadowStats> = Object.freeze({
  evaluated: 0,
  differed: 0,
  dropped: 0,
  errors: 0,
});

/**
 * The shadow module and its candidate's engine load only for an app that asked for a shadow. The engine is
 * made by the enforcer's own factory, so a candidate is exactly what the same options would enforce.
 */
export async function loadShadow(
  setup: Omit<ShadowSetup, "engine" | "options">,
  options: NonNullable<EnforcerOptions["shadow"]>,
  createEngine: (options: EnforcerOptions) => Promise<Engine>,
): Promise<Shadow> {
  const { Shadow } = await import("./shadow.ts");
  const engine = createEngine({ ...options, maxInFlight: options.concurrency });
  // Surfaced as counted errors by the shadow; this only keeps an early rejection from being unhandled.
  engine.catch(() => {});
  return new Shadow({ ...setup, options, engine });
}
