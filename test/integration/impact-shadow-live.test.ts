import { cp, mkdtemp, readFile, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEnforcer, type EnforcerOptions, withAuthorization } from "../../src/enforcer/index.ts";
import { runCli } from "../helpers/cli.ts";
import { buildBundles } from "../helpers/enforcer-fixtures.ts";
import { type RunningOpa, startOpaServer } from "../helpers/opa-server.ts";
import { freePort } from "../helpers/ports.ts";
import { repoRoot } from "../helpers/tools.ts";

/**
 * impact --shadow on decision logs a real enforcer wrote: the repository's policies enforced by one OPA,
 * the next revision (readers may create orders) in shadow on a second OPA or embedded, a real node:http app
 * in front. The report must name exactly the request the candidate decides differently.
 */

const ENFORCED = "1".repeat(40);
const CANDIDATE = "2".repeat(40);
const TOKEN = "SENTINEL-live-shadow-token-3c9a";

let dir: string;
let enforcedOpa: RunningOpa;
let candidateOpa: RunningOpa;
let candidateWasm: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "policyship-impact-shadow-live-"));
  const next = path.join(dir, "next-policies");
  await cp(path.join(repoRoot, "policies"), next, { recursive: true });
  const data = JSON.parse(await readFile(path.join(next, "data.json"), "utf8"));
  data.roles.reader.push({ methods: ["POST"], prefix: "/orders" });
  await writeFile(path.join(next, "data.json"), JSON.stringify(data));
  // The tests of the enforced revision say readers may not write; the candidate's build needs none.
  await writeFile(path.join(next, "authz_test.rego"), "package authz_test\n");
  const [enforced, candidate] = await Promise.all([
    buildBundles(path.join(repoRoot, "policies"), ENFORCED, "authz/allow"),
    buildBundles(next, CANDIDATE, "authz/allow"),
  ]);
  candidateWasm = candidate.wasm;
  [enforcedOpa, candidateOpa] = await Promise.all([
    startOpaServer(["--bundle", enforced.rego]),
    startOpaServer(["--bundle", candidate.rego]),
  ]);
}, 120_000);

afterAll(async () => {
  await Promise.all([enforcedOpa?.stop(), candidateOpa?.stop()]);
});

/** The requests of the demo: only bob's POST /orders is decided differently by the candidate. */
const REQUESTS: [string, string, Record<string, string>][] = [
  ["GET", "/orders", {}],
  ["GET", "/orders", { "x-api-key": "bob-key" }],
  ["POST", "/orders", { "x-api-key": "bob-key", authorization: `Bearer ${TOKEN}` }],
  ["POST", "/orders", { "x-api-key": "carol-key" }],
  ["DELETE", "/admin/users/7", { "x-api-key": "alice-key" }],
];

/** Serves REQUESTS through a real app behind an enforcer with `shadow`, and returns the log it wrote. */
async function recordDay(
  name: string,
  shadow: EnforcerOptions["shadow"],
): Promise<{ log: string; statuses: number[] }> {
  const log = path.join(dir, `${name}.ndjson`);
  const enforcer = createEnforcer({
    opa: { url: enforcedOpa.url, path: "authz/allow" },
    shadow,
    decisionLog: log,
  });
  await enforcer.ready();
  const server = http.createServer(withAuthorization(enforcer, (_req, res) => res.end("ok")));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const statuses: number[] = [];
  try {
    for (const [method, route, headers] of REQUESTS) {
      const response = await fetch(`${url}${route}`, { method, headers });
      await response.arrayBuffer();
      statuses.push(response.status);
    }
  } finally {
    await new Promise((resolve) => server.close(resolve));
    await enforcer.close();
  }
  return { log, statuses };
}

async function report(log: string, ...args: string[]) {
  const result = await runCli(["impact", "--shadow", "--decisions", log, "--json", ...args], { cwd: dir });
  expect(result.exitCode, result.stderr).toBe(0);
  expect(result.stdout).not.toContain("SENTINEL");
  return JSON.parse(result.stdout);
}

describe("impact --shadow on logs a real enforcer wrote", () => {
  it("a remote candidate: every response follows the enforced revision, and the report names bob's POST", async () => {
    const { log, statuses } = await recordDay("remote", {
      opa: { url: candidateOpa.url, path: "authz/allow" },
      sampleRate: 1,
    });
    expect(statuses).toEqual([401, 200, 403, 200, 200]);
    const result = await report(log);
    expect(result).toMatchObject({
      compared: 5,
      unchanged: 4,
      changed: 1,
      not_sampled: 0,
      flips: { allow_to_deny: 0, deny_to_allow: 1, to_error: 0, from_error: 0, other: 0 },
    });
    expect(result.candidates).toHaveLength(1);
    const [candidate] = result.candidates;
    expect(candidate).toMatchObject({ revision: CANDIDATE, engines: ["remote"], base_revisions: [ENFORCED] });
    expect(candidate.groups).toEqual([{ method: "POST", path: "/orders", changed: 1 }]);
    expect(candidate.examples[0]).toMatchObject({
      method: "POST",
      path: "/orders",
      flip: "deny_to_allow",
      base_revision: ENFORCED,
      base: { outcome: "deny", status: 403 },
      candidate: { outcome: "allow", status: 200 },
    });
    expect(candidate.examples[0].input.request.http.headers.authorization).toBeUndefined();
  });

  it("an embedded candidate reports the same disagreement, as embedded", async () => {
    const { log } = await recordDay("embedded", {
      bundle: candidateWasm,
      entrypoint: "authz/allow",
      sampleRate: 1,
    });
    const result = await report(log);
    expect(result).toMatchObject({ compared: 5, changed: 1, flips: { deny_to_allow: 1 } });
    expect(result.candidates[0]).toMatchObject({ revision: CANDIDATE, engines: ["embedded"] });
  });

  it("a candidate that is down: each sample is an error of its own, and the responses are unchanged", async () => {
    const { log, statuses } = await recordDay("down", {
      opa: { url: `http://127.0.0.1:${await freePort()}`, path: "authz/allow" },
      sampleRate: 1,
    });
    expect(statuses).toEqual([401, 200, 403, 200, 200]);
    const result = await report(log);
    expect(result.compared).toBe(5);
    // Every decision the enforced revision made (allow or deny) became an error in the candidate's column.
    expect(result).toMatchObject({ unchanged: 0, changed: 5, flips: { to_error: 5 } });
    expect(result.candidates).toHaveLength(1);
    expect(result.candidates[0]).toMatchObject({ revision: null, engines: ["remote"] });
  });

  it("at sampleRate 0, every decision is counted as not sampled", async () => {
    const { log } = await recordDay("unsampled", {
      opa: { url: candidateOpa.url, path: "authz/allow" },
      sampleRate: 0,
    });
    const result = await report(log);
    expect(result).toMatchObject({ compared: 0, not_sampled: 5, candidates: [] });
    const gated = await runCli(["impact", "--shadow", "--decisions", log, "--fail-on", "deny-to-allow"], {
      cwd: dir,
    });
    expect(gated.exitCode).toBe(1);
    expect(gated.stderr).toMatch(
      /policyship: no shadow comparison in .*unsampled\.ndjson: 1 file read, 5 decisions not sampled — /,
    );
  });
});
