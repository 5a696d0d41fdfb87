import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import express from "express";
import express4 from "express4";
import Fastify from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createEnforcer,
  type DecisionEvent,
  type Enforcer,
  type EnforcerOptions,
  expressAuthorize,
  fastifyAuthorize,
} from "../../src/enforcer/index.ts";
import { buildBundles } from "../helpers/enforcer-fixtures.ts";
import { type RunningOpa, startOpaServer } from "../helpers/opa-server.ts";
import { repoRoot } from "../helpers/tools.ts";

type Seen = { body?: string; body_size?: number; parsed_body?: unknown };
/** What the handler received as its body, in a form JSON can carry. */
type Received = { kind: "buffer" | "string" | "value" | "none"; value?: unknown };

function describeBody(body: unknown): Received {
  if (body === undefined) return { kind: "none" };
  if (Buffer.isBuffer(body)) return { kind: "buffer", value: body.toString("utf8") };
  if (typeof body === "string") return { kind: "string", value: body };
  return { kind: "value", value: body };
}

interface App {
  url: string;
  handled: () => number;
  close: () => Promise<void>;
}

type Parser = "none" | "json" | "text" | "raw" | "urlencoded";

async function expressApp(framework: typeof express, parser: Parser, enforcer: Enforcer): Promise<App> {
  let handled = 0;
  const app = framework();
  if (parser !== "none") app.use(framework[parser]());
  app.use(expressAuthorize(enforcer));
  app.use((req, res) => {
    handled++;
    res.json(describeBody(req.body));
  });
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    handled: () => handled,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function fastifyApp(enforcer: Enforcer): Promise<App> {
  let handled = 0;
  const app = Fastify();
  await app.register(fastifyAuthorize, { enforcer });
  app.post("/*", async (request) => {
    handled++;
    return describeBody(request.body);
  });
  const url = await app.listen({ port: 0, host: "127.0.0.1" });
  return { url, handled: () => handled, close: () => app.close() };
}

const SAMPLES = {
  json: { type: "application/json", body: '{"qty": 2, "items": ["a", "b"]}' },
  text: { type: "text/plain", body: "hello policy" },
  raw: { type: "application/octet-stream", body: "bytes\u0001\u0002 as sent" },
  urlencoded: { type: "application/x-www-form-urlencoded", body: "qty=2&item=a" },
} as const;

let opa: RunningOpa;
let wasm: string;

beforeAll(async () => {
  const built = await buildBundles(
    path.join(repoRoot, "test/fixtures/bodies"),
    "bodies-1",
    "bodies/decision",
  );
  wasm = built.wasm;
  opa = await startOpaServer(["--bundle", built.rego]);
});
afterAll(() => opa?.stop());

function enforcerFor(
  engine: "remote" | "embedded",
  include: EnforcerOptions["include"],
  events: DecisionEvent[],
  extra: Partial<EnforcerOptions> = {},
) {
  return createEnforcer({
    ...(engine === "remote"
      ? { opa: { url: opa.url, path: "bodies/decision" } }
      : { bundle: wasm, entrypoint: "bodies/decision" }),
    include,
    // These tests are about bodies: a first decision that waits for the workers to start on a busy runner
    // must not time out.
    timeoutMs: 10_000,
    log: () => {},
    onDecision: (event) => events.push(event),
    ...extra,
  });
}

/** POST /orders with a sample's content type and bytes. */
function postOrder(url: string, sample: { type: string; body: string }) {
  return fetch(`${url}/orders`, {
    method: "POST",
    headers: { "content-type": sample.type },
    body: sample.body,
  });
}

function seenOf(events: DecisionEvent[]): Seen {
  const last = events.at(-1);
  if (!last) throw new Error("the enforcer made no decision");
  return (last.input as { request: { http: Seen } }).request.http;
}

/** What the policy's body/parsed_body must be, given what the handler received for a sample. */
function expectSameBody(seen: Seen, received: Received, sample: { type: string; body: string }) {
  if (received.kind === "value") {
    expect(seen.parsed_body).toEqual(received.value);
  } else {
    expect(received.value).toBe(sample.body);
    expect(seen.body).toBe(sample.body);
    expect(seen.body_size).toBe(Buffer.byteLength(sample.body));
    if (sample.type === "application/json") expect(seen.parsed_body).toEqual(JSON.parse(sample.body));
  }
}

for (const engine of ["remote", "embedded"] as const) {
  describe(`${engine} engine: the body the policy sees is the body the handler gets`, () => {
    const frameworks = { "express 5": express, "express 4": express4 as unknown as typeof express };
    for (const [name, framework] of Object.entries(frameworks)) {
      for (const parser of ["none", "json", "text", "raw", "urlencoded"] as const) {
        it(`${name} with ${parser === "none" ? "no parser" : `express.${parser}()`} mounted first`, async () => {
          const events: DecisionEvent[] = [];
          // A parser that keeps only a parsed value leaves no raw body: include parsed_body alone there.
          const keepsValue = parser === "json" || parser === "urlencoded";
          const enforcer = enforcerFor(engine, { body: !keepsValue, parsedJsonBody: true }, events);
          const app = await expressApp(framework, parser, enforcer);
          try {
            const sample = SAMPLES[parser === "none" ? "json" : parser];
            const response = await postOrder(app.url, sample);
            expect(response.status).toBe(200);
            const received = (await response.json()) as Received;
            expect(received.kind).not.toBe("none");
            expectSameBody(seenOf(events), received, sample);
          } finally {
            await app.close();
            await enforcer.close();
          }
        });
      }

      it(`${name}: include.body after express.json() is a 500, never a guess`, async () => {
        const events: DecisionEvent[] = [];
        const enforcer = enforcerFor(engine, { body: true }, events);
        const app = await expressApp(framework, "json", enforcer);
        try {
          const response = await postOrder(app.url, SAMPLES.json);
          expect(response.status).toBe(500);
          expect(app.handled()).toBe(0);
          expect(events.at(-1)?.decision.error).toMatch(/consumed by a body parser/);
        } finally {
          await app.close();
          await enforcer.close();
        }
      });
    }

    for (const sample of [SAMPLES.json, SAMPLES.text]) {
      it(`fastify 5 with its ${sample.type} parser`, async () => {
        const events: DecisionEvent[] = [];
        const enforcer = enforcerFor(engine, { body: true, parsedJsonBody: true }, events);
        const app = await fastifyApp(enforcer);
        try {
          const response = await postOrder(app.url, sample);
          expect(response.status).toBe(200);
          const received = (await response.json()) as Received;
          const seen = seenOf(events);
          // Fastify's handler gets the parsed value; the policy gets it as parsed_body and the bytes as body.
          expect(seen.body).toBe(sample.body);
          if (received.kind === "value") expect(seen.parsed_body).toEqual(received.value);
          else expect(received.value).toBe(sample.body);
        } finally {
          await app.close();
          await enforcer.close();
        }
      });
    }

    it("a JSON body nested deeper than Kong decodes leaves parsed_body out; failOpen never opens it", async () => {
      const events: DecisionEvent[] = [];
      const enforcer = enforcerFor(engine, { parsedJsonBody: true }, events, {
        maxBodyBytes: 4 * 1024 * 1024,
        failOpen: true,
      });
      const app = await expressApp(express, "none", enforcer);
      try {
        const send = (depth: number, deny: boolean) =>
          fetch(`${app.url}/orders`, {
            method: "POST",
            headers: { "content-type": "application/json", ...(deny ? { "x-deny": "1" } : {}) },
            body: `${"[".repeat(depth)}${"]".repeat(depth)}`,
          });
        // 200,000 levels: JSON.stringify of the parsed value would overflow V8's stack.
        const deep = await send(200_000, true);
        expect(deep.status).toBe(403);
        expect(app.handled()).toBe(0);
        expect(events.at(-1)).toMatchObject({ failOpen: false, decision: { status: 403 } });
        expect(seenOf(events).parsed_body).toBeUndefined();
        // Kong's limit is lua-cjson's 1000 levels: 1000 is decoded, 1001 is not.
        expect((await send(1000, false)).status).toBe(200);
        expect(seenOf(events).parsed_body).toBeDefined();
        expect((await send(1001, false)).status).toBe(200);
        expect(seenOf(events).parsed_body).toBeUndefined();
      } finally {
        await app.close();
        await enforcer.close();
      }
    });
  });
}
