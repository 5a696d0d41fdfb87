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
import { type Listening, listen } from "../helpers/serve.ts";

const POLICIES = path.join(import.meta.dirname, "../fixtures/segments");

/** Express with the enforcer on app.use and the admin handler on a router mounted at /api. */
function expressApp(framework: typeof express, enforcer: Enforcer): Promise<Listening> {
  const app = framework();
  app.use(expressAuthorize(enforcer));
  const api = framework.Router();
  api.get("/admin", (_req, res) => {
    res.send("admin");
  });
  app.use("/api", api);
  app.use((_req, res) => {
    res.send("catch-all");
  });
  return listen(http.createServer(app));
}

/** node:http reading req.url with WHATWG URL, as Node's documentation shows. */
function nodeApp(enforcer: Enforcer): Promise<Listening> {
  return listen(
    http.createServer(
      withAuthorization(enforcer, (req, res) => {
        const { pathname } = new URL(req.url ?? "/", "http://x");
        res.end(pathname === "/admin" || pathname.startsWith("/api/admin") ? "admin" : "catch-all");
      }),
    ),
  );
}

async function fastifyApp(enforcer: Enforcer, ignoreDuplicateSlashes: boolean): Promise<Listening> {
  const app = Fastify({ routerOptions: { ignoreDuplicateSlashes } });
  await app.register(fastifyAuthorize, { enforcer });
  app.get("/api/admin", async () => "admin");
  app.all("/*", async () => "catch-all");
  const url = await app.listen({ port: 0, host: "127.0.0.1" });
  return { url, close: () => app.close() };
}

/** Targets with an empty segment, each of which some reader turns into an admin path. */
const EMPTY_SEGMENTS = [
  "GET /api//admin HTTP/1.1",
  "GET /API//admin/ HTTP/1.1",
  "GET /api//admin// HTTP/1.1",
  "GET /api///admin HTTP/1.1",
  "GET http://any-host/api//admin HTTP/1.1",
  "GET //api/admin HTTP/1.1",
  "GET //h/admin HTTP/1.1",
  "GET //admin HTTP/1.1",
  "GET http://h//admin HTTP/1.1",
  "GET /public/admin// HTTP/1.1",
];

let opa: RunningOpa;
const seen: string[] = [];
let enforcer: Enforcer;

beforeAll(async () => {
  const built = await buildBundles(POLICIES, "segments-1", "segments/decision");
  opa = await startOpaServer(["--bundle", built.rego]);
  enforcer = createEnforcer({
    opa: { url: opa.url, path: "segments/decision" },
    timeoutMs: 10_000,
    log: () => {},
    onDecision: (event) => {
      seen.push((event.input as { request: { http: { path: string } } }).request.http.path);
    },
  });
  await enforcer.ready();
});
afterAll(async () => {
  await enforcer?.close();
  opa?.stop();
});

const apps: Record<string, () => Promise<Listening>> = {
  "express 4": () => expressApp(express4 as unknown as typeof express, enforcer),
  "express 5": () => expressApp(express, enforcer),
  "node:http": () => nodeApp(enforcer),
  "fastify 5": () => fastifyApp(enforcer, false),
};

for (const [name, start] of Object.entries(apps)) {
  describe(`${name}: a path with an empty segment is refused before any handler runs`, () => {
    let app: Listening;
    beforeAll(async () => {
      app = await start();
    });
    afterAll(() => app?.close());

    for (const line of EMPTY_SEGMENTS) {
      it(line, async () => {
        seen.length = 0;
        const response = await sendRaw(app.url, line);
        expect(response.body).not.toBe("admin");
        expect(response.status).toBe(400);
      });
    }

    it("an encoded slash stays inside its segment and never reaches the admin handler", async () => {
      for (const line of ["GET /api/%2F%2Fadmin HTTP/1.1", "GET /api/%2Fadmin HTTP/1.1"]) {
        const response = await sendRaw(app.url, line);
        expect(response.body).not.toBe("admin");
      }
    });

    it("the admin path itself is denied and other paths pass", async () => {
      expect((await sendRaw(app.url, "GET /api/admin HTTP/1.1")).status).toBe(403);
      expect(await sendRaw(app.url, "GET /api/orders/ HTTP/1.1")).toMatchObject({
        status: 200,
        body: "catch-all",
      });
    });
  });
}

describe("express 4 with the enforcer inside the router at /api: it decides the path the router trimmed", () => {
  let app: Listening;
  beforeAll(async () => {
    const framework = express4 as unknown as typeof express;
    const server = framework();
    const api = framework.Router();
    api.use(expressAuthorize(enforcer));
    api.get("/admin", (_req, res) => {
      res.send("admin");
    });
    server.use("/api", api);
    app = await listen(http.createServer(server));
  });
  afterAll(() => app?.close());

  it("GET /api//admin, which Express 4 runs as /admin under /api, is decided as /api/admin", async () => {
    seen.length = 0;
    const response = await sendRaw(app.url, "GET /api//admin HTTP/1.1");
    expect(response.status).toBe(403);
    expect(seen).toEqual(["/api/admin"]);
  });
});

describe("fastify 5 with ignoreDuplicateSlashes: the router merges slashes, so the policy sees them merged", () => {
  let app: Listening;
  beforeAll(async () => {
    app = await fastifyApp(enforcer, true);
  });
  afterAll(() => app?.close());

  it("GET /api//admin is decided as /api/admin", async () => {
    seen.length = 0;
    const response = await sendRaw(app.url, "GET /api//admin HTTP/1.1");
    expect(response.status).toBe(403);
    expect(seen).toEqual(["/api/admin"]);
  });
});
