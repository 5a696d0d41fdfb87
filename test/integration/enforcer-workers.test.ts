import http from "node:http";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEnforcer, type Enforcer, withAuthorization } from "../../src/enforcer/index.ts";
import { buildBundles } from "../helpers/enforcer-fixtures.ts";
import { listen } from "../helpers/serve.ts";
import { repoRoot } from "../helpers/tools.ts";

/** ?n=1300 makes the spin policy evaluate for about 2 s on this machine's wasm runtime. */
const SPIN_N = 1300;

let wasm: string;
beforeAll(async () => {
  wasm = (await buildBundles(path.join(repoRoot, "test/fixtures/spin"), "spin-1", "spin/decision")).wasm;
});

/** /health answers without authorization; everything else goes through the enforcer. */
async function app(enforcer: Enforcer) {
  const authorized = withAuthorization(enforcer, (_req, res) => res.end("handled"));
  const server = http.createServer((req, res) => {
    if (req.url === "/health") return res.end("ok");
    return authorized(req, res);
  });
  return listen(server);
}

describe("the embedded engine evaluates off the event loop", () => {
  let enforcer: Enforcer;
  let server: Awaited<ReturnType<typeof app>>;
  afterAll(async () => {
    await server?.close();
    await enforcer?.close();
  });

  it("while one evaluation spins for 2 s, a route without authorization answers without waiting for it", async () => {
    enforcer = createEnforcer({
      bundle: wasm,
      entrypoint: "spin/decision",
      // Far above the spin even on a loaded 2-core runner: this test is about the event loop, not timeouts.
      timeoutMs: 60_000,
      log: () => {},
    });
    await enforcer.ready();
    server = await app(enforcer);
    const started = performance.now();
    const slow = fetch(`${server.url}/orders?n=${SPIN_N}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const probeStarted = performance.now();
    const health = await fetch(`${server.url}/health`);
    const probeMs = performance.now() - probeStarted;
    expect(await health.text()).toBe("ok");
    // A blocked event loop would hold the probe for the rest of the spin (~1.8 s); the bound leaves room for
    // a runner busy with other test files.
    expect(probeMs).toBeLessThan(500);
    const answer = await slow;
    expect(answer.status).toBe(200);
    // The spin really was long, so the probe ran while it was under way.
    expect(performance.now() - started).toBeGreaterThan(1000);
  });
});

describe("timeoutMs recycles the worker", () => {
  it("a spinning evaluation is a 500 within the timeout, and the next request is served", async () => {
    const logs: string[] = [];
    const enforcer = createEnforcer({
      bundle: wasm,
      entrypoint: "spin/decision",
      timeoutMs: 200,
      failOpen: true,
      log: (message) => logs.push(message),
    });
    await enforcer.ready();
    const server = await app(enforcer);
    try {
      const started = performance.now();
      const spun = await fetch(`${server.url}/orders?n=${SPIN_N}`);
      expect(spun.status).toBe(500);
      expect(performance.now() - started).toBeLessThan(200 + 150);
      expect(logs.join("\n")).toMatch(/timed out; its worker was recycled/);
      // failOpen does not cover it: the input chose the cost.
      for (let i = 0; i < 5; i++) {
        const next = await fetch(`${server.url}/orders?n=3`);
        expect(next.status).toBe(200);
      }
    } finally {
      await server.close();
      await enforcer.close();
    }
  });

  it("inThread evaluates on the event loop, as documented: timeoutMs cannot interrupt it", async () => {
    const enforcer = createEnforcer({
      bundle: wasm,
      entrypoint: "spin/decision",
      timeoutMs: 100,
      inThread: true,
      log: () => {},
    });
    try {
      await enforcer.ready();
      const started = performance.now();
      await enforcer.decide({ request: { http: { querystring: { n: "900" } } } });
      expect(performance.now() - started).toBeGreaterThan(300);
    } finally {
      await enforcer.close();
    }
  });
});
