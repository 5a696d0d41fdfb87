import http from "node:http";
import path from "node:path";
import express from "express";
import express4 from "express4";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEnforcer, type Enforcer, expressAuthorize } from "../../src/enforcer/index.ts";
import { buildBundles } from "../helpers/enforcer-fixtures.ts";
import { type RunningOpa, startOpaServer } from "../helpers/opa-server.ts";
import { type Listening, listen } from "../helpers/serve.ts";
import { repoRoot } from "../helpers/tools.ts";

/** What the handler received as its body, in a form JSON can carry. */
function describeBody(body: unknown) {
  if (body === undefined) return { kind: "none" };
  if (Buffer.isBuffer(body)) return { kind: "buffer", value: body.toString("utf8") };
  return { kind: "value", value: body };
}

/** The enforcer first (so it reads the stream), express.json on the route, as apps mount them. */
function expressApp(framework: typeof express, enforcer: Enforcer): Promise<Listening> {
  const app = framework();
  app.use(expressAuthorize(enforcer));
  app.post("/orders", framework.json(), (req, res) => {
    res.json(describeBody(req.body));
  });
  return listen(http.createServer(app));
}

let opa: RunningOpa;

beforeAll(async () => {
  const built = await buildBundles(
    path.join(repoRoot, "test/fixtures/bodies"),
    "bodies-1",
    "bodies/decision",
  );
  opa = await startOpaServer(["--bundle", built.rego]);
});
afterAll(() => opa?.stop());

const frameworks = { "express 4": express4 as unknown as typeof express, "express 5": express };
const includes = { "include.body": { body: true }, "include.parsedJsonBody": { parsedJsonBody: true } };

for (const [name, framework] of Object.entries(frameworks)) {
  for (const [includeName, include] of Object.entries(includes)) {
    describe(`${name} with ${includeName}: an empty body that declares Content-Length: 0`, () => {
      let enforcer: Enforcer;
      let app: Listening;
      beforeAll(async () => {
        enforcer = createEnforcer({
          opa: { url: opa.url, path: "bodies/decision" },
          include,
          timeoutMs: 10_000,
          log: () => {},
        });
        await enforcer.ready();
        app = await expressApp(framework, enforcer);
      });
      afterAll(async () => {
        await app?.close();
        await enforcer?.close();
      });

      it("reaches the handler with {} when it is JSON, as express.json gives it", async () => {
        const response = await fetch(`${app.url}/orders`, {
          method: "POST",
          headers: { "content-type": "application/json" },
        });
        expect(response.status).toBe(200);
        expect(await response.json()).toEqual({ kind: "value", value: {} });
      });

      it("reaches the handler without a content type (fetch with method POST and no body)", async () => {
        const response = await fetch(`${app.url}/orders`, { method: "POST" });
        expect(response.status).toBe(200);
        expect(await response.json()).toEqual({ kind: "buffer", value: "" });
      });
    });
  }
}
