import { mkdtemp, writeFile } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import express from "express";
import Fastify from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fastifyAuthorize } from "../../src/enforcer/adapters/fastify-entry.ts";
import {
  createEnforcer,
  type DecisionEvent,
  type Enforcer,
  type EnforcerOptions,
  expressAuthorize,
  withAuthorization,
} from "../../src/enforcer/index.ts";
import { ADAPTERS, type AdapterName, ENGINES, type EngineName } from "../helpers/enforcer-apps.ts";
import { buildBundles } from "../helpers/enforcer-fixtures.ts";
import { type RunningOpa, startOpaServer } from "../helpers/opa-server.ts";
import { listen } from "../helpers/serve.ts";

const ENTRYPOINT = "redteam/decision";
const POLICY = `package redteam

path := input.request.http.path

decision := {"allow": true, "headers": {"x-user": "alice", "X-Tenant": "t"}} if path == "/headers"

decision := false if path == "/deny"

decision := {"allow": false, "status": 429, "message": {"error": "slow down"}} if path == "/message"

# A deny-list: only a body whose role is admin is refused.
decision := false if {
	path == "/orders"
	input.request.http.parsed_body.role == "admin"
}

decision := true if {
	path == "/orders"
	not input.request.http.parsed_body.role == "admin"
}
`;

let opa: RunningOpa | undefined;
let wasm = "";
beforeAll(async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-redteam5-"));
  await writeFile(path.join(dir, "policy.rego"), POLICY);
  const bundles = await buildBundles(dir, "redteam-5", ENTRYPOINT);
  wasm = bundles.wasm;
  opa = await startOpaServer(["--bundle", bundles.rego]);
});
afterAll(() => opa?.stop());

function optionsFor(engine: EngineName, extra: Partial<EnforcerOptions> = {}): EnforcerOptions {
  return {
    ...(engine === "remote"
      ? { opa: { url: (opa as RunningOpa).url, path: ENTRYPOINT } }
      : { bundle: wasm, entrypoint: ENTRYPOINT }),
    timeoutMs: 10_000,
    log: () => {},
    ...extra,
  } as EnforcerOptions;
}

/** What each handler saw: headersDistinct (or the error reading it threw), the headers, the body. */
interface Seen {
  distinct?: NodeJS.Dict<string[]>;
  distinctError?: string;
  headers: Record<string, unknown>;
  role?: unknown;
  bodyIsBuffer?: boolean;
}

function seenBy(req: http.IncomingMessage, body: unknown): Seen {
  const seen: Seen = { headers: req.headers };
  try {
    seen.distinct = req.headersDistinct;
  } catch (error) {
    seen.distinctError = (error as Error).message;
  }
  seen.bodyIsBuffer = Buffer.isBuffer(body);
  if (body && typeof body === "object" && !Buffer.isBuffer(body))
    seen.role = (body as { role?: unknown }).role;
  return seen;
}

/** One app per adapter; `early` reads headersDistinct before the enforcer runs (Node then keeps what it built). */
async function startApp(adapter: AdapterName, enforcer: Enforcer, early: boolean) {
  let handled = 0;
  if (adapter === "node:http") {
    const wrapped = withAuthorization(enforcer, (req, res) => {
      handled++;
      res.end(JSON.stringify(seenBy(req, (req as { body?: unknown }).body)));
    });
    const app = await listen(
      http.createServer((req, res) => {
        if (early) void req.headersDistinct;
        void wrapped(req, res);
      }),
    );
    return { ...app, handled: () => handled };
  }
  if (adapter === "express") {
    const app = express();
    if (early) {
      app.use((req, _res, next) => {
        void req.headersDistinct;
        next();
      });
    }
    app.use(expressAuthorize(enforcer));
    app.use((req, res) => {
      handled++;
      res.send(JSON.stringify(seenBy(req, req.body)));
    });
    return { ...(await listen(http.createServer(app))), handled: () => handled };
  }
  const app = Fastify();
  if (early) {
    app.addHook("onRequest", async (request) => {
      void request.raw.headersDistinct;
    });
  }
  await app.register(fastifyAuthorize, { enforcer });
  app.all("/*", async (request, reply) => {
    handled++;
    return reply.type("application/json").send(JSON.stringify(seenBy(request.raw, request.body)));
  });
  const url = await app.listen({ port: 0, host: "127.0.0.1" });
  return { url, handled: () => handled, close: () => app.close() };
}

/** A request with headers in rawHeaders form, so a name can be sent twice and in any case. */
function send(
  url: string,
  rawHeaders: string[],
  body?: string,
): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const headers = ["Host", new URL(url).host, ...rawHeaders];
    const method = body === undefined ? "GET" : "POST";
    const request = http.request(url, { method, headers }, (response) => {
      let text = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        text += chunk;
      });
      response.on("end", () =>
        resolve({ status: response.statusCode ?? 0, body: text, headers: response.headers }),
      );
    });
    request.on("error", reject);
    request.end(body);
  });
}

const SPOOFED = [
  "X-User",
  "admin",
  "x-user",
  "root",
  "X-TENANT",
  "evil",
  "__proto__",
  "p",
  "X-Other",
  "kept",
];

for (const engine of ENGINES) {
  for (const adapter of ADAPTERS) {
    describe(`${engine} engine, ${adapter}`, () => {
      for (const early of [false, true]) {
        it(`req.headersDistinct shows exactly the policy's headers, on a miss and a hit${early ? ", even when read before the enforcer" : ""}`, async () => {
          const enforcer = createEnforcer(optionsFor(engine, { cache: { max: 10, ttlMs: 60_000 } }));
          await enforcer.ready();
          const app = await startApp(adapter, enforcer, early);
          try {
            for (let i = 0; i < 2; i++) {
              const answer = await send(`${app.url}/headers`, SPOOFED);
              expect(answer.status).toBe(200);
              const seen = JSON.parse(answer.body) as Seen;
              expect(seen.distinctError).toBeUndefined();
              expect(seen.distinct?.["x-user"]).toEqual(["alice"]);
              expect(seen.distinct?.["x-tenant"]).toEqual(["t"]);
              expect(seen.distinct?.["x-other"]).toEqual(["kept"]);
              // A header named __proto__ stays a plain key (JSON keeps only own keys).
              expect(Object.getOwnPropertyDescriptor(seen.distinct, "__proto__")?.value).toEqual(["p"]);
              expect(seen.headers["x-user"]).toBe("alice");
              expect(seen.headers["x-tenant"]).toBe("t");
            }
            expect(app.handled()).toBe(2);
          } finally {
            await app.close();
            await enforcer.close();
          }
        });
      }

      it("onDecision cannot open a denial, change its answer or the headers the handler sees", async () => {
        const events: DecisionEvent[] = [];
        const tried: string[] = [];
        const logged: string[] = [];
        let closed = false;
        const enforcer = createEnforcer(
          optionsFor(engine, {
            cache: { max: 10, ttlMs: 60_000 },
            decisionLog: { write: (line: string) => logged.push(line) },
            onDecision: (event) => {
              events.push(event);
              const decision = event.decision as unknown as Record<string, unknown>;
              for (const edit of [
                () => {
                  (event as unknown as Record<string, unknown>).decision = {
                    allow: true,
                    status: 200,
                    headers: {},
                  };
                },
                () => {
                  decision.allow = true;
                  decision.status = 200;
                },
                () => {
                  (decision.headers as Record<string, string>)["x-user"] = "root";
                },
                () => {
                  ((decision.authz as Record<string, unknown>).headers as Record<string, string>)["x-user"] =
                    "root";
                },
                () => {
                  if (decision.message && typeof decision.message === "object") {
                    (decision.message as Record<string, string>).error = "changed";
                  }
                },
              ]) {
                try {
                  edit();
                } catch (error) {
                  tried.push((error as Error).name);
                }
              }
            },
          }),
        );
        await enforcer.ready();
        const app = await startApp(adapter, enforcer, false);
        try {
          for (let i = 0; i < 2; i++) {
            expect((await send(`${app.url}/deny`, [])).status).toBe(403);
            const limited = await send(`${app.url}/message`, []);
            expect(limited.status).toBe(429);
            expect(JSON.parse(limited.body)).toEqual({ message: { error: "slow down" } });
            const allowed = await send(`${app.url}/headers`, ["X-User", "admin"]);
            expect(allowed.status).toBe(200);
            const seen = JSON.parse(allowed.body) as Seen;
            expect(seen.headers["x-user"]).toBe("alice");
            expect(seen.distinct?.["x-user"]).toEqual(["alice"]);
          }
          expect(app.handled()).toBe(2);
          // Every edit was refused (the copy is frozen), and the events still say what was enforced.
          expect(tried.length).toBeGreaterThan(0);
          expect(new Set(tried)).toEqual(new Set(["TypeError"]));
          expect(events.filter((event) => event.decision.status === 403)).toHaveLength(2);
          // The decision log records what was enforced, not what the hook tried to write.
          await app.close();
          await enforcer.close();
          closed = true;
          expect(logged).toHaveLength(6);
          expect(logged.join("")).not.toMatch(/root|changed/);
          expect(logged.filter((line) => JSON.parse(line).result === false)).toHaveLength(2);
        } finally {
          if (!closed) {
            await app.close();
            await enforcer.close();
          }
        }
      });
    });
  }

  describe(`${engine} engine, a JSON body nested past the input's depth`, () => {
    const deep = `{"role":"admin","x":${"[".repeat(1001)}${"]".repeat(1001)}}`;

    it("Fastify refuses it with 400 rather than decide without parsed_body; a shallow one is decided", async () => {
      const logs: string[] = [];
      const enforcer = createEnforcer(
        optionsFor(engine, { include: { parsedJsonBody: true }, log: (line) => logs.push(line) }),
      );
      await enforcer.ready();
      const app = await startApp("fastify", enforcer, false);
      const json = ["content-type", "application/json"];
      try {
        const refused = await send(`${app.url}/orders`, json, deep);
        expect(refused.status).toBe(400);
        expect(JSON.parse(refused.body)).toEqual({ message: "bad request" });
        expect(app.handled()).toBe(0);
        expect(logs).toEqual([expect.stringMatching(/request body nests deeper than 1000 levels/)]);
        expect((await send(`${app.url}/orders`, json, '{"role":"admin"}')).status).toBe(403);
        const shallow = await send(`${app.url}/orders`, json, '{"role":"user","x":[[1]]}');
        expect(shallow.status).toBe(200);
        expect((JSON.parse(shallow.body) as Seen).role).toBe("user");
      } finally {
        await app.close();
        await enforcer.close();
      }
    });

    it("Express after express.json() refuses it with 400 too: the handler would get role admin", async () => {
      const enforcer = createEnforcer(optionsFor(engine, { include: { parsedJsonBody: true } }));
      await enforcer.ready();
      let handled = 0;
      const app = express();
      app.use(express.json());
      app.use(expressAuthorize(enforcer));
      app.use((req, res) => {
        handled++;
        res.json({ role: req.body?.role });
      });
      const listening = await listen(http.createServer(app));
      try {
        const refused = await send(`${listening.url}/orders`, ["content-type", "application/json"], deep);
        expect(refused.status).toBe(400);
        expect(handled).toBe(0);
        const shallow = await send(
          `${listening.url}/orders`,
          ["content-type", "application/json"],
          '{"role":"user"}',
        );
        expect(shallow.status).toBe(200);
        expect(handled).toBe(1);
      } finally {
        await listening.close();
        await enforcer.close();
      }
    });

    for (const adapter of ["node:http", "express"] as const) {
      it(`${adapter} still hands the handler the bytes, so no handler acts on what the policy did not see`, async () => {
        const enforcer = createEnforcer(optionsFor(engine, { include: { parsedJsonBody: true } }));
        await enforcer.ready();
        const app = await startApp(adapter, enforcer, false);
        try {
          const answer = await send(`${app.url}/orders`, ["content-type", "application/json"], deep);
          expect(answer.status).toBe(200);
          const seen = JSON.parse(answer.body) as Seen;
          expect(seen.bodyIsBuffer).toBe(true);
          expect(seen.role).toBeUndefined();
        } finally {
          await app.close();
          await enforcer.close();
        }
      });
    }
  });
}
