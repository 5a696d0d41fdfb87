import http from "node:http";
import express from "express";
import Fastify from "fastify";
import { afterAll, beforeAll } from "vitest";
// The Fastify entry: the same plugin, and request.authz on Fastify's request type.
import { fastifyAuthorize } from "../../src/enforcer/adapters/fastify-entry.ts";
import type { Authz, EnforcerOptions } from "../../src/enforcer/index.ts";
import { decisionOf, type Enforcer, expressAuthorize, withAuthorization } from "../../src/enforcer/index.ts";
import { buildBundles, CONFORMANCE_DIR, CONFORMANCE_ENTRYPOINT } from "./enforcer-fixtures.ts";
import { startOpaServer } from "./opa-server.ts";
import { listen } from "./serve.ts";

export const ADAPTERS = ["node:http", "express", "fastify"] as const;
export type AdapterName = (typeof ADAPTERS)[number];

/** What every handler answers: the decision it was handed and the request headers it saw. */
export interface Handled {
  handled: true;
  authz: Authz | null | undefined;
  headers: Record<string, unknown>;
}

export interface AdapterApp {
  url: string;
  handled: () => number;
  close: () => Promise<void>;
}

/** The same app behind each adapter: a catch-all handler that answers with what it was handed. */
export async function startAdapterApp(adapter: AdapterName, enforcer: Enforcer): Promise<AdapterApp> {
  let handled = 0;
  const answer = (authz: Authz | null | undefined, headers: Record<string, unknown>): Handled => {
    handled++;
    return { handled: true, authz, headers };
  };
  if (adapter === "node:http") {
    const app = await listen(
      http.createServer(
        withAuthorization(enforcer, (req, res) => {
          res.setHeader("content-type", "application/json");
          res.end(JSON.stringify(answer(decisionOf(req), req.headers)));
        }),
      ),
    );
    return { ...app, handled: () => handled };
  }
  if (adapter === "express") {
    const app = express();
    app.use(expressAuthorize(enforcer));
    app.use((req, res) => {
      res.json(answer(req.authz, req.headers));
    });
    return { ...(await listen(http.createServer(app))), handled: () => handled };
  }
  const app = Fastify();
  await app.register(fastifyAuthorize, { enforcer });
  // request.authz is typed by the plugin's module augmentation: no cast.
  app.all("/*", async (request) => answer(request.authz, request.headers));
  const url = await app.listen({ port: 0, host: "127.0.0.1" });
  return { url, handled: () => handled, close: () => app.close() };
}

export const ENGINES = ["remote", "embedded"] as const;
export type EngineName = (typeof ENGINES)[number];

/** The conformance policy served by a real OPA (remote) and built for wasm (embedded), as enforcer options. */
export async function conformanceEngines(revision: string) {
  const bundles = await buildBundles(CONFORMANCE_DIR, revision, CONFORMANCE_ENTRYPOINT);
  const opa = await startOpaServer(["--bundle", bundles.rego]);
  return {
    opa,
    wasm: bundles.wasm,
    options: (engine: EngineName, extra: Partial<EnforcerOptions> = {}) =>
      ({
        ...(engine === "remote"
          ? { opa: { url: opa.url, path: CONFORMANCE_ENTRYPOINT } }
          : { bundle: bundles.wasm, entrypoint: CONFORMANCE_ENTRYPOINT }),
        // An embedded first decision waits for the workers to start; on a busy two-core runner that can pass
        // the default 500 ms. Tests about time set timeoutMs themselves.
        timeoutMs: 10_000,
        log: () => {},
        ...extra,
      }) as EnforcerOptions,
  };
}

/**
 * conformanceEngines for a whole test file: built and started before its tests, stopped after them.
 * Returns the options of an enforcer on either engine.
 */
export function useConformanceEngines(revision: string) {
  let engines: Awaited<ReturnType<typeof conformanceEngines>> | undefined;
  beforeAll(async () => {
    engines = await conformanceEngines(revision);
  });
  afterAll(() => engines?.opa.stop());
  return (engine: EngineName, extra: Partial<EnforcerOptions> = {}): EnforcerOptions => {
    if (!engines) throw new Error("useConformanceEngines: its beforeAll has not run");
    return engines.options(engine, extra);
  };
}
