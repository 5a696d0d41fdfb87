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
} from "../../src/enforcer/index.ts";
import { buildBundles } from "../helpers/enforcer-fixtures.ts";
import { type RunningOpa, startOpaServer } from "../helpers/opa-server.ts";
import { type Listening, listen } from "../helpers/serve.ts";
import { repoRoot } from "../helpers/tools.ts";

/**
 * README "What the enforcer guarantees" says the query the policy sees is Kong's reading, not the
 * handler's req.query; these pin each difference it names, so the README stays true.
 */

let opa: RunningOpa;
let enforcer: Enforcer;
const seen: unknown[] = [];

beforeAll(async () => {
  const built = await buildBundles(
    path.join(repoRoot, "test/fixtures/bodies"),
    "bodies-1",
    "bodies/decision",
  );
  opa = await startOpaServer(["--bundle", built.rego]);
  enforcer = createEnforcer({
    opa: { url: opa.url, path: "bodies/decision" },
    timeoutMs: 10_000,
    log: () => {},
    onDecision: (event) => {
      seen.push((event.input as { request: { http: { querystring: unknown } } }).request.http.querystring);
    },
  });
  await enforcer.ready();
});
afterAll(async () => {
  await enforcer?.close();
  opa?.stop();
});

function expressApp(framework: typeof express, queryParser?: string): Promise<Listening> {
  const app = framework();
  if (queryParser) app.set("query parser", queryParser);
  app.use(expressAuthorize(enforcer));
  app.get("/q", (req, res) => {
    res.json(req.query);
  });
  return listen(http.createServer(app));
}

/** The handler's query and the policy's, for one query string. */
async function both(app: Listening, query: string) {
  seen.length = 0;
  const response = await fetch(`${app.url}/q?${query}`);
  expect(response.status).toBe(200);
  return { handler: await response.json(), policy: { ...(seen[0] as object) } };
}

describe("the query the policy sees is Kong's reading, not the framework's", () => {
  it("express 4 (qs) nests role[] and user[id]; the policy has flat keys; 'simple' keeps them flat", async () => {
    const app = await expressApp(express4 as unknown as typeof express);
    const simple = await expressApp(express4 as unknown as typeof express, "simple");
    try {
      const query = "role[]=admin&user[id]=5";
      expect(await both(app, query)).toEqual({
        handler: { role: ["admin"], user: { id: "5" } },
        policy: { "role[]": "admin", "user[id]": "5" },
      });
      expect((await both(simple, query)).handler).toEqual({ "role[]": "admin", "user[id]": "5" });
    } finally {
      await app.close();
      await simple.close();
    }
  });

  it("express 5 decodes %61dmin% as admin%; the policy keeps it as sent; ?debug is '' and true", async () => {
    const app = await expressApp(express);
    try {
      expect(await both(app, "role=%61dmin%&debug")).toEqual({
        handler: { role: "admin%", debug: "" },
        policy: { role: "%61dmin%", debug: true },
      });
    } finally {
      await app.close();
    }
  });

  it("fastify reads ?debug as ''; the policy as true", async () => {
    const app = Fastify();
    await app.register(fastifyAuthorize, { enforcer });
    app.get("/q", async (request) => request.query);
    const url = await app.listen({ port: 0, host: "127.0.0.1" });
    try {
      expect(await both({ url, close: () => app.close() }, "debug")).toEqual({
        handler: { debug: "" },
        policy: { debug: true },
      });
    } finally {
      await app.close();
    }
  });
});
