import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { createEnforcer, type Decision } from "../../src/enforcer/index.ts";
import { buildBundles } from "../helpers/enforcer-fixtures.ts";
import { repoRoot } from "../helpers/tools.ts";

/** ?n=1300 makes the spin policy evaluate for about 2 s on this machine's wasm runtime; n=3 is instant. */
const SLOW = { request: { http: { querystring: { n: "1300" } } } };
const FAST = { request: { http: { querystring: { n: "3" } } } };
/** A few hundred milliseconds of evaluation: slow, but within any budget below. */
const SLOWISH = { request: { http: { querystring: { n: "500" } } } };
const TIMEOUT_MS = 1500;

let wasm: string;
beforeAll(async () => {
  wasm = (await buildBundles(path.join(repoRoot, "test/fixtures/spin"), "spin-batch-1", "spin/decision"))
    .wasm;
});

/** Decides every input in the same turn of the event loop, so they travel to the workers in batches. */
async function decideTogether(decide: (input: unknown) => Promise<Decision>, inputs: unknown[]) {
  const started = performance.now();
  return Promise.all(
    inputs.map(async (input) => {
      const decision = await decide(input);
      return { decision, ms: performance.now() - started };
    }),
  );
}

describe("decisions sent to a worker together do not wait for one another", () => {
  it("a slow input in a batch is cut at timeoutMs; the inputs around it are answered without waiting for it", async () => {
    const logs: string[] = [];
    const enforcer = createEnforcer({
      bundle: wasm,
      entrypoint: "spin/decision",
      workers: 2,
      timeoutMs: TIMEOUT_MS,
      log: (message) => logs.push(message),
    });
    try {
      await enforcer.ready();
      // Twelve at once on two workers: the slow one shares a message with fast ones before and after it.
      const inputs = [FAST, FAST, FAST, SLOW, ...Array.from({ length: 8 }, () => FAST)];
      const answers = await decideTogether((input) => enforcer.decide(input), inputs);
      const slow = answers[3] as (typeof answers)[number];
      expect(slow.decision).toMatchObject({ allow: false, status: 500 });
      expect(slow.ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 5);
      expect(slow.ms).toBeLessThan(TIMEOUT_MS + 400);
      expect(logs.join("\n")).toMatch(/timed out; its worker was recycled/);
      const fast = answers.filter((_, index) => index !== 3);
      for (const { decision, ms } of fast) {
        expect(decision).toMatchObject({ allow: true, status: 200 });
        // Neither held until the slow one is cut, nor failed with it; the bound leaves room for a busy runner.
        expect(ms).toBeLessThan(TIMEOUT_MS / 2);
      }
      // The recycled worker's replacement serves the next decisions.
      const after = await decideTogether((input) => enforcer.decide(input), Array(6).fill(FAST));
      expect(after.every(({ decision }) => decision.allow)).toBe(true);
    } finally {
      await enforcer.close();
    }
  });

  it("with every worker busy on a slow input, the others wait for a worker and are answered once one is free", async () => {
    const enforcer = createEnforcer({
      bundle: wasm,
      entrypoint: "spin/decision",
      workers: 2,
      timeoutMs: 30_000,
      log: () => {},
    });
    try {
      await enforcer.ready();
      const answers = await decideTogether(
        (input) => enforcer.decide(input),
        [SLOWISH, FAST, SLOWISH, FAST, FAST, FAST],
      );
      // Each spin runs to completion, well within its budget; nothing fails.
      expect(answers.map(({ decision }) => decision.status)).toEqual([200, 200, 200, 200, 200, 200]);
    } finally {
      await enforcer.close();
    }
  });

  it("many concurrent decisions give the same answers as one at a time", async () => {
    const enforcer = createEnforcer({ bundle: wasm, entrypoint: "spin/decision", workers: 2, log: () => {} });
    const inputs = Array.from({ length: 300 }, (_, i) => ({
      request: { http: { querystring: { n: String(i % 7) } } },
      i,
    }));
    try {
      await enforcer.ready();
      const together = await decideTogether((input) => enforcer.decide(input), inputs);
      expect(together.every(({ decision }) => decision.allow && decision.status === 200)).toBe(true);
      expect(new Set(together.map(({ decision }) => decision.decisionId)).size).toBe(inputs.length);
    } finally {
      await enforcer.close();
    }
  });

  it("close() answers the decisions still waiting, and later ones, with a 500", async () => {
    const enforcer = createEnforcer({ bundle: wasm, entrypoint: "spin/decision", workers: 1, log: () => {} });
    await enforcer.ready();
    const pending = [enforcer.decide(SLOW), enforcer.decide(FAST)];
    await new Promise((resolve) => setTimeout(resolve, 50));
    await enforcer.close();
    for (const decision of await Promise.all(pending)) {
      expect(decision).toMatchObject({ allow: false, status: 500 });
    }
    expect(await enforcer.decide(FAST)).toMatchObject({ allow: false, status: 500 });
  });
});
