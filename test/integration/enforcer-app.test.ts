import { execFile } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildBundles } from "../helpers/enforcer-fixtures.ts";
import { type RunningOpa, startOpaServer } from "../helpers/opa-server.ts";
import { freePort, waitForHttpOk } from "../helpers/ports.ts";
import { type Started, startProcess } from "../helpers/processes.ts";
import { repoRoot, toolPath } from "../helpers/tools.ts";

const HEAVY = /@aws-sdk|\/execa\/|\/commander\/|simple-git|\/zod\//;

describe("importing policyship/enforcer", () => {
  it("loads no AWS SDK, execa, commander, simple-git or zod, in either engine", async () => {
    const bundles = await buildBundles(path.join(repoRoot, "policies"), "imports-1", "authz/allow");
    const script = `
      const { createEnforcer } = await import("policyship/enforcer");
      const remote = createEnforcer({ opa: { url: "http://127.0.0.1:9", path: "authz/allow" }, timeoutMs: 200, log: () => {} });
      const embedded = createEnforcer({ bundle: ${JSON.stringify(bundles.wasm)}, entrypoint: "authz/allow" });
      await embedded.ready();
      const input = { request: { http: { method: "GET", path: "/health", headers: {} } } };
      const decisions = [await remote.decide(input), await embedded.decide(input)];
      console.log(JSON.stringify(decisions.map((d) => d.status)));
      await remote.close(); await embedded.close();`;
    const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
      execFile(
        toolPath("node"),
        [
          // Flags an app may run with; V8 ones are refused in worker threads, which must not inherit them.
          "--expose-gc",
          "--max-semi-space-size=16",
          "--import",
          path.join(repoRoot, "test/fixtures/record-imports.mjs"),
          "--input-type=module",
          "-e",
          script,
        ],
        { cwd: repoRoot },
        (error, out, err) =>
          error ? reject(new Error(`${error.message}\n${err}`)) : resolve({ stdout: out, stderr: err }),
      );
    });
    // The remote engine ran (and failed closed on a closed port); the embedded one allowed /health.
    expect(JSON.parse(stdout.trim())).toEqual([500, 200]);
    const imports = JSON.parse(/IMPORTS (.*)/.exec(stderr)?.[1] ?? "[]") as string[];
    expect(imports.some((url) => url.includes("/dist/enforcer/"))).toBe(true);
    expect(imports.some((url) => url.includes("undici"))).toBe(true);
    expect(imports.some((url) => url.includes("opa-wasm"))).toBe(true);
    expect(imports.filter((url) => HEAVY.test(url))).toEqual([]);
  });
});

describe("the example app with the repository's policies", () => {
  let opa: RunningOpa;
  let app: Started;
  let url: string;

  beforeAll(async () => {
    opa = await startOpaServer([path.join(repoRoot, "policies")]);
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    app = startProcess(toolPath("node"), [path.join(repoRoot, "examples/orders-app/server.mjs")], {
      ...process.env,
      PORT: String(port),
      OPA_URL: opa.url,
    });
    await waitForHttpOk(`${url}/health`, 15_000, app.alive);
  });
  afterAll(async () => {
    await app?.stop();
    await opa?.stop();
  });

  const call = (method: string, route: string, key?: string) =>
    fetch(`${url}${route}`, { method, headers: key ? { "x-api-key": key } : {} });

  it("allows what the policy allows and passes the user on", async () => {
    const response = await call("GET", "/orders", "bob-key");
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ user: "bob" });
  });

  it("denies with the policy's status and message", async () => {
    const anonymous = await call("GET", "/orders");
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toEqual({ message: "missing or unknown API key" });
    const forbidden = await call("POST", "/orders", "bob-key");
    expect(forbidden.status).toBe(403);
    expect(await forbidden.json()).toEqual({ message: "bob may not POST /orders" });
  });
});
