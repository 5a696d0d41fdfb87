import { mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { createEnforcer } from "../../src/enforcer/index.ts";
import { startAdapterApp } from "../helpers/enforcer-apps.ts";
import { startOpaServer } from "../helpers/opa-server.ts";
import {
  readLogLines,
  SHADOW_ENTRYPOINT,
  STATUS_UNDER_A,
  useShadowPolicies,
} from "../helpers/shadow-fixtures.ts";

const policies = useShadowPolicies();

const logFile = async () =>
  path.join(await mkdtemp(path.join(os.tmpdir(), "policyship-shadow-")), "decisions.ndjson");

describe("the shadow's bounds", () => {
  it("a hung candidate with a small queue: responses are unaffected, samples past the queue are dropped and logged at once", async () => {
    const { a, b } = policies();
    const hung = await startOpaServer(["--bundle", b.rego]);
    const file = await logFile();
    const SHADOW_TIMEOUT_MS = 4_000;
    const enforcer = createEnforcer({
      opa: { url: a.opa.url, path: SHADOW_ENTRYPOINT },
      shadow: {
        opa: { url: hung.url, path: SHADOW_ENTRYPOINT },
        maxQueue: 2,
        concurrency: 1,
        timeoutMs: SHADOW_TIMEOUT_MS,
      },
      timeoutMs: 2_000,
      decisionLog: file,
      log: () => {},
    });
    await enforcer.ready();
    const app = await startAdapterApp("express", enforcer);
    process.kill(hung.pid as number, "SIGSTOP");
    let closed = false;
    try {
      const paths = Array.from({ length: 10 }, (_, index) => (index % 2 === 0 ? "/public" : "/secret"));
      const answers = await Promise.all(
        paths.map(async (requested) => {
          const started = performance.now();
          const response = await fetch(`${app.url}${requested}`);
          await response.arrayBuffer();
          return { path: requested, status: response.status, ms: performance.now() - started };
        }),
      );
      for (const answer of answers) {
        expect(answer.status).toBe(STATUS_UNDER_A[answer.path]);
        expect(answer.ms).toBeLessThan(2_000);
      }
      // One sample in flight and two queued; the other seven were dropped.
      expect(enforcer.shadowStats()).toMatchObject({ evaluated: 0, dropped: 7 });
      // A dropped sample's line does not wait for the candidate.
      let unshadowed = 0;
      for (let tries = 0; tries < 50 && unshadowed < 7; tries++) {
        await sleep(40);
        unshadowed = (await readLogLines(file)).filter((line) => !line.custom.policyship.shadow).length;
      }
      expect(unshadowed).toBe(7);
      const closing = performance.now();
      await enforcer.close();
      closed = true;
      // close() waits for the shadow at most about its timeout, then gives up on it.
      expect(performance.now() - closing).toBeLessThan(SHADOW_TIMEOUT_MS + 2_000);
    } finally {
      process.kill(hung.pid as number, "SIGCONT");
      await app.close();
      if (!closed) await enforcer.close();
      await hung.stop();
    }
    const stats = enforcer.shadowStats();
    expect(stats?.evaluated).toBeGreaterThanOrEqual(1);
    expect((stats?.evaluated ?? 0) + (stats?.dropped ?? 0)).toBe(10);
    expect(stats?.errors).toBe(stats?.evaluated);
    const lines = await readLogLines(file);
    expect(lines).toHaveLength(10);
    const shadowed = lines.filter((line) => line.custom.policyship.shadow);
    expect(shadowed).toHaveLength(stats?.evaluated ?? -1);
    for (const line of shadowed) {
      expect(line.custom.policyship.shadow).toMatchObject({ allow: null, flip: "to_error", differs: true });
    }
  });

  it("close() waits for queued samples, so every sampled line carries its candidate's outcome", async () => {
    const { a, b } = policies();
    const file = await logFile();
    const enforcer = createEnforcer({
      opa: { url: a.opa.url, path: SHADOW_ENTRYPOINT },
      shadow: { opa: { url: b.opa.url, path: SHADOW_ENTRYPOINT }, concurrency: 1 },
      timeoutMs: 10_000,
      decisionLog: file,
      log: () => {},
    });
    await enforcer.ready();
    try {
      for (let index = 0; index < 20; index++) {
        await enforcer.decide({ request: { http: { path: index % 2 ? "/admin" : "/public" } } });
      }
    } finally {
      await enforcer.close();
    }
    expect(enforcer.shadowStats()).toEqual({ evaluated: 20, differed: 10, dropped: 0, errors: 0 });
    const lines = await readLogLines(file);
    expect(lines).toHaveLength(20);
    expect(lines.filter((line) => line.custom.policyship.shadow?.differs === true)).toHaveLength(10);
    expect(lines.every((line) => line.custom.policyship.shadow !== undefined)).toBe(true);
  });

  it("sampleRate 0 evaluates nothing and logs every line without a shadow outcome", async () => {
    const { a, b } = policies();
    const file = await logFile();
    const enforcer = createEnforcer({
      opa: { url: a.opa.url, path: SHADOW_ENTRYPOINT },
      shadow: { opa: { url: b.opa.url, path: SHADOW_ENTRYPOINT }, sampleRate: 0 },
      onShadow: () => {
        throw new Error("not sampled");
      },
      timeoutMs: 10_000,
      decisionLog: file,
      log: () => {},
    });
    await enforcer.ready();
    try {
      for (const requested of ["/public", "/admin", "/secret"]) {
        await enforcer.decide({ request: { http: { path: requested } } });
      }
    } finally {
      await enforcer.close();
    }
    expect(enforcer.shadowStats()).toEqual({ evaluated: 0, differed: 0, dropped: 0, errors: 0 });
    const lines = await readLogLines(file);
    expect(lines).toHaveLength(3);
    expect(lines.some((line) => line.custom.policyship.shadow)).toBe(false);
  });
});
