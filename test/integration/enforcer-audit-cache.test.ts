import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEnforcer, type DecisionEvent, type EnforcerOptions } from "../../src/enforcer/index.ts";
import {
  ADAPTERS,
  ENGINES,
  type EngineName,
  type Handled,
  startAdapterApp,
} from "../helpers/enforcer-apps.ts";
import {
  buildBundles,
  CONFORMANCE_CASES,
  CONFORMANCE_DIR,
  CONFORMANCE_ENTRYPOINT,
} from "../helpers/enforcer-fixtures.ts";
import { type FaultProxy, startFaultProxy } from "../helpers/fault-proxy.ts";
import { type RunningOpa, startOpaServer } from "../helpers/opa-server.ts";
import { freePort } from "../helpers/ports.ts";
import { startSwitchingProxy } from "../helpers/switching-proxy.ts";

let opa: RunningOpa;
let proxy: FaultProxy;
let wasm: string;

beforeAll(async () => {
  const bundles = await buildBundles(CONFORMANCE_DIR, "prod-1", CONFORMANCE_ENTRYPOINT);
  wasm = bundles.wasm;
  opa = await startOpaServer(["--bundle", bundles.rego]);
  proxy = await startFaultProxy(opa.url);
});
afterAll(async () => {
  await proxy?.close();
  await opa?.stop();
});

function enforcerFor(engine: EngineName, events: DecisionEvent[], extra: Partial<EnforcerOptions> = {}) {
  return createEnforcer({
    ...(engine === "remote"
      ? { opa: { url: proxy.url, path: CONFORMANCE_ENTRYPOINT } }
      : { bundle: wasm, entrypoint: CONFORMANCE_ENTRYPOINT }),
    timeoutMs: 2000,
    log: () => {},
    onDecision: (event) => events.push(event),
    ...extra,
  } as EnforcerOptions);
}

const allow = (path: string) => ({
  request: { http: { method: "GET", path, headers: {}, querystring: {} } },
  client_ip: "127.0.0.1",
});

describe("audit mode: every request proceeds, and says what enforce mode would have done", () => {
  for (const engine of ENGINES) {
    for (const adapter of ADAPTERS) {
      it(`${adapter}, ${engine}: the same requests in both modes`, async () => {
        const statuses: Record<"enforce" | "audit", number[]> = { enforce: [], audit: [] };
        const events: Record<"enforce" | "audit", DecisionEvent[]> = { enforce: [], audit: [] };
        for (const mode of ["enforce", "audit"] as const) {
          const enforcer = enforcerFor(engine, events[mode], { mode });
          await enforcer.ready();
          const app = await startAdapterApp(adapter, enforcer);
          try {
            for (const testCase of CONFORMANCE_CASES) {
              const response = await fetch(`${app.url}${testCase.path}`, {
                method: testCase.method ?? "GET",
                headers: testCase.headers,
              });
              statuses[mode].push(response.status);
              if (mode === "audit") {
                // Never blocked, and a denial's headers never reach the response.
                expect(response.status, testCase.path).toBe(200);
                expect(response.headers.get("www-authenticate")).toBeNull();
                const body = (await response.json()) as Handled;
                expect(body.authz?.audited).toBe(true);
                expect(body.authz?.allow).toBe(testCase.expect.allow);
              } else {
                await response.arrayBuffer();
              }
            }
            if (mode === "audit") expect(app.handled()).toBe(CONFORMANCE_CASES.length);
          } finally {
            await app.close();
            await enforcer.close();
          }
        }
        const denied = statuses.enforce.filter((status) => status >= 400 && status < 500).length;
        const failed = statuses.enforce.filter((status) => status >= 500).length;
        expect(denied).toBeGreaterThan(0);
        expect(events.audit.filter((e) => e.would === "deny")).toHaveLength(denied);
        expect(events.audit.filter((e) => e.would === "error")).toHaveLength(failed);
        expect(events.audit.every((e) => e.audited)).toBe(true);
        expect(events.enforce.every((e) => !e.audited)).toBe(true);
      });
    }

    it(`${engine}: a revision mismatch proceeds in audit mode and is marked would: "error"`, async () => {
      const events: DecisionEvent[] = [];
      const enforcer = enforcerFor(engine, events, { mode: "audit", expectedRevision: "another" });
      await enforcer.ready().catch(() => {});
      const decision = await enforcer.decide(allow("/bool-allow"));
      expect(decision).toMatchObject({ allow: true, status: 200, audited: true });
      expect(events.at(-1)).toMatchObject({ would: "error", decision: { status: 503 } });
      await enforcer.close();
    });
  }

  it("refuses a mode that is neither enforce nor audit", () => {
    expect(() => createEnforcer({ bundle: "b.tar.gz", entrypoint: "a/b", mode: "log" as "audit" })).toThrow(
      /mode must be "enforce" or "audit"/,
    );
  });
});

describe("the decision cache cannot serve a stale or wrong answer", () => {
  const posts = () => proxy.requests.filter((request) => request.startsWith("POST")).length;

  for (const engine of ENGINES) {
    for (const adapter of ADAPTERS) {
      it(`${adapter}, ${engine}: a second request with the same key is a hit, handed to the handler as cached`, async () => {
        const events: DecisionEvent[] = [];
        const enforcer = enforcerFor(engine, events, {
          cache: {
            max: 100,
            ttlMs: 60_000,
            key: (input) => (input as ReturnType<typeof allow>).request.http.path,
          },
        });
        await enforcer.ready();
        const app = await startAdapterApp(adapter, enforcer);
        try {
          const first = (await (
            await fetch(`${app.url}/object-allow`, { headers: { "x-api-key": "alice-key" } })
          ).json()) as Handled;
          const second = (await (
            await fetch(`${app.url}/object-allow`, { headers: { "x-api-key": "alice-key" } })
          ).json()) as Handled;
          expect(first.authz).toMatchObject({ allow: true, cached: false, engine, revision: "prod-1" });
          expect(second.authz).toMatchObject({ allow: true, cached: true, engine, revision: "prod-1" });
          expect(second.headers["x-user"]).toBe("alice");
          expect(second.authz?.decisionId).not.toBe(first.authz?.decisionId);
          expect(events.map((e) => e.cached)).toEqual([false, true]);
        } finally {
          await app.close();
          await enforcer.close();
        }
      });
    }
  }

  it("errors, timeouts and failOpen outcomes are never cached", async () => {
    const key = () => "one-key";
    const enforcer = enforcerFor("remote", [], { cache: { max: 10, ttlMs: 60_000, key }, timeoutMs: 300 });
    const open = createEnforcer({
      opa: { url: `http://127.0.0.1:${await freePort()}`, path: CONFORMANCE_ENTRYPOINT },
      failOpen: true,
      cache: { max: 10, ttlMs: 60_000, key },
      log: () => {},
    });
    try {
      for (const fault of [
        { kind: "status", status: 500 },
        { kind: "delay", ms: 600 },
      ] as const) {
        proxy.fault = fault;
        expect(await enforcer.decide(allow("/bool-allow"))).toMatchObject({ allow: false, status: 500 });
      }
      proxy.fault = { kind: "pass" };
      expect(await enforcer.decide(allow("/bool-allow"))).toMatchObject({ allow: true, cached: false });
      expect(await open.decide(allow("/bool-allow"))).toMatchObject({
        allow: true,
        failOpen: true,
        cached: false,
      });
      expect(await open.decide(allow("/bool-allow"))).toMatchObject({ failOpen: true, cached: false });
    } finally {
      proxy.fault = { kind: "pass" };
      await enforcer.close();
      await open.close();
    }
  });

  it("concurrent misses on one key make one evaluation", async () => {
    const enforcer = enforcerFor("remote", [], { cache: { max: 10, ttlMs: 60_000 } });
    try {
      proxy.fault = { kind: "delay", ms: 300 };
      const before = posts();
      const decisions = await Promise.all(
        Array.from({ length: 10 }, () => enforcer.decide(allow("/bool-allow"))),
      );
      expect(posts() - before).toBe(1);
      expect(decisions.every((d) => d.allow)).toBe(true);
      expect(decisions.filter((d) => d.cached)).toHaveLength(9);
    } finally {
      proxy.fault = { kind: "pass" };
      await enforcer.close();
    }
  });

  it("memory is bounded by max, a key of undefined skips the cache, and entries expire after ttlMs", async () => {
    const numbered = (n?: number) => ({ ...allow("/bool-allow"), n });
    const enforcer = enforcerFor("embedded", [], {
      cache: {
        max: 5,
        ttlMs: 300,
        key: (input) => {
          const n = (input as { n?: number }).n;
          return n === undefined ? undefined : `k${n}`;
        },
      },
    });
    try {
      await enforcer.ready();
      for (let i = 0; i < 20; i++) expect((await enforcer.decide(numbered(i))).allow).toBe(true);
      // Only the 5 most recent keys survived.
      for (let i = 19; i >= 0; i--)
        expect((await enforcer.decide(numbered(i))).cached, `k${i}`).toBe(i >= 15);
      expect((await enforcer.decide(numbered())).cached).toBe(false);
      expect((await enforcer.decide(numbered())).cached).toBe(false);
      const kept = await enforcer.decide(numbered(0));
      expect(kept.cached).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect((await enforcer.decide(numbered(0))).cached).toBe(false);
    } finally {
      await enforcer.close();
    }
  });

  it("an answer from another revision flushes every entry of the previous one", async () => {
    const other = await buildBundles(CONFORMANCE_DIR, "prod-2", CONFORMANCE_ENTRYPOINT);
    const second = await startOpaServer(["--bundle", other.rego]);
    let target = opa.url;
    const balancer = await startSwitchingProxy(() => target);
    const key = (input: unknown) => (input as { k: string }).k;
    const plain = createEnforcer({
      opa: { url: balancer.url, path: CONFORMANCE_ENTRYPOINT },
      cache: { max: 10, ttlMs: 60_000, key },
    });
    const pinned = createEnforcer({
      opa: { url: balancer.url, path: CONFORMANCE_ENTRYPOINT },
      expectedRevision: "prod-1",
      cache: { max: 10, ttlMs: 60_000, key },
      log: () => {},
    });
    const request = (k: string) => ({ ...allow("/bool-allow"), k });
    try {
      for (const enforcer of [plain, pinned]) {
        expect(await enforcer.decide(request("a"))).toMatchObject({ revision: "prod-1", cached: false });
        expect(await enforcer.decide(request("a"))).toMatchObject({ revision: "prod-1", cached: true });
      }
      target = second.url;
      // A miss reveals the new revision: nothing of prod-1 is served after it.
      expect(await plain.decide(request("b"))).toMatchObject({ revision: "prod-2", cached: false });
      expect(await plain.decide(request("a"))).toMatchObject({ revision: "prod-2", cached: false });
      // Pinned to prod-1, the app refuses prod-2's answers and caches none of them.
      expect(await pinned.decide(request("b"))).toMatchObject({ status: 503, cached: false });
      expect(await pinned.decide(request("a"))).toMatchObject({ status: 503, cached: false });
      expect(await pinned.decide(request("a"))).toMatchObject({ status: 503, cached: false });
    } finally {
      await plain.close();
      await pinned.close();
      await balancer.close();
      await second.stop();
    }
  });
});
