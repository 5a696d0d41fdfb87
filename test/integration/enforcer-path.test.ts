import http from "node:http";
import path from "node:path";
import express from "express";
import express4 from "express4";
import Fastify from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createEnforcer,
  type Enforcer,
  expressAuthorize,
  fastifyAuthorize,
  withAuthorization,
} from "../../src/enforcer/index.ts";
import { buildBundles } from "../helpers/enforcer-fixtures.ts";
import { type RunningOpa, startOpaServer } from "../helpers/opa-server.ts";
import { sendRaw } from "../helpers/raw-http.ts";
import { listen } from "../helpers/serve.ts";
import { repoRoot } from "../helpers/tools.ts";

/** Each app has a route for /admin and a catch-all, and answers with the name of the route that ran. */
interface App {
  url: string;
  close: () => Promise<void>;
}

/** What a router with a route for /admin runs for the path the policy saw. */
function routeFor(policyPath: string): string {
  return policyPath === "/admin" ? "admin" : "catch-all";
}

/** Express 4 or 5 with the enforcer on app.use, a route for /admin and a catch-all. */
function expressApp(framework: typeof express, enforcer: Enforcer): Promise<App> {
  const app = framework();
  app.use(expressAuthorize(enforcer));
  app.get("/admin", (_req, res) => {
    res.send("admin");
  });
  app.use((_req, res) => {
    res.send("catch-all");
  });
  return listen(http.createServer(app));
}

const apps: Record<string, (enforcer: Enforcer) => Promise<App>> = {
  "node:http": (enforcer) =>
    listen(
      http.createServer(
        withAuthorization(enforcer, (req, res) => {
          // A hand-written router on req.url, as node:http apps do.
          res.end((req.url ?? "").split("?")[0] === "/admin" ? "admin" : "catch-all");
        }),
      ),
    ),
  "express 5": (enforcer) => expressApp(express, enforcer),
  "express 4": (enforcer) => expressApp(express4 as unknown as typeof express, enforcer),
  "fastify 5": async (enforcer) => {
    const app = Fastify();
    await app.register(fastifyAuthorize, { enforcer });
    app.get("/admin", async () => "admin");
    app.all("/*", async () => "catch-all");
    app.setNotFoundHandler(async (_request, reply) => reply.code(404).send("no route"));
    const url = await app.listen({ port: 0, host: "127.0.0.1" });
    return { url, close: () => app.close() };
  },
};

/** Every request-target form; none of them may reach the /admin route unless the policy saw /admin. */
const REQUEST_LINES = [
  "GET /admin HTTP/1.1",
  "GET /admin?x=1 HTTP/1.1",
  "GET http://any-host/admin HTTP/1.1",
  "GET http://any-host/admin?x=1 HTTP/1.1",
  "GET https://any-host:8443/admin HTTP/1.1",
  "OPTIONS * HTTP/1.1",
  "GET * HTTP/1.1",
  "GET admin HTTP/1.1",
  "GET /%61dmin HTTP/1.1",
  "GET /%61%64%6d%69%6e HTTP/1.1",
  "GET /ADMIN HTTP/1.1",
  "GET /Admin HTTP/1.1",
  "GET /admin/ HTTP/1.1",
  "GET //admin HTTP/1.1",
  "GET /public//admin HTTP/1.1",
  "GET /public/../admin HTTP/1.1",
  "GET /public/%2e%2e/admin HTTP/1.1",
  "GET /public/%2E%2e/admin HTTP/1.1",
  "GET /./admin HTTP/1.1",
  "GET /admin#top HTTP/1.1",
  "GET /public\\..\\admin HTTP/1.1",
  "GET /admin%2f HTTP/1.1",
  "GET /admin%00 HTTP/1.1",
  "GET /orders HTTP/1.1",
];

let opa: RunningOpa;
let wasmBundle: string;

beforeAll(async () => {
  const dir = path.join(repoRoot, "test/fixtures/paths");
  const built = await buildBundles(dir, "paths-1", "paths/decision");
  wasmBundle = built.wasm;
  opa = await startOpaServer(["--bundle", built.rego]);
});
afterAll(() => opa?.stop());

for (const engineKind of ["remote", "embedded"] as const) {
  for (const [appName, start] of Object.entries(apps)) {
    describe(`${appName}, ${engineKind} engine: the policy sees the path the router runs`, () => {
      const seen: string[] = [];
      let enforcer: Enforcer;
      let app: App;
      beforeAll(async () => {
        enforcer = createEnforcer({
          ...(engineKind === "remote"
            ? { opa: { url: opa.url, path: "paths/decision" } }
            : { bundle: wasmBundle, entrypoint: "paths/decision" }),
          log: () => {},
          onDecision: (event) => {
            const input = event.input as { request: { http: { path?: string } } };
            seen.push(input.request.http.path ?? "(no input)");
          },
        });
        await enforcer.ready();
        app = await start(enforcer);
      });
      afterAll(async () => {
        await app?.close();
        await enforcer?.close();
      });

      for (const line of REQUEST_LINES) {
        it(line, async () => {
          seen.length = 0;
          const response = await sendRaw(app.url, line);
          // The /admin route never runs: either the policy saw /admin and denied, or it was refused.
          expect(response.body).not.toBe("admin");
          if (response.body === "catch-all") {
            // A route ran: it is the route the policy's path selects.
            expect(seen).toHaveLength(1);
            expect(routeFor(seen[0] as string)).toBe("catch-all");
          } else if (response.status === 403) {
            expect(seen).toEqual(["/admin"]);
          } else {
            // Refused without a route: 400 (no single path) from the enforcer or Node, or Fastify's 404.
            expect([400, 404]).toContain(response.status);
          }
        });
      }

      it("an allowed path passes with its query, and the handler sees the origin-form target", async () => {
        seen.length = 0;
        const response = await sendRaw(app.url, "GET http://any-host/orders?id=7 HTTP/1.1");
        expect(response).toMatchObject({ status: 200, body: "catch-all" });
        expect(seen).toEqual(["/orders"]);
      });
    });
  }
}
