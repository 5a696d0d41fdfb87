import { copyFile, mkdtemp, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createEnforcer, type EnforcerOptions } from "../../src/enforcer/index.ts";
import { runCli } from "../helpers/cli.ts";
import { startAdapterApp } from "../helpers/enforcer-apps.ts";
import { startOpaServer } from "../helpers/opa-server.ts";
import { readLogLines, SHADOW_ENTRYPOINT, useShadowPolicies } from "../helpers/shadow-fixtures.ts";
import { repoRoot } from "../helpers/tools.ts";

/**
 * What an app's hooks and a hostile candidate can do to the enforced side: nothing. A rejecting hook is a
 * counted error, a queue is bounded in bytes, a line never waits past the candidate's timeout, and the
 * candidate's odd revision is bounded before it is logged. Real OPAs (A enforced, B the candidate).
 */

const policies = useShadowPolicies();

const logFile = async () =>
  path.join(await mkdtemp(path.join(os.tmpdir(), "policyship-shadow-hostile-")), "decisions.ndjson");

const request = (requested: string, pad = "") => ({ request: { http: { path: requested }, pad } });

let unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
beforeEach(() => {
  unhandled = [];
  process.on("unhandledRejection", onUnhandled);
});
afterEach(() => {
  process.off("unhandledRejection", onUnhandled);
});

function enforcerWith(extra: Partial<EnforcerOptions>, messages: string[] = []) {
  const { a, b } = policies();
  return createEnforcer({
    opa: { url: a.opa.url, path: SHADOW_ENTRYPOINT },
    shadow: { opa: { url: b.opa.url, path: SHADOW_ENTRYPOINT } },
    log: (message) => messages.push(message),
    ...extra,
  });
}

describe("an app's hooks cannot reach the decision", () => {
  it("an async onShadow that rejects is a counted error, never an unhandled rejection", async () => {
    const messages: string[] = [];
    const enforcer = enforcerWith(
      {
        onShadow: async () => {
          throw new Error("onShadow went wrong");
        },
      },
      messages,
    );
    await enforcer.ready();
    for (const requested of ["/public", "/admin", "/secret"]) await enforcer.decide(request(requested));
    await enforcer.close();
    await sleep(50);
    expect(unhandled).toEqual([]);
    expect(enforcer.shadowStats()).toMatchObject({ evaluated: 3, errors: 3 });
    expect(messages.filter((m) => m === "onShadow threw: onShadow went wrong")).toHaveLength(3);
  });

  it("an onDecision that throws or rejects is logged, and the decision stands", async () => {
    for (const onDecision of [
      () => {
        throw new Error("sync onDecision");
      },
      async () => {
        throw new Error("async onDecision");
      },
    ]) {
      const messages: string[] = [];
      const enforcer = enforcerWith({ onDecision: onDecision as () => void }, messages);
      await enforcer.ready();
      const app = await startAdapterApp("express", enforcer);
      try {
        const allowed = await fetch(`${app.url}/public`);
        await allowed.arrayBuffer();
        expect(allowed.status).toBe(200);
        const denied = await fetch(`${app.url}/secret`);
        await denied.arrayBuffer();
        expect(denied.status).toBe(403);
        expect((await enforcer.decide(request("/public"))).allow).toBe(true);
      } finally {
        await app.close();
        await enforcer.close();
      }
      await sleep(50);
      expect(unhandled).toEqual([]);
      expect(messages.filter((m) => /^onDecision threw: (a)?sync onDecision$/.test(m))).toHaveLength(3);
    }
  });
});

describe("what the candidate sees and holds", () => {
  it("evaluates the input as it was at the decision, whatever the caller does to its object afterwards", async () => {
    const file = await logFile();
    const seen: unknown[] = [];
    const enforcer = enforcerWith({ decisionLog: file, onShadow: (event) => void seen.push(event.input) });
    await enforcer.ready();
    // A allows /admin, the candidate B closes it: the candidate must answer for /admin, not /public.
    const input = request("/admin");
    const decision = await enforcer.decide(input);
    input.request.http.path = "/public";
    await enforcer.close();
    expect(decision.allow).toBe(true);
    expect(seen).toEqual([request("/admin")]);
    const [line] = await readLogLines(file);
    expect(line?.custom.policyship.shadow).toMatchObject({
      allow: false,
      differs: true,
      flip: "allow_to_deny",
    });
  });

  it("bounds the queue in bytes of serialized input: samples past shadow.maxQueueBytes are dropped", async () => {
    const { b } = policies();
    const hung = await startOpaServer(["--bundle", b.rego]);
    const enforcer = enforcerWith({
      shadow: {
        opa: { url: hung.url, path: SHADOW_ENTRYPOINT },
        concurrency: 1,
        maxQueue: 100,
        maxQueueBytes: 20_000,
        timeoutMs: 3_000,
      },
    });
    await enforcer.ready();
    process.kill(hung.pid as number, "SIGSTOP");
    try {
      // About 6 KB each: three fit in 20 000 bytes (one running, two queued), the other seven do not.
      for (let index = 0; index < 10; index++) await enforcer.decide(request("/public", "x".repeat(6_000)));
      expect(enforcer.shadowStats()).toMatchObject({ dropped: 7 });
    } finally {
      process.kill(hung.pid as number, "SIGCONT");
      await enforcer.close();
      await hung.stop();
    }
  });

  it("never holds a line past the candidate's timeout: a sample still queued at its deadline is dropped", async () => {
    const { b } = policies();
    const hung = await startOpaServer(["--bundle", b.rego]);
    const file = await logFile();
    const SHADOW_TIMEOUT_MS = 300;
    const enforcer = enforcerWith({
      shadow: {
        opa: { url: hung.url, path: SHADOW_ENTRYPOINT },
        concurrency: 1,
        timeoutMs: SHADOW_TIMEOUT_MS,
      },
      decisionLog: file,
    });
    await enforcer.ready();
    process.kill(hung.pid as number, "SIGSTOP");
    try {
      const decided = performance.now();
      await Promise.all(Array.from({ length: 10 }, () => enforcer.decide(request("/public"))));
      let lines = 0;
      while (lines < 10 && performance.now() - decided < 5_000) {
        await sleep(20);
        lines = (await readLogLines(file).catch(() => [])).length;
      }
      // Before: one sample at a time, each waiting its whole timeout after the one before (about 3 s).
      expect(lines).toBe(10);
      expect(performance.now() - decided).toBeLessThan(SHADOW_TIMEOUT_MS + 700);
      // One evaluated and timed out (another may start with its deadline all but spent); the rest dropped.
      const stats = enforcer.shadowStats();
      expect(stats?.evaluated).toBeGreaterThanOrEqual(1);
      expect(stats?.errors).toBe(stats?.evaluated);
      expect((stats?.evaluated ?? 0) + (stats?.dropped ?? 0)).toBe(10);
      expect(stats?.dropped).toBeGreaterThanOrEqual(7);
    } finally {
      process.kill(hung.pid as number, "SIGCONT");
      await enforcer.close();
      await hung.stop();
    }
    const lines = await readLogLines(file);
    expect(lines.filter((line) => line.custom.policyship.shadow === undefined)).toHaveLength(
      enforcer.shadowStats()?.dropped ?? -1,
    );
  });

  it("bounds the revision a candidate reports before it is logged", async () => {
    const bundle = await mkdtemp(path.join(os.tmpdir(), "policyship-shadow-longrev-"));
    const long = `cand rev with spaces ${"r".repeat(5_000)}`;
    await copyFile(
      path.join(repoRoot, "test/fixtures/shadow/b/policy.rego"),
      path.join(bundle, "policy.rego"),
    );
    await writeFile(path.join(bundle, ".manifest"), JSON.stringify({ revision: long, roots: ["shadow"] }));
    const candidate = await startOpaServer(["--bundle", bundle]);
    const file = await logFile();
    const revisions: unknown[] = [];
    const enforcer = enforcerWith({
      shadow: { opa: { url: candidate.url, path: SHADOW_ENTRYPOINT } },
      decisionLog: file,
      onShadow: (event) => void revisions.push(event.shadow.revision),
    });
    try {
      await enforcer.ready();
      await enforcer.decide(request("/admin"));
    } finally {
      await enforcer.close();
      await candidate.stop();
    }
    const cut = `${long.slice(0, 256)}…(truncated)`;
    expect(revisions).toEqual([cut]);
    const [line] = await readLogLines(file);
    expect(line?.custom.policyship.shadow).toMatchObject({ revision: cut, allow: false, differs: true });
  });

  it("an answer with more headers than impact --shadow reads is the candidate's error, and the day's report reads", async () => {
    const bundle = await mkdtemp(path.join(os.tmpdir(), "policyship-shadow-headers-"));
    await writeFile(
      path.join(bundle, "policy.rego"),
      'package shadow\n\ndecision := {"allow": true, "headers": {sprintf("x-h%d", [i]): "v" | some i in numbers.range(0, 1000)}}\n',
    );
    await writeFile(
      path.join(bundle, ".manifest"),
      JSON.stringify({ revision: "many-headers", roots: ["shadow"] }),
    );
    const candidate = await startOpaServer(["--bundle", bundle]);
    const file = await logFile();
    const enforcer = enforcerWith({
      shadow: { opa: { url: candidate.url, path: SHADOW_ENTRYPOINT } },
      decisionLog: file,
    });
    try {
      await enforcer.ready();
      expect((await enforcer.decide(request("/public"))).allow).toBe(true);
    } finally {
      await enforcer.close();
      await candidate.stop();
    }
    expect(enforcer.shadowStats()).toMatchObject({ evaluated: 1, errors: 1 });
    const [line] = await readLogLines(file);
    expect(line?.custom.policyship.shadow).toMatchObject({ allow: null, flip: "to_error", headers: {} });
    expect(line?.custom.policyship.shadow?.error).toMatch(/more than 1000 headers/);
    const report = await runCli(["impact", "--shadow", "--decisions", file, "--json"], {
      cwd: path.dirname(file),
    });
    expect(report.exitCode, report.stderr).toBe(0);
    expect(JSON.parse(report.stdout)).toMatchObject({ compared: 1, flips: { to_error: 1 } });
  });
});
