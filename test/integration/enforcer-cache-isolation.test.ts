import http from "node:http";
import express from "express";
import Fastify from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Authz,
  createEnforcer,
  decisionOf,
  type Enforcer,
  type EnforcerOptions,
  expressAuthorize,
  fastifyAuthorize,
  withAuthorization,
} from "../../src/enforcer/index.ts";
import { ADAPTERS, type AdapterName, ENGINES, type EngineName } from "../helpers/enforcer-apps.ts";
import { buildBundles, CONFORMANCE_DIR, CONFORMANCE_ENTRYPOINT } from "../helpers/enforcer-fixtures.ts";
import { type FaultProxy, startFaultProxy } from "../helpers/fault-proxy.ts";
import { type RunningOpa, startOpaServer } from "../helpers/opa-server.ts";
import { listen } from "../helpers/serve.ts";

let opa: RunningOpa;
let proxy: FaultProxy;
let wasm: string;

beforeAll(async () => {
  const bundles = await buildBundles(CONFORMANCE_DIR, "isolation-1", CONFORMANCE_ENTRYPOINT);
  wasm = bundles.wasm;
  opa = await startOpaServer(["--bundle", bundles.rego]);
  proxy = await startFaultProxy(opa.url);
});
afterAll(async () => {
  await proxy?.close();
  await opa?.stop();
});

/** Every request shares one cache entry, so a hit serves what the first request's decision became. */
const byPath = (input: unknown) => (input as { request: { http: { path: string } } }).request.http.path;

function enforcerFor(engine: EngineName, extra: Partial<EnforcerOptions> = {}) {
  return createEnforcer({
    ...(engine === "remote"
      ? { opa: { url: proxy.url, path: CONFORMANCE_ENTRYPOINT } }
      : { bundle: wasm, entrypoint: CONFORMANCE_ENTRYPOINT }),
    timeoutMs: 10_000,
    log: () => {},
    cache: { max: 100, ttlMs: 60_000, key: byPath },
    ...extra,
  } as EnforcerOptions);
}

interface Seen {
  user: unknown;
  authzHeaders: Record<string, string>;
  cached: boolean;
}

/**
 * A handler that answers with what it was handed, then does what a careless handler might: writes to the
 * decision's headers (a tenant it looked up, say). None of that may reach another request.
 */
function tamper(authz: Authz | null | undefined, headers: http.IncomingHttpHeaders): Seen {
  const seen = {
    user: headers["x-user"],
    authzHeaders: { ...authz?.headers },
    cached: authz?.cached === true,
  };
  try {
    if (authz) {
      authz.headers["x-user"] = "mallory";
      authz.headers["x-role"] = "admin";
    }
  } catch {
    // A frozen object is as good as a copy: the write simply does not happen.
  }
  return seen;
}

async function appFor(adapter: AdapterName, enforcer: Enforcer) {
  if (adapter === "node:http") {
    return listen(
      http.createServer(
        withAuthorization(enforcer, (req, res) => {
          res.end(JSON.stringify(tamper(decisionOf(req), req.headers)));
        }),
      ),
    );
  }
  if (adapter === "express") {
    const app = express();
    app.use(expressAuthorize(enforcer));
    app.use((req, res) => {
      res.json(tamper(req.authz, req.headers));
    });
    return listen(http.createServer(app));
  }
  const app = Fastify();
  await app.register(fastifyAuthorize, { enforcer });
  app.all("/*", async (request) => tamper(request.authz, request.headers));
  const url = await app.listen({ port: 0, host: "127.0.0.1" });
  return { url, close: () => app.close() };
}

describe("a cached decision is the app's to read, never to change", () => {
  for (const engine of ENGINES) {
    for (const adapter of ADAPTERS) {
      it(`${adapter}, ${engine}: a handler that writes to its decision's headers changes no later request`, async () => {
        const enforcer = enforcerFor(engine);
        await enforcer.ready();
        const app = await appFor(adapter, enforcer);
        try {
          const answers: Seen[] = [];
          for (const key of ["alice-key", "bob-key", "alice-key"]) {
            const response = await fetch(`${app.url}/object-allow`, { headers: { "x-api-key": key } });
            expect(response.status).toBe(200);
            answers.push((await response.json()) as Seen);
          }
          // The key is the path only, so every request after the first is a hit on alice's decision.
          expect(answers.map((answer) => answer.cached)).toEqual([false, true, true]);
          for (const answer of answers) {
            expect(answer.user).toBe("alice");
            expect(answer.authzHeaders).toEqual({ "x-user": "alice" });
          }
        } finally {
          await app.close();
          await enforcer.close();
        }
      });
    }

    it(`${engine}: decide()'s answer and the onDecision event cannot change the cached entry`, async () => {
      const enforcer = enforcerFor(engine, {
        onDecision: (event) => {
          try {
            event.decision.headers["x-from-hook"] = "1";
          } catch {
            // frozen: the write does not happen
          }
        },
      });
      const input = {
        request: { http: { method: "GET", path: "/object-allow", headers: { "x-api-key": "alice-key" } } },
      };
      try {
        for (let i = 0; i < 3; i++) {
          const decision = await enforcer.decide(input);
          // onDecision's event holds a frozen copy: its write reaches neither this decision nor the cache.
          expect(decision.headers).toEqual({ "x-user": "alice" });
          expect(decision.authz?.headers).toEqual({ "x-user": "alice" });
          try {
            decision.headers["x-user"] = "mallory";
            (decision.result as { headers: Record<string, string> }).headers["x-user"] = "mallory";
          } catch {
            // frozen: the write does not happen
          }
        }
        const last = await enforcer.decide(input);
        expect(last.cached).toBe(true);
        expect((last.result as { headers: Record<string, string> }).headers).toEqual({ "x-user": "alice" });
      } finally {
        await enforcer.close();
      }
    });
  }
});

describe("an error answer leaves the cache as it is", () => {
  const request = (k: string) => ({
    request: { http: { method: "GET", path: "/bool-allow", headers: {} } },
    k,
  });

  for (const fault of [
    { kind: "status", status: 500 },
    { kind: "garbage" },
    { kind: "reset" },
    { kind: "delay", ms: 600 },
  ] as const) {
    it(`an OPA ${fault.kind === "status" ? "500" : fault.kind} on one key keeps the entries of the others`, async () => {
      const enforcer = enforcerFor("remote", {
        timeoutMs: 300,
        cache: { max: 100, ttlMs: 60_000, key: (input) => (input as { k: string }).k },
      });
      try {
        expect(await enforcer.decide(request("a"))).toMatchObject({ allow: true, cached: false });
        expect(await enforcer.decide(request("a"))).toMatchObject({ allow: true, cached: true });
        proxy.fault = fault;
        expect(await enforcer.decide(request("b"))).toMatchObject({ allow: false, status: 500 });
        proxy.fault = { kind: "pass" };
        // Still the policy's answer of a moment ago: nothing says the revision changed.
        expect(await enforcer.decide(request("a"))).toMatchObject({
          allow: true,
          cached: true,
          revision: "isolation-1",
        });
      } finally {
        proxy.fault = { kind: "pass" };
        await enforcer.close();
      }
    });
  }
});
