import http from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import Fastify from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createEnforcer,
  type Enforcer,
  expressAuthorize,
  fastifyAuthorize,
  withAuthorization,
} from "../../src/enforcer/index.ts";
import {
  buildBundles,
  CONFORMANCE_CASES,
  CONFORMANCE_DIR,
  CONFORMANCE_ENTRYPOINT,
  inputFor,
} from "../helpers/enforcer-fixtures.ts";
import { type RunningOpa, startOpaServer } from "../helpers/opa-server.ts";

let opa: RunningOpa;
let engines: Record<"remote" | "embedded", Enforcer>;

beforeAll(async () => {
  const bundles = await buildBundles(CONFORMANCE_DIR, "conformance-1", CONFORMANCE_ENTRYPOINT);
  opa = await startOpaServer(["--bundle", bundles.rego]);
  const quiet = () => {};
  engines = {
    remote: createEnforcer({
      opa: { url: opa.url, path: CONFORMANCE_ENTRYPOINT },
      timeoutMs: 2000,
      log: quiet,
    }),
    embedded: createEnforcer({ bundle: bundles.wasm, entrypoint: CONFORMANCE_ENTRYPOINT, log: quiet }),
  };
  await Promise.all(Object.values(engines).map((engine) => engine.ready()));
});

afterAll(async () => {
  await Promise.all(Object.values(engines ?? {}).map((engine) => engine.close()));
  await opa?.stop();
});

describe("both engines make the same decision", () => {
  for (const testCase of CONFORMANCE_CASES) {
    it(testCase.name, async () => {
      const input = inputFor(testCase);
      const [remote, embedded] = await Promise.all([
        engines.remote.decide(input),
        engines.embedded.decide(input),
      ]);
      const { allow, status, headers, message } = testCase.expect;
      const expected = {
        allow,
        status,
        ...(headers ? { headers } : {}),
        ...(message !== undefined ? { message } : {}),
      };
      expect(remote).toMatchObject(expected);
      expect(embedded).toMatchObject(expected);
      const comparable = (d: typeof remote) => ({
        allow: d.allow,
        status: d.status,
        headers: d.headers,
        message: d.message,
      });
      expect(comparable(embedded)).toEqual(comparable(remote));
      expect(Boolean(remote.error)).toBe(status === 500);
      expect(Boolean(embedded.error)).toBe(status === 500);
    });
  }
});

interface App {
  url: string;
  handled: () => number;
  close: () => Promise<void>;
}

type HandlerBody = { handled: true; headers: Record<string, unknown> };

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const adapters: Record<string, (enforcer: Enforcer) => Promise<App>> = {
  "node:http": async (enforcer) => {
    let handled = 0;
    const server = http.createServer(
      withAuthorization(enforcer, (req, res) => {
        handled++;
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify({ handled: true, headers: req.headers } satisfies HandlerBody));
      }),
    );
    const url = await listen(server);
    return { url, handled: () => handled, close: () => new Promise((r) => server.close(() => r())) };
  },
  express: async (enforcer) => {
    let handled = 0;
    const app = express();
    app.use(expressAuthorize(enforcer));
    app.use((req, res) => {
      handled++;
      res.json({ handled: true, headers: req.headers } satisfies HandlerBody);
    });
    const server = http.createServer(app);
    const url = await listen(server);
    return { url, handled: () => handled, close: () => new Promise((r) => server.close(() => r())) };
  },
  fastify: async (enforcer) => {
    let handled = 0;
    const app = Fastify();
    await app.register(fastifyAuthorize, { enforcer });
    app.all("/*", async (request) => {
      handled++;
      return { handled: true, headers: request.headers } satisfies HandlerBody;
    });
    const url = await app.listen({ port: 0, host: "127.0.0.1" });
    return { url, handled: () => handled, close: () => app.close() };
  },
};

for (const [adapterName, start] of Object.entries(adapters)) {
  for (const engineName of ["remote", "embedded"] as const) {
    describe(`${adapterName} adapter, ${engineName} engine, over real HTTP`, () => {
      let app: App;
      beforeAll(async () => {
        app = await start(engines[engineName]);
      });
      afterAll(() => app?.close());

      for (const testCase of CONFORMANCE_CASES) {
        it(testCase.name, async () => {
          const before = app.handled();
          const response = await fetch(`${app.url}${testCase.path}`, {
            method: testCase.method ?? "GET",
            headers: testCase.headers,
          });
          const body = (await response.json()) as HandlerBody | { message: unknown };
          const { allow, status, headers, message } = testCase.expect;
          expect(response.status).toBe(status);
          if (allow) {
            expect(app.handled()).toBe(before + 1);
            const seen = (body as HandlerBody).headers;
            for (const [name, value] of Object.entries(headers ?? {})) {
              // /echo's x-scheme etc. come from the real request; only check headers the policy fixed.
              if (name === "x-client-ip-set" || name === "x-method" || name === "x-scheme") {
                expect(seen[name]).toBeDefined();
              } else {
                expect(seen[name]).toBe(value);
              }
            }
          } else {
            expect(app.handled()).toBe(before);
            expect(body).toEqual({ message });
            for (const [name, value] of Object.entries(headers ?? {}))
              expect(response.headers.get(name)).toBe(value);
            expect(response.headers.get("set-cookie")).toBeNull();
          }
        });
      }

      it("the policy's header replaces one the client sent", async () => {
        const response = await fetch(`${app.url}/object-allow`, {
          headers: { "x-api-key": "bob-key", "x-user": "mallory" },
        });
        expect(response.status).toBe(200);
        expect(((await response.json()) as HandlerBody).headers["x-user"]).toBe("bob");
      });

      it("the querystring reaches the policy as Kong shapes it", async () => {
        const response = await fetch(`${app.url}/echo?a=1&a=2&flag&b=x%20y`, { method: "POST" });
        expect(response.status).toBe(200);
        const seen = ((await response.json()) as HandlerBody).headers;
        expect([seen["x-query-a"], seen["x-query-b"], seen["x-query-flag"]]).toEqual(["1,2", "x y", "true"]);
        expect(seen["x-method"]).toBe("POST");
        expect(seen["x-scheme"]).toBe("http");
      });
    });
  }
}
