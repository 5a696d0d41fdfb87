import { mkdtemp, readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createEnforcer, type DecisionEvent, type EnforcerOptions } from "../../src/enforcer/index.ts";
import {
  ADAPTERS,
  ENGINES,
  type Handled,
  startAdapterApp,
  useConformanceEngines,
} from "../helpers/enforcer-apps.ts";
import { CONFORMANCE_ENTRYPOINT } from "../helpers/enforcer-fixtures.ts";

const optionsFor = useConformanceEngines("log-1");

interface LogLine {
  decision_id: string;
  path: string;
  input: { request: { http: { headers: Record<string, unknown>; path: string } } };
  result?: unknown;
  bundles?: Record<string, { revision: string }>;
  erased?: string[];
  timestamp: string;
  metrics: { timer_server_handler_ns: number };
  custom: { policyship: { outcome: string; audited: boolean; would: string; cached: boolean } };
}

const readLines = async (file: string) =>
  (await readFile(file, "utf8"))
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as LogLine);

describe("decision logs in OPA's event shape", () => {
  for (const engine of ENGINES) {
    for (const adapter of ADAPTERS) {
      it(`${adapter}, ${engine}: one line per decision, masked, with the handler's decisionId`, async () => {
        const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-log-"));
        const file = path.join(dir, "decisions.ndjson");
        const enforcer = createEnforcer(
          optionsFor(engine, {
            decisionLog: { sink: file, mask: ["/input/request/http/headers/x-api-key"] },
          }),
        );
        await enforcer.ready();
        const app = await startAdapterApp(adapter, enforcer);
        let allowed: Handled;
        try {
          allowed = (await (
            await fetch(`${app.url}/object-allow`, {
              headers: {
                "x-api-key": "alice-key",
                authorization: "Bearer SENTINEL-token",
                cookie: "s=SENTINEL",
              },
            })
          ).json()) as Handled;
          expect((await fetch(`${app.url}/bool-deny`)).status).toBe(403);
        } finally {
          await app.close();
          await enforcer.close();
        }
        const lines = await readLines(file);
        expect(lines).toHaveLength(2);
        const [first, second] = lines as [LogLine, LogLine];
        expect(first).toMatchObject({
          path: CONFORMANCE_ENTRYPOINT,
          result: { allow: true, headers: { "x-user": "alice" } },
          bundles: { authz: { revision: "log-1" } },
          custom: { policyship: { outcome: "allow", audited: false } },
        });
        expect(first.decision_id).toBe(allowed.authz?.decisionId);
        expect(new Date(first.timestamp).getTime()).toBeGreaterThan(Date.now() - 60_000);
        expect(first.metrics.timer_server_handler_ns).toBeGreaterThan(0);
        expect(first.input.request.http.path).toBe("/object-allow");
        expect(first.erased?.sort()).toEqual([
          "/input/request/http/headers/authorization",
          "/input/request/http/headers/cookie",
          "/input/request/http/headers/x-api-key",
        ]);
        expect(JSON.stringify(lines)).not.toContain("SENTINEL");
        expect(JSON.stringify(lines)).not.toContain("alice-key");
        expect(second).toMatchObject({ result: false, custom: { policyship: { outcome: "deny" } } });
      });
    }
  }

  it("audit mode marks each line audited, with what enforce mode would have done", async () => {
    const lines: string[] = [];
    const enforcer = createEnforcer(
      optionsFor("embedded", { mode: "audit", decisionLog: { write: (line: string) => lines.push(line) } }),
    );
    const app = await startAdapterApp("express", enforcer);
    try {
      const body = (await (await fetch(`${app.url}/object-deny`)).json()) as Handled;
      expect(body.handled).toBe(true);
      await new Promise((resolve) => setImmediate(resolve));
      const line = JSON.parse(lines[0] as string) as LogLine;
      expect(line.custom.policyship).toMatchObject({ audited: true, would: "deny" });
      expect(line.decision_id).toBe(body.authz?.decisionId);
    } finally {
      await app.close();
      await enforcer.close();
    }
  });

  it("sampleRate logs about that share of decisions", async () => {
    const lines: string[] = [];
    const enforcer = createEnforcer(
      optionsFor("embedded", {
        inThread: true,
        decisionLog: { sink: { write: (line: string) => lines.push(line) }, sampleRate: 0.25 },
      }),
    );
    const input = { request: { http: { method: "GET", path: "/bool-allow", headers: {}, querystring: {} } } };
    for (let i = 0; i < 2000; i++) await enforcer.decide(input);
    await enforcer.close();
    expect(lines.length).toBeGreaterThan(350);
    expect(lines.length).toBeLessThan(650);
  });

  it("a slow sink never delays a decision by more than 1 ms at p99; lines past the bound are dropped and counted", async () => {
    // A sink that takes 20 ms per write and signals backpressure after 4 KiB.
    let received = 0;
    const slow = new Writable({
      highWaterMark: 4096,
      write(_chunk, _encoding, callback) {
        received++;
        setTimeout(callback, 20);
      },
    });
    const input = { request: { http: { method: "GET", path: "/bool-allow", headers: {}, querystring: {} } } };
    const measure = async (extra: Partial<EnforcerOptions>) => {
      const enforcer = createEnforcer(optionsFor("embedded", { inThread: true, ...extra }));
      await enforcer.ready();
      const latencies: number[] = [];
      for (let i = 0; i < 3000; i++) {
        const started = performance.now();
        await enforcer.decide(input);
        latencies.push(performance.now() - started);
        if (i % 100 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      const stats = enforcer.logStats();
      await enforcer.close();
      latencies.sort((a, b) => a - b);
      return { p99: latencies[Math.floor(latencies.length * 0.99)] as number, stats };
    };
    const none = await measure({});
    const logged = await measure({ decisionLog: { sink: slow, maxPending: 100 } });
    expect(logged.p99 - none.p99).toBeLessThan(1);
    expect(logged.stats?.dropped).toBeGreaterThan(0);
    expect((logged.stats?.written ?? 0) + (logged.stats?.dropped ?? 0)).toBeLessThanOrEqual(3000);
    expect(received).toBeGreaterThan(0);
  });

  it("a sink that throws costs the line, never the request", async () => {
    const enforcer = createEnforcer(
      optionsFor("embedded", {
        decisionLog: {
          write: () => {
            throw new Error("disk full");
          },
        },
      }),
    );
    const decision = await enforcer.decide({
      request: { http: { method: "GET", path: "/bool-allow", headers: {}, querystring: {} } },
    });
    expect(decision.allow).toBe(true);
    await new Promise((resolve) => setImmediate(resolve));
    await enforcer.close();
  });

  it("refuses a mask outside /input and /result, and a sample rate outside 0–1", () => {
    expect(() =>
      createEnforcer(optionsFor("embedded", { decisionLog: { sink: "x.log", mask: ["/labels/x"] } })),
    ).toThrow(/JSON Pointers under \/input or \/result/);
    expect(() =>
      createEnforcer(optionsFor("embedded", { decisionLog: { sink: "x.log", sampleRate: 2 } })),
    ).toThrow(/sampleRate must be a number from 0 to 1/);
  });
});

describe("onDecision events carry what the log carries", () => {
  it("the event's decision holds the policy's raw result", async () => {
    const events: DecisionEvent[] = [];
    const enforcer = createEnforcer(optionsFor("remote", { onDecision: (event) => events.push(event) }));
    await enforcer.decide({
      request: { http: { method: "GET", path: "/object-message", headers: {}, querystring: {} } },
    });
    await enforcer.close();
    expect(events[0]?.decision.result).toEqual({
      allow: false,
      status: 429,
      message: { error: "slow down", retry_after: 3 },
    });
  });
});
