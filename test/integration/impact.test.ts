import { readFile, writeFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEnforcer, interpretResult, withAuthorization } from "../../src/enforcer/index.ts";
import { expectOneLineError, runCli } from "../helpers/cli.ts";
import { createRepo, type TempRepo } from "../helpers/git-repo.ts";
import { type RunningOpa, startOpaServer } from "../helpers/opa-server.ts";
import { awsEnv, createBucket, minio, s3Client } from "../helpers/s3.ts";
import { listen } from "../helpers/serve.ts";

/** 10,000 requests over a mix of users, methods and paths, the same for each engine. */
const USERS = ["alice-key", "bob-key", "carol-key", "mallory-key", undefined];
const METHODS = ["GET", "HEAD", "POST", "DELETE"];
const PATHS = ["/orders", "/orders/42", "/reports/daily", "/health", "/admin/users"];
const REQUESTS = Array.from({ length: 10_000 }, (_, i) => ({
  key: USERS[i % USERS.length],
  method: METHODS[Math.floor(i / USERS.length) % METHODS.length] as string,
  path: PATHS[Math.floor(i / (USERS.length * METHODS.length)) % PATHS.length] as string,
}));

let repo: TempRepo;
let revisionA: string;
let opa: RunningOpa;
const logs: Record<"remote" | "embedded", string> = { remote: "", embedded: "" };

/** Sends every request through a node:http app behind the enforcer, 16 at a time. */
async function record(options: Parameters<typeof createEnforcer>[0]) {
  const enforcer = createEnforcer({ ...options, log: () => {} });
  await enforcer.ready();
  const app = await listen(http.createServer(withAuthorization(enforcer, (_req, res) => res.end("ok"))));
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < REQUESTS.length) {
        const request = REQUESTS[next++] as (typeof REQUESTS)[number];
        const response = await fetch(`${app.url}${request.path}`, {
          method: request.method,
          headers: request.key ? { "x-api-key": request.key } : {},
        });
        await response.arrayBuffer();
      }
    }),
  );
  await app.close();
  await enforcer.close();
}

beforeAll(async () => {
  repo = await createRepo({ examplePolicies: true });
  revisionA = repo.git("rev-parse", "HEAD");
  for (const args of [[], ["--target", "wasm", "--entrypoint", "authz/allow", "--out", "dist-wasm"]]) {
    const built = await runCli(["build", ...args], { cwd: repo.dir });
    expect(built.exitCode, built.stderr).toBe(0);
  }
  opa = await startOpaServer(["--bundle", path.join(repo.dir, "dist", `${revisionA}.tar.gz`)]);
  logs.remote = path.join(repo.dir, "remote.ndjson");
  logs.embedded = path.join(repo.dir, "embedded.ndjson");
  await record({
    opa: { url: opa.url, path: "authz/allow" },
    decisionLog: { sink: logs.remote, maxPending: 20_000 },
  });
  await record({
    bundle: path.join(repo.dir, "dist-wasm", `${revisionA}.wasm.tar.gz`),
    entrypoint: "authz/allow",
    decisionLog: { sink: logs.embedded, maxPending: 20_000 },
  });
  // Revision B opens a path (readers may POST orders) and closes one (no more HEAD for readers).
  const data = JSON.parse(await readFile(path.join(repo.dir, "policies/data.json"), "utf8"));
  data.roles.reader[0].methods = ["GET", "POST"];
  await repo.write("policies/data.json", `${JSON.stringify(data, null, 2)}\n`);
  repo.commit("readers may create orders, and HEAD is gone");
  // 20,000 real requests through two engines: minutes on a loaded 2-core runner, seconds on an idle one.
}, 420_000);
afterAll(() => opa?.stop());

/** The flips an OPA server per revision gives, one POST per input: independent of impact's batching. */
async function expectedFlips(file: string) {
  const lines = (await readFile(file, "utf8"))
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line))
    // A request the engine could not decide (a timeout under load) names no revision: impact skips it.
    .filter((line) => line.bundles);
  const b = await runCli(["build", "--out", "dist-b", "--json"], { cwd: repo.dir });
  const serverB = await startOpaServer(["--bundle", path.join(repo.dir, JSON.parse(b.stdout).bundle)]);
  const flips = { allow_to_deny: 0, deny_to_allow: 0, to_error: 0, from_error: 0, other: 0 };
  const outcome = async (url: string, input: unknown) => {
    const answer = (await (
      await fetch(`${url}/v1/data/authz/allow`, { method: "POST", body: JSON.stringify({ input }) })
    ).json()) as {
      result?: unknown;
    };
    try {
      const d = interpretResult(answer.result, "result" in answer);
      return {
        kind: d.allow ? "allow" : "deny",
        detail: JSON.stringify([d.status, Object.entries(d.headers).sort(), d.message]),
      };
    } catch {
      return { kind: "error", detail: "" };
    }
  };
  let changed = 0;
  for (const line of lines) {
    const [before, after] = await Promise.all([
      outcome(opa.url, line.input),
      outcome(serverB.url, line.input),
    ]);
    if (before.kind === after.kind && before.detail === after.detail) continue;
    changed++;
    if (after.kind === "error") flips.to_error++;
    else if (before.kind === "error") flips.from_error++;
    else if (before.kind === "allow" && after.kind === "deny") flips.allow_to_deny++;
    else if (before.kind === "deny" && after.kind === "allow") flips.deny_to_allow++;
    else flips.other++;
  }
  await serverB.stop();
  return { replayed: lines.length, changed, flips };
}

describe("impact: what a policy change does to real, recorded decisions", () => {
  for (const engine of ["remote", "embedded"] as const) {
    it(`${engine}: 10,000 decisions recorded by the enforcer; the flips equal an OPA server per input`, async () => {
      const result = await runCli(
        ["impact", "--decisions", logs[engine], "--mask", "/input/request/http/headers/x-api-key", "--json"],
        {
          cwd: repo.dir,
          timeoutMs: 180_000,
        },
      );
      expect(result.exitCode, result.stderr).toBe(0);
      const report = JSON.parse(result.stdout);
      expect(Object.keys(report).sort()).toEqual([
        "changed",
        "drift",
        "evaluated",
        "examples",
        "files",
        "flips",
        "groups",
        "replayed",
        "skipped",
        "unchanged",
      ]);
      const expected = await expectedFlips(logs[engine]);
      expect(report.replayed + report.skipped.no_revision).toBe(10_000);
      expect(report.skipped).toMatchObject({ unparseable: 0, not_a_decision: 0, no_path: 0, duplicate: 0 });
      expect(report.files).toBe(1);
      expect(report).toMatchObject({
        replayed: expected.replayed,
        changed: expected.changed,
        flips: expected.flips,
      });
      expect(report.flips.deny_to_allow).toBeGreaterThan(0);
      expect(report.flips.allow_to_deny).toBeGreaterThan(0);
      expect(report.drift).toBe(0);
      expect(report.unchanged + report.changed).toBe(report.replayed);
      expect(report.groups[0]).toMatchObject({ method: expect.any(String), changed: expect.any(Number) });
      expect(JSON.stringify(report.examples)).not.toContain("bob-key");
    }, 240_000);
  }

  it("--fail-on deny-to-allow exits 1 with one line, and writes the markdown", async () => {
    const markdown = path.join(repo.dir, "impact.md");
    const summary = path.join(repo.dir, "step-summary.md");
    await writeFile(summary, "");
    const result = await runCli(
      [
        "impact",
        "--decisions",
        logs.remote,
        "--fail-on",
        "deny-to-allow",
        "--markdown",
        markdown,
        "--examples",
        "3",
      ],
      { cwd: repo.dir, timeoutMs: 180_000, env: { GITHUB_ACTIONS: "true", GITHUB_STEP_SUMMARY: summary } },
    );
    expect(result.exitCode).toBe(1);
    expect(expectOneLineError(result)).toMatch(/the candidate changes recorded decisions: deny-to-allow \d+/);
    const text = await readFile(markdown, "utf8");
    // In GitHub Actions the same report goes to the step summary.
    expect(await readFile(summary, "utf8")).toBe(text);
    expect(text).toContain("## policyship impact");
    expect(text).toMatch(/\| deny → allow \| \d+ \|/);
  }, 240_000);

  it("reads OPA's console lines and uploaded gzip arrays, and builds a base from git when no bundle is kept", async () => {
    const lines = (await readFile(logs.remote, "utf8"))
      .trim()
      .split("\n")
      .slice(0, 200)
      .map((line) => JSON.parse(line));
    const console = lines.map((event) =>
      JSON.stringify({ level: "info", msg: "Decision Log", time: event.timestamp, ...event }),
    );
    await writeFile(
      path.join(repo.dir, "opa-console.log"),
      `${JSON.stringify({ level: "info", msg: "Starting server" })}\n${console.join("\n")}\n`,
    );
    await writeFile(path.join(repo.dir, "upload.json.gz"), gzipSync(JSON.stringify(lines)));
    for (const source of ["opa-console.log", "upload.json.gz"]) {
      // --out elsewhere: revision A must come from git.
      const result = await runCli(["impact", "--decisions", source, "--out", "nowhere", "--json"], {
        cwd: repo.dir,
        timeoutMs: 180_000,
      });
      expect(result.exitCode, result.stderr).toBe(0);
      expect(JSON.parse(result.stdout)).toMatchObject({ replayed: 200, drift: 0 });
    }
  }, 240_000);

  it("reads a whole s3:// prefix of logs from one bucket, with the base published to another", async () => {
    const { PutObjectCommand } = await import("@aws-sdk/client-s3");
    const [logBucket, bundles] = [await createBucket(), await createBucket()];
    const lines = (await readFile(logs.remote, "utf8")).trim().split("\n").slice(0, 300);
    const s3 = s3Client();
    await s3.send(
      new PutObjectCommand({
        Bucket: logBucket,
        Key: "authz/a.ndjson",
        Body: `${lines.slice(0, 100).join("\n")}\n`,
      }),
    );
    await s3.send(
      new PutObjectCommand({
        Bucket: logBucket,
        Key: "authz/2026/upload.json.gz",
        Body: gzipSync(`[${lines.slice(100).join(",")}]`),
      }),
    );
    await s3.send(new PutObjectCommand({ Bucket: logBucket, Key: "other/ignored.ndjson", Body: lines[0] }));
    const store = ["--endpoint", minio().endpoint];
    const published = await runCli(["publish", "--revision", revisionA, "--bucket", bundles, ...store], {
      cwd: repo.dir,
      env: awsEnv(),
    });
    expect(published.exitCode, published.stderr).toBe(0);
    // --out elsewhere: the recorded revision comes from the bundles bucket.
    const result = await runCli(
      [
        "impact",
        "--decisions",
        `s3://${logBucket}/authz/`,
        "--bucket",
        bundles,
        ...store,
        "--out",
        "nowhere",
        "--json",
      ],
      { cwd: repo.dir, env: awsEnv(), timeoutMs: 180_000 },
    );
    expect(result.exitCode, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ replayed: 300, drift: 0 });
  }, 240_000);

  it("decisions that all name no revision need --base", async () => {
    await writeFile(
      path.join(repo.dir, "bare.ndjson"),
      `${JSON.stringify({ decision_id: "x", path: "authz/allow", input: {} })}\n`,
    );
    const refused = await runCli(["impact", "--decisions", "bare.ndjson"], { cwd: repo.dir });
    expect(refused.exitCode).toBe(2);
    expect(expectOneLineError(refused)).toMatch(
      /none of the 1 recorded decisions names a bundle revision — pass --base/,
    );
    const based = await runCli(["impact", "--decisions", "bare.ndjson", "--base", revisionA, "--json"], {
      cwd: repo.dir,
    });
    expect(based.exitCode, based.stderr).toBe(0);
    expect(JSON.parse(based.stdout).replayed).toBe(1);
  });
});
