import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll } from "vitest";
import type { Enforcer, ShadowOutcome } from "../../src/enforcer/index.ts";
import type { AdapterName } from "./enforcer-apps.ts";
import { startAdapterApp } from "./enforcer-apps.ts";
import { buildBundles } from "./enforcer-fixtures.ts";
import { type RunningOpa, startOpaServer } from "./opa-server.ts";
import { repoRoot } from "./tools.ts";

export const SHADOW_ENTRYPOINT = "shadow/decision";
export const REVISION_A = "shadow-a";
export const REVISION_B = "shadow-b";
/** B closes /admin and everything under it; every other path decides as in A. */
export const PATHS = ["/public", "/orders/7", "/admin", "/admin/users", "/secret"];
export const CLOSED_BY_B = ["/admin", "/admin/users"];

export interface ShadowPolicies {
  a: { rego: string; wasm: string; opa: RunningOpa };
  b: { rego: string; wasm: string; opa: RunningOpa };
}

/** Revisions A and B built by opa (rego and wasm), each served by its own real OPA, for a whole test file. */
export function useShadowPolicies(): () => ShadowPolicies {
  let policies: ShadowPolicies | undefined;
  beforeAll(async () => {
    const [a, b] = await Promise.all([
      buildBundles(path.join(repoRoot, "test/fixtures/shadow/a"), REVISION_A, SHADOW_ENTRYPOINT),
      buildBundles(path.join(repoRoot, "test/fixtures/shadow/b"), REVISION_B, SHADOW_ENTRYPOINT),
    ]);
    const [opaA, opaB] = await Promise.all([
      startOpaServer(["--bundle", a.rego]),
      startOpaServer(["--bundle", b.rego]),
    ]);
    policies = { a: { ...a, opa: opaA }, b: { ...b, opa: opaB } };
  });
  afterAll(async () => {
    await Promise.all([policies?.a.opa.stop(), policies?.b.opa.stop()]);
  });
  return () => {
    if (!policies) throw new Error("useShadowPolicies: its beforeAll has not run");
    return policies;
  };
}

/** What A answers for each of PATHS, as the app's responses must show whatever the candidate says. */
export const STATUS_UNDER_A: Record<string, number> = {
  "/public": 200,
  "/orders/7": 200,
  "/admin": 200,
  "/admin/users": 200,
  "/secret": 403,
};

export interface LoggedShadowLine {
  decision_id: string;
  input: { request: { http: { path: string } } };
  bundles?: Record<string, { revision: string }>;
  custom: { policyship: { outcome: string; shadow?: ShadowOutcome } };
}

export async function readLogLines(file: string): Promise<LoggedShadowLine[]> {
  return (await readFile(file, "utf8"))
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as LoggedShadowLine);
}

/** Asks the app (behind one adapter) for each path in turn; returns each status and the revision it saw. */
export async function requestEach(adapter: AdapterName, enforcer: Enforcer, paths: readonly string[]) {
  const app = await startAdapterApp(adapter, enforcer);
  const answers: { path: string; status: number; revision?: string; ms: number }[] = [];
  try {
    for (const requested of paths) {
      const started = performance.now();
      const response = await fetch(`${app.url}${requested}`);
      const text = await response.text();
      const ms = performance.now() - started;
      const revision =
        response.status === 200
          ? (JSON.parse(text) as { authz?: { revision?: string } }).authz?.revision
          : undefined;
      answers.push({ path: requested, status: response.status, revision, ms });
    }
  } finally {
    await app.close();
  }
  return answers;
}
