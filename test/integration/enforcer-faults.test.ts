import { execFileSync } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEnforcer, type Enforcer, withAuthorization } from "../../src/enforcer/index.ts";
import { runCli } from "../helpers/cli.ts";
import { buildBundles, CONFORMANCE_DIR, CONFORMANCE_ENTRYPOINT } from "../helpers/enforcer-fixtures.ts";
import { type FaultProxy, startFaultProxy } from "../helpers/fault-proxy.ts";
import { type RunningOpa, startOpaServer } from "../helpers/opa-server.ts";
import { freePort } from "../helpers/ports.ts";
import { awsEnv, createBucket, minio } from "../helpers/s3.ts";
import { repoRoot, toolPath } from "../helpers/tools.ts";

const TIMEOUT_MS = 300;
const allowInput = {
  request: { http: { method: "GET", path: "/bool-allow", headers: {}, querystring: {} } },
  client_ip: "127.0.0.1",
};

let opa: RunningOpa;
let proxy: FaultProxy;
let bundles: Awaited<ReturnType<typeof buildBundles>>;

beforeAll(async () => {
  bundles = await buildBundles(CONFORMANCE_DIR, "faults-1", CONFORMANCE_ENTRYPOINT);
  opa = await startOpaServer(["--bundle", bundles.rego]);
  proxy = await startFaultProxy(opa.url);
});
afterAll(async () => {
  await proxy?.close();
  await opa?.stop();
});

/** A node:http app behind the enforcer that counts handler calls. */
async function app(enforcer: Enforcer) {
  let handled = 0;
  const server = http.createServer(
    withAuthorization(enforcer, (_req, res) => {
      handled++;
      res.end("handled");
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    handled: () => handled,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe("OPA faults fail closed within the timeout, and recover", () => {
  const faults = [
    { name: "slower than timeoutMs", fault: { kind: "delay", ms: TIMEOUT_MS + 700 } },
    { name: "HTTP 500", fault: { kind: "status", status: 500 } },
    { name: "HTTP 404", fault: { kind: "status", status: 404, body: '{"code":"resource_not_found"}' } },
    { name: "malformed JSON", fault: { kind: "garbage" } },
    { name: "a huge response body", fault: { kind: "huge", bytes: 4 * 1024 * 1024 } },
    { name: "a reset before the response", fault: { kind: "reset" } },
    { name: "a reset mid-response", fault: { kind: "reset-mid-response" } },
  ] as const;

  for (const { name, fault } of faults) {
    // The bound is wall-clock on two busy cores; a retry absorbs one scheduler stall, never a slow enforcer.
    it(`${name} → 500, handler not called, then recovers`, { retry: 2 }, async () => {
      const logs: string[] = [];
      const enforcer = createEnforcer({
        opa: { url: proxy.url, path: CONFORMANCE_ENTRYPOINT },
        timeoutMs: TIMEOUT_MS,
        log: (message) => logs.push(message),
      });
      await enforcer.ready();
      const server = await app(enforcer);
      try {
        proxy.fault = fault;
        const started = performance.now();
        const response = await fetch(`${server.url}/bool-allow`);
        const elapsed = performance.now() - started;
        expect(response.status).toBe(500);
        expect(await response.json()).toEqual({ message: "An unexpected error occurred" });
        expect(elapsed).toBeLessThan(TIMEOUT_MS + 50);
        expect(server.handled()).toBe(0);
        expect(logs.join("\n")).toMatch(/OPA/);

        proxy.fault = { kind: "pass" };
        const recovered = await fetch(`${server.url}/bool-allow`);
        expect(recovered.status).toBe(200);
        expect(server.handled()).toBe(1);
      } finally {
        proxy.fault = { kind: "pass" };
        await server.close();
        await enforcer.close();
      }
    });
  }

  it("OPA down → 500 within the timeout; back up → allowed again", async () => {
    const port = await freePort();
    const enforcer = createEnforcer({
      opa: { url: `http://127.0.0.1:${port}`, path: CONFORMANCE_ENTRYPOINT },
      timeoutMs: TIMEOUT_MS,
      log: () => {},
    });
    await enforcer.ready();
    const server = await app(enforcer);
    let late: RunningOpa | undefined;
    try {
      const started = performance.now();
      const response = await fetch(`${server.url}/bool-allow`);
      expect(response.status).toBe(500);
      expect(performance.now() - started).toBeLessThan(TIMEOUT_MS + 50);
      expect(server.handled()).toBe(0);
      late = await startOpaServer(["--bundle", bundles.rego, "--addr", `127.0.0.1:${port}`]);
      const recovered = await fetch(`${server.url}/bool-allow`);
      expect(recovered.status).toBe(200);
      expect(server.handled()).toBe(1);
    } finally {
      await server.close();
      await enforcer.close();
      await late?.stop();
    }
  });

  it("bounds calls in flight, so an outage cannot queue without limit", async () => {
    const enforcer = createEnforcer({
      opa: { url: proxy.url, path: CONFORMANCE_ENTRYPOINT },
      timeoutMs: 1000,
      maxInFlight: 4,
      log: () => {},
    });
    try {
      proxy.fault = { kind: "delay", ms: 400 };
      const decisions = await Promise.all(Array.from({ length: 12 }, () => enforcer.decide(allowInput)));
      const refused = decisions.filter((d) => d.error?.includes("in flight"));
      expect(refused).toHaveLength(8);
      expect(decisions.filter((d) => d.allow)).toHaveLength(4);
    } finally {
      proxy.fault = { kind: "pass" };
      await enforcer.close();
    }
  });

  it("failOpen opens only for an unreachable OPA: reset, refused or timed out", async () => {
    const events: { failOpen: boolean; status: number }[] = [];
    const enforcer = createEnforcer({
      opa: { url: proxy.url, path: CONFORMANCE_ENTRYPOINT },
      timeoutMs: TIMEOUT_MS,
      failOpen: true,
      log: () => {},
      onDecision: (event) => events.push({ failOpen: event.failOpen, status: event.decision.status }),
    });
    const refused = createEnforcer({
      opa: { url: `http://127.0.0.1:${await freePort()}`, path: CONFORMANCE_ENTRYPOINT },
      timeoutMs: TIMEOUT_MS,
      failOpen: true,
      log: () => {},
    });
    try {
      for (const fault of [{ kind: "reset" }, { kind: "delay", ms: TIMEOUT_MS + 300 }] as const) {
        proxy.fault = fault;
        expect(await enforcer.decide(allowInput), fault.kind).toMatchObject({ allow: true, failOpen: true });
      }
      expect(await refused.decide(allowInput)).toMatchObject({ allow: true, failOpen: true });
      expect(events.map((event) => event.failOpen)).toEqual([true, true]);
    } finally {
      proxy.fault = { kind: "pass" };
      await enforcer.close();
      await refused.close();
    }
  });

  it("failOpen never opens a query OPA is still evaluating: the input chose its cost", async () => {
    // The spin policy costs n² steps, n from the query string; OPA answers /health all the while.
    const spin = await buildBundles(path.join(repoRoot, "test/fixtures/spin"), "spin-1", "spin/decision");
    const spinning = await startOpaServer(["--bundle", spin.rego]);
    const events: boolean[] = [];
    const enforcer = createEnforcer({
      opa: { url: spinning.url, path: "spin/decision" },
      timeoutMs: TIMEOUT_MS,
      failOpen: true,
      log: () => {},
      onDecision: (event) => events.push(event.failOpen),
    });
    const costing = (n: number) => ({
      request: { http: { method: "GET", path: "/", headers: {}, querystring: { n: String(n) } } },
      client_ip: "127.0.0.1",
    });
    try {
      expect(await enforcer.decide(costing(0))).toMatchObject({ allow: true });
      const started = performance.now();
      const decision = await enforcer.decide(costing(3000));
      expect(decision).toMatchObject({ allow: false, status: 500, errorKind: "answer" });
      expect(decision.failOpen).toBeUndefined();
      expect(decision.error).toMatch(/timed out while OPA answered its health check/);
      // timeoutMs, then at most the 100 ms health check.
      expect(performance.now() - started).toBeLessThan(TIMEOUT_MS + 100 + 150);
      expect(events).toEqual([false, false]);
    } finally {
      await enforcer.close();
      await spinning.stop();
    }
  });

  it("failOpen never opens a request whose input makes OPA drop the connection (a built-in that panics)", async () => {
    // OPA 1.22.2 panics in io.jwt.decode on a header whose cty is not a string; Go's server drops the
    // connection unanswered. /health still answers, so the drop is this input's doing: closed 500.
    const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-panic-"));
    await writeFile(
      path.join(dir, "crash.rego"),
      'package crash\n\ndefault allow := false\n\nallow if {\n\t[header, _, _] := io.jwt.decode(input.request.http.headers.authorization)\n\theader.alg == "HS256"\n}\n',
    );
    const bundles = await buildBundles(dir, "crash-1", "crash/allow");
    const crashing = await startOpaServer(["--bundle", bundles.rego]);
    const enforcer = createEnforcer({
      opa: { url: crashing.url, path: "crash/allow" },
      timeoutMs: 2000,
      failOpen: true,
      log: () => {},
    });
    const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const withToken = (token: string) => ({
      request: { http: { method: "GET", path: "/admin", headers: { authorization: token } } },
      client_ip: "127.0.0.1",
    });
    try {
      const panicking = `${part({ alg: "HS256", cty: 1 })}.${part({ sub: "x" })}.c2ln`;
      const decision = await enforcer.decide(withToken(panicking));
      expect(decision).toMatchObject({ allow: false, status: 500, errorKind: "answer" });
      expect(decision.failOpen).toBeUndefined();
      // OPA is still there, and still decides other inputs.
      const plain = `${part({ alg: "HS256" })}.${part({ sub: "x" })}.c2ln`;
      expect(await enforcer.decide(withToken(plain))).toMatchObject({ allow: true });
    } finally {
      await enforcer.close();
      await crashing.stop();
    }
  });

  it("failOpen never opens an answer OPA gave, a policy error, a mismatch, the in-flight limit or a bad input", async () => {
    const options = {
      opa: { url: proxy.url, path: CONFORMANCE_ENTRYPOINT },
      timeoutMs: 1000,
      failOpen: true,
      log: () => {},
    };
    const enforcer = createEnforcer(options);
    const withPath = (path: string) => ({
      ...allowInput,
      request: { http: { ...allowInput.request.http, path } },
    });
    try {
      // OPA answered: 500 (an evaluation error the input can provoke), 503, 404, garbage, too large.
      for (const fault of [
        { kind: "status", status: 500, body: '{"code":"internal_error","message":"eval_conflict_error"}' },
        { kind: "status", status: 503 },
        { kind: "status", status: 404 },
        { kind: "garbage" },
        { kind: "huge", bytes: 2 * 1024 * 1024 },
      ] as const) {
        proxy.fault = fault;
        const decision = await enforcer.decide(allowInput);
        expect(decision, JSON.stringify(fault)).toMatchObject({
          allow: false,
          status: 500,
          errorKind: "answer",
        });
        expect(decision.failOpen).toBeUndefined();
      }
      proxy.fault = { kind: "pass" };
      // What the policy returned: undefined, a wrong type, a bad header, a bad status.
      for (const path of ["/undefined", "/string-result", "/header-injection", "/bad-status"]) {
        expect(await enforcer.decide(withPath(path)), path).toMatchObject({ allow: false, status: 500 });
      }
      expect(await enforcer.decide(withPath("/bool-deny"))).toMatchObject({ allow: false, status: 403 });
      // An input that cannot be serialized (a cycle from a consumer function, say).
      const cyclic: Record<string, unknown> = { ...allowInput };
      cyclic.self = cyclic;
      expect(await enforcer.decide(cyclic)).toMatchObject({ allow: false, status: 500, errorKind: "input" });
      // A revision mismatch.
      const pinnedElsewhere = createEnforcer({ ...options, expectedRevision: "another-revision" });
      expect(await pinnedElsewhere.decide(allowInput)).toMatchObject({ allow: false, status: 503 });
      await pinnedElsewhere.close();
      // The in-flight limit.
      const narrow = createEnforcer({ ...options, maxInFlight: 1 });
      proxy.fault = { kind: "delay", ms: 300 };
      const [first, second] = await Promise.all([narrow.decide(allowInput), narrow.decide(allowInput)]);
      expect([first.allow, second]).toMatchObject([
        true,
        { allow: false, status: 500, errorKind: "overload" },
      ]);
      await narrow.close();
    } finally {
      proxy.fault = { kind: "pass" };
      await enforcer.close();
    }
  });
});

describe("the revision guard", () => {
  let pinned: RunningOpa;
  let pinnedProxy: FaultProxy;

  beforeAll(async () => {
    // A real deployment shape: the bundle published to S3 and OPA started on the rendered config.
    const bucket = await createBucket();
    const store = ["--bucket", bucket, "--endpoint", minio().endpoint];
    const out = path.dirname(path.dirname(bundles.rego));
    const published = await runCli(
      ["publish", "--revision", "faults-1", "--out", path.dirname(bundles.rego), ...store],
      {
        cwd: out,
        env: awsEnv(),
      },
    );
    expect(published.exitCode, published.stderr).toBe(0);
    const configFile = path.join(out, "opa-config.yaml");
    const rendered = await runCli(["config", "--revision", "faults-1", ...store, "-o", configFile], {
      cwd: out,
      env: awsEnv(),
    });
    expect(rendered.exitCode, rendered.stderr).toBe(0);
    pinned = await startOpaServer(["--config-file", configFile], { env: awsEnv(), waitForBundles: true });
    pinnedProxy = await startFaultProxy(pinned.url);
  });
  afterAll(async () => {
    await pinnedProxy?.close();
    await pinned?.stop();
  });

  it("allows when OPA serves the expected revision, without a second round trip per request", async () => {
    const enforcer = createEnforcer({
      opa: { url: pinnedProxy.url, path: CONFORMANCE_ENTRYPOINT },
      expectedRevision: "faults-1",
      revisionRefreshMs: 60_000,
    });
    try {
      await enforcer.ready();
      pinnedProxy.requests.length = 0;
      for (let i = 0; i < 20; i++)
        expect(await enforcer.decide(allowInput)).toMatchObject({ allow: true, revision: "faults-1" });
      expect(pinnedProxy.requests.filter((r) => r.startsWith("GET /v1/status"))).toHaveLength(0);
      expect(pinnedProxy.requests.filter((r) => r.startsWith("POST /v1/data/"))).toHaveLength(20);
    } finally {
      await enforcer.close();
    }
  });

  it("answers 503 policy revision mismatch when OPA serves another revision", async () => {
    const logs: string[] = [];
    const enforcer = createEnforcer({
      opa: { url: pinned.url, path: CONFORMANCE_ENTRYPOINT },
      expectedRevision: "app-revision-2",
      log: (message) => logs.push(message),
    });
    const server = await app(enforcer);
    try {
      const response = await fetch(`${server.url}/bool-allow`);
      expect(response.status).toBe(503);
      expect(await response.json()).toEqual({ message: "policy revision mismatch" });
      expect(server.handled()).toBe(0);
      expect(logs.join("\n")).toContain(
        "the answer came from policy revision faults-1, the app expects app-revision-2",
      );
    } finally {
      await server.close();
      await enforcer.close();
    }
  });

  it("answers 503 when the answer names no bundle revision (policies loaded as plain files)", async () => {
    const plain = await startOpaServer([CONFORMANCE_DIR]);
    const enforcer = createEnforcer({
      opa: { url: plain.url, path: CONFORMANCE_ENTRYPOINT },
      expectedRevision: "faults-1",
      log: () => {},
    });
    try {
      expect(await enforcer.decide(allowInput)).toMatchObject({ allow: false, status: 503 });
    } finally {
      await enforcer.close();
      await plain.stop();
    }
  });

  it("embedded: a bundle of another revision is refused with 503 and ready() rejects", async () => {
    const enforcer = createEnforcer({
      bundle: bundles.wasm,
      entrypoint: CONFORMANCE_ENTRYPOINT,
      expectedRevision: "other",
      log: () => {},
    });
    await expect(enforcer.ready()).rejects.toThrow(/bundle revision faults-1 is not the expected other/);
    expect(await enforcer.decide(allowInput)).toMatchObject({
      allow: false,
      status: 503,
      message: "policy revision mismatch",
    });
    const matching = createEnforcer({
      bundle: bundles.wasm,
      entrypoint: CONFORMANCE_ENTRYPOINT,
      expectedRevision: "faults-1",
    });
    await matching.ready();
    expect(await matching.decide(allowInput)).toMatchObject({ allow: true, revision: "faults-1" });
  });
});

describe("the embedded engine", () => {
  it("refuses at ready() a bundle built elsewhere whose policy.wasm needs a built-in it lacks", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-builtin-"));
    await writeFile(
      path.join(dir, "runtime.rego"),
      'package runtime\n\nallow if {\n\topa.runtime().env.ROLE == "admin"\n\tinput.user == "alice"\n}\n',
    );
    // opa itself builds it: policyship build would refuse it.
    const bundle = path.join(dir, "bundle.tar.gz");
    execFileSync(toolPath("opa"), ["build", "-t", "wasm", "-e", "runtime/allow", "-b", dir, "-o", bundle]);
    const logs: string[] = [];
    const enforcer = createEnforcer({ bundle, entrypoint: "runtime/allow", log: (m) => logs.push(m) });
    await expect(enforcer.ready()).rejects.toThrow(
      /policy\.wasm needs built-ins the embedded engine does not implement: opa\.runtime \(opa\.runtime is refused/,
    );
    // No request is ever decided by it: each answers 500 naming the built-in.
    const decision = await enforcer.decide({ user: "alice" });
    expect(decision).toMatchObject({ allow: false, status: 500 });
    expect(decision.error).toContain("opa.runtime");
    await enforcer.close();
  });

  it("refuses a bundle without policy.wasm with a clear error", async () => {
    const enforcer = createEnforcer({
      bundle: bundles.rego,
      entrypoint: CONFORMANCE_ENTRYPOINT,
      log: () => {},
    });
    await expect(enforcer.ready()).rejects.toThrow(/has no policy\.wasm; build it with --target wasm/);
  });
});

describe("hostile policy results", () => {
  const hostile = [
    {
      path: "/header-injection",
      log: /invalid policy result: header x-evil has a value with CR, LF or other control characters/,
    },
    { path: "/bad-header-name", log: /invalid policy result: invalid header name "bad header"/ },
    {
      path: "/framing-header",
      log: /invalid policy result: header transfer-encoding may not be set by a policy/,
    },
    {
      path: "/bad-status",
      log: /invalid policy result: status must be an integer from 100 to 599, got number 700/,
    },
    {
      path: "/fractional-status",
      log: /invalid policy result: status must be an integer from 100 to 599, got number 403\.5/,
    },
    { path: "/huge-message", log: /invalid policy result: message is \d+ bytes, over the 8192-byte limit/ },
  ];
  for (const engine of ["remote", "embedded"] as const) {
    it(`are refused with 500 and a log line naming the problem (${engine})`, async () => {
      const logs: string[] = [];
      const enforcer =
        engine === "remote"
          ? createEnforcer({ opa: { url: opa.url, path: CONFORMANCE_ENTRYPOINT }, log: (m) => logs.push(m) })
          : createEnforcer({
              bundle: bundles.wasm,
              entrypoint: CONFORMANCE_ENTRYPOINT,
              log: (m) => logs.push(m),
            });
      // The workers start before the first request, as an app that awaits ready() does: a busy runner's
      // thread start-up is not what this test measures.
      await enforcer.ready();
      const server = await app(enforcer);
      try {
        for (const { path: route, log } of hostile) {
          logs.length = 0;
          const response = await fetch(`${server.url}${route}`);
          expect(response.status, route).toBe(500);
          expect(response.headers.get("transfer-encoding"), route).not.toBe("chunked, chunked");
          expect(await response.json()).toEqual({ message: "An unexpected error occurred" });
          expect(logs.join("\n"), route).toMatch(log);
        }
        expect(server.handled()).toBe(0);
      } finally {
        await server.close();
        await enforcer.close();
      }
    });
  }
});
