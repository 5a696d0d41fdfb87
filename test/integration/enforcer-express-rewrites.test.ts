import { mkdtemp, writeFile } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import express from "express";
import express4 from "express4";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEnforcer, type Enforcer, expressAuthorize } from "../../src/enforcer/index.ts";
import { buildBundles } from "../helpers/enforcer-fixtures.ts";
import { type RunningOpa, startOpaServer } from "../helpers/opa-server.ts";
import { sendRaw } from "../helpers/raw-http.ts";
import { type Listening, listen } from "../helpers/serve.ts";

/** Denies the two admin routes by their full path; everything else is allowed. */
const POLICY = `package routing

default decision := true

decision := false if input.request.http.path in {"/admin", "/api/admin"}
`;

let opa: RunningOpa;
let enforcer: Enforcer;
const seen: string[] = [];

beforeAll(async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-rewrites-"));
  await writeFile(path.join(dir, "routing.rego"), POLICY);
  const built = await buildBundles(dir, "rewrites-1", "routing/decision");
  opa = await startOpaServer(["--bundle", built.rego]);
  enforcer = createEnforcer({
    opa: { url: opa.url, path: "routing/decision" },
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
  await opa?.stop();
});

type Framework = typeof express;
type Router = ReturnType<Framework["Router"]>;

/** A rewrite middleware, as apps mount them for an API version prefix or a renamed page. */
const rewrite =
  (from: RegExp, to: string) => (req: http.IncomingMessage, _res: unknown, next: () => void) => {
    req.url = (req.url ?? "/").replace(from, to);
    next();
  };

/** An admin route and a catch-all on any router, each answering with its name and the path it matched. */
function routes(router: Router) {
  router.get("/admin", (req, res) => {
    res.send(`admin ${req.baseUrl}${req.path}`);
  });
  router.get("/orders/:id", (req, res) => {
    res.send(`order ${req.params.id}`);
  });
  router.use((req, res) => {
    res.send(`catch-all ${req.baseUrl}${req.path}`);
  });
  return router;
}

/** Each app puts a rewrite before the enforcer somewhere on the way to an admin route. */
const APPS: Record<string, (framework: Framework) => http.RequestListener> = {
  "a prefix stripped before the enforcer (req.url = req.url.slice(3) for /v1)": (framework) => {
    const app = framework();
    app.use(rewrite(/^\/v1(?=\/)/, ""));
    app.use(expressAuthorize(enforcer));
    routes(app as unknown as Router);
    return app;
  },
  "a page renamed before the enforcer (/dashboard → /admin)": (framework) => {
    const app = framework();
    app.use(rewrite(/^\/dashboard(?=$|[/?])/, "/admin"));
    app.use(expressAuthorize(enforcer));
    routes(app as unknown as Router);
    return app;
  },
  "a mounted sub-app with its own rewrite and enforcer (app.use('/api', sub))": (framework) => {
    const sub = framework();
    sub.use(rewrite(/^\/dashboard(?=$|[/?])/, "/admin"));
    sub.use(expressAuthorize(enforcer));
    routes(sub as unknown as Router);
    const app = framework();
    app.use("/api", sub);
    return app;
  },
  "a mounted router with its own rewrite and enforcer": (framework) => {
    const router = framework.Router();
    router.use(rewrite(/^\/dashboard(?=$|[/?])/, "/admin"));
    router.use(expressAuthorize(enforcer));
    const app = framework();
    app.use("/api", routes(router));
    return app;
  },
  "a rewrite at the top, the enforcer in a mounted router": (framework) => {
    const router = framework.Router();
    router.use(expressAuthorize(enforcer));
    const app = framework();
    app.use(rewrite(/^\/v1(?=\/)/, ""));
    app.use(rewrite(/^\/api\/dashboard(?=$|[/?])/, "/api/admin"));
    app.use("/api", routes(router));
    return app;
  },
};

/** Request lines and what the policy must see for each: every one of them reaches an admin route. */
const TO_ADMIN: [string, string][] = [
  ["GET /v1/admin HTTP/1.1", "/admin"],
  ["GET /dashboard HTTP/1.1", "/admin"],
  ["GET /dashboard?tab=1 HTTP/1.1", "/admin"],
  ["GET /api/admin HTTP/1.1", "/api/admin"],
  ["GET /api/dashboard HTTP/1.1", "/api/admin"],
  ["GET /v1/api/dashboard HTTP/1.1", "/api/admin"],
  ["GET /API/Dashboard HTTP/1.1", "/api/admin"],
  ["GET http://any-host/api/dashboard HTTP/1.1", "/api/admin"],
  ["GET http://any-host/v1/admin HTTP/1.1", "/admin"],
];

for (const [frameworkName, framework] of [
  ["express 5", express],
  ["express 4", express4 as unknown as Framework],
] as const) {
  for (const [appName, build] of Object.entries(APPS)) {
    describe(`${frameworkName}, ${appName}: the policy sees the path the router after it matches`, () => {
      let app: Listening;
      beforeAll(async () => {
        app = await listen(http.createServer(build(framework)));
      });
      afterAll(() => app?.close());

      for (const [line] of TO_ADMIN) {
        it(`${line} never runs an admin route unless the policy saw its path`, async () => {
          seen.length = 0;
          const response = await sendRaw(app.url, line);
          if (response.body.startsWith("admin")) {
            // The admin route ran: only after the policy saw its full path, which it denies.
            throw new Error(`${line} reached ${response.body}; the policy saw ${JSON.stringify(seen)}`);
          }
          if (response.status === 403) {
            expect(seen).toHaveLength(1);
            expect(["/admin", "/api/admin"]).toContain(seen[0]);
          } else if (response.status === 404) {
            // Outside the mount that holds the enforcer: no route ran, and nothing was decided.
            expect(seen).toEqual([]);
          } else {
            // Some other route ran: the one the policy's path names.
            expect(response.status).toBe(200);
            const [route, routed] = response.body.split(" ");
            expect(route).toBe("catch-all");
            expect(seen).toEqual([(routed as string).toLowerCase()]);
          }
        });
      }

      it("a route parameter under the mount reaches the policy with the full path", async () => {
        seen.length = 0;
        const mounted = appName.includes("mounted");
        const response = await sendRaw(app.url, `GET ${mounted ? "/api" : ""}/orders/7 HTTP/1.1`);
        expect(response).toMatchObject({ status: 200, body: "order 7" });
        expect(seen).toEqual([`${mounted ? "/api" : ""}/orders/7`]);
      });
    });
  }
}

describe("the rewrites are what send these requests to an admin route", () => {
  /** Per app, the targets its rewrites (or its mount) send to an admin route: each is a 403. */
  const DENIED: Record<string, string[]> = {
    "a prefix stripped before the enforcer (req.url = req.url.slice(3) for /v1)": ["/v1/admin", "/api/admin"],
    "a page renamed before the enforcer (/dashboard → /admin)": [
      "/dashboard",
      "/dashboard?tab=1",
      "/api/admin",
    ],
    "a mounted sub-app with its own rewrite and enforcer (app.use('/api', sub))": [
      "/api/admin",
      "/api/dashboard",
    ],
    "a mounted router with its own rewrite and enforcer": ["/api/admin", "/api/dashboard"],
    "a rewrite at the top, the enforcer in a mounted router": [
      "/api/admin",
      "/api/dashboard",
      "/v1/api/dashboard",
    ],
  };
  for (const [frameworkName, framework] of [
    ["express 5", express],
    ["express 4", express4 as unknown as Framework],
  ] as const) {
    it(`${frameworkName}: each app denies exactly the targets its rewrites send to an admin route`, async () => {
      for (const [appName, build] of Object.entries(APPS)) {
        const app = await listen(http.createServer(build(framework)));
        const denied: string[] = [];
        try {
          for (const [line, policyPath] of TO_ADMIN) {
            seen.length = 0;
            if ((await sendRaw(app.url, line)).status !== 403) continue;
            expect(seen).toEqual([policyPath]);
            denied.push(line.split(" ")[1] as string);
          }
        } finally {
          await app.close();
        }
        expect(denied, appName).toEqual(DENIED[appName]);
      }
    });
  }
});
