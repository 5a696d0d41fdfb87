import { readFile, writeFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEnforcer, withAuthorization } from "../../src/enforcer/index.ts";
import { expectOneLineError, runCli } from "../helpers/cli.ts";
import { createRepo, type TempRepo } from "../helpers/git-repo.ts";
import { type RunningOpa, startOpaServer } from "../helpers/opa-server.ts";
import { awsEnv, createBucket, minio, s3Client } from "../helpers/s3.ts";
import { listen } from "../helpers/serve.ts";

/** A credential the enforcer's log keeps (x-api-key is no header it masks by default): explain must mask it. */
const MASK_KEY = ["--mask", "/input/request/http/headers/x-api-key"];

let repo: TempRepo;
let revisionA: string;
let revisionB: string;
let opa: RunningOpa;
let log: string;
/** The logged event of each request, by name. */
const logged: Record<"denied" | "anonymous" | "allowed", { decision_id: string; line: string }> = {
  denied: { decision_id: "", line: "" },
  anonymous: { decision_id: "", line: "" },
  allowed: { decision_id: "", line: "" },
};

beforeAll(async () => {
  repo = await createRepo({ examplePolicies: true });
  revisionA = repo.git("rev-parse", "HEAD");
  const built = await runCli(["build"], { cwd: repo.dir });
  expect(built.exitCode, built.stderr).toBe(0);
  opa = await startOpaServer(["--bundle", path.join(repo.dir, "dist", `${revisionA}.tar.gz`)]);
  // A real app behind the enforcer, deciding with a real OPA, logging to a file as it would in production.
  log = path.join(repo.dir, "decisions.ndjson");
  const enforcer = createEnforcer({
    opa: { url: opa.url, path: "authz/allow" },
    decisionLog: { sink: log },
    log: () => {},
  });
  await enforcer.ready();
  const app = await listen(http.createServer(withAuthorization(enforcer, (_req, res) => res.end("ok"))));
  const requests = [
    { method: "POST", path: "/orders", headers: { "x-api-key": "bob-key" }, status: 403 },
    { method: "GET", path: "/orders", headers: {}, status: 401 },
    { method: "GET", path: "/orders", headers: { "x-api-key": "bob-key" }, status: 200 },
  ];
  for (const request of requests) {
    const response = await fetch(`${app.url}${request.path}`, {
      method: request.method,
      headers: request.headers,
    });
    await response.arrayBuffer();
    expect(response.status).toBe(request.status);
  }
  await app.close();
  await enforcer.close();
  const lines = (await readFile(log, "utf8")).trim().split("\n");
  expect(lines).toHaveLength(3);
  for (const [index, name] of (["denied", "anonymous", "allowed"] as const).entries()) {
    const line = lines[index] as string;
    logged[name] = { decision_id: JSON.parse(line).decision_id, line };
  }
  expect(JSON.parse(logged.denied.line).bundles.authz.revision).toBe(revisionA);
  // Revision B lets readers create orders: bob's POST flips from deny to allow.
  const data = JSON.parse(await readFile(path.join(repo.dir, "policies/data.json"), "utf8"));
  data.roles.reader[0].methods = ["GET", "HEAD", "POST"];
  await repo.write("policies/data.json", `${JSON.stringify(data, null, 2)}\n`);
  revisionB = repo.commit("readers may create orders");
}, 120_000);
afterAll(() => opa?.stop());

const explain = (args: string[], env?: Record<string, string>) =>
  runCli(["explain", ...args], { cwd: repo.dir, env, timeoutMs: 120_000 });

describe("explain: why a logged decision came out as it did", () => {
  it("a request the enforcer denied, from the log file: the rule and the line that denied it", async () => {
    const result = await explain([logged.denied.decision_id, "--decisions", log, ...MASK_KEY, "--json"]);
    expect(result.exitCode, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report).toMatchObject({
      decision_id: logged.denied.decision_id,
      revision: revisionA,
      path: "authz/allow",
      recorded: { outcome: "deny", result: { allow: false, status: 403 } },
      replayed: {
        outcome: "deny",
        result: { allow: false, status: 403, message: "bob may not POST /orders" },
      },
      drift: false,
    });
    expect(
      report.rules.map(({ name, file, row }: { name: string; file: string; row: number }) => ({
        name,
        file,
        row,
      })),
    ).toEqual([{ name: "allow", file: "authz.rego", row: 24 }]);
    expect(report.rules[0].default).toBe(false);
    // The rule's source, from its head to its closing brace, as opa parses it.
    expect(report.rules[0].source.map((line: { row: number }) => line.row)).toEqual([24, 25, 26, 27, 28]);
    expect(report.rules[0].source[0].text).toMatch(/^allow := \{"allow": false, "status": 403/);
    expect(report.rules[0].source[2].text).toBe("\tnot permitted");
    expect(report.input.request.http).toMatchObject({ method: "POST", path: "/orders" });
    // The masked key is nowhere, nor is any temp directory of this machine.
    expect(result.stdout).not.toContain("bob-key");
    expect(result.stdout).not.toContain("policyship-");

    const text = await explain([logged.denied.decision_id, "--decisions", log, ...MASK_KEY]);
    expect(text.exitCode, text.stderr).toBe(0);
    expect(text.stdout).toContain(`at revision ${revisionA}, path authz/allow`);
    expect(text.stdout).toMatch(/allow {2}authz\.rego:24\n\s+24 \| allow := /);
    expect(text.stdout).not.toContain("drift");
  });

  it("the default rule, when it is the one that applied", async () => {
    const result = await explain([logged.anonymous.decision_id, "--decisions", log, "--json"]);
    expect(result.exitCode, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report.replayed).toMatchObject({ outcome: "deny", result: { status: 401 } });
    expect(report.rules).toMatchObject([{ name: "allow", file: "authz.rego", row: 13, default: true }]);
    expect(report.rules[0].source[0].text).toMatch(/^default allow := /);
  });

  it("from an s3:// prefix of gzipped uploads in MinIO, the revision verified from the bundles bucket", async () => {
    const { PutObjectCommand } = await import("@aws-sdk/client-s3");
    const [logBucket, bundles] = [await createBucket(), await createBucket()];
    const s3 = s3Client();
    const events = [logged.anonymous.line, logged.denied.line].map((line) => JSON.parse(line));
    await s3.send(
      new PutObjectCommand({
        Bucket: logBucket,
        Key: "authz/2026/upload.json.gz",
        Body: gzipSync(JSON.stringify(events)),
      }),
    );
    const store = ["--endpoint", minio().endpoint];
    const published = await runCli(["publish", "--revision", revisionA, "--bucket", bundles, ...store], {
      cwd: repo.dir,
      env: awsEnv(),
    });
    expect(published.exitCode, published.stderr).toBe(0);
    // --out elsewhere: the revision can only come from the bundles bucket.
    const result = await explain(
      [
        logged.denied.decision_id,
        "--decisions",
        `s3://${logBucket}/authz/`,
        "--bucket",
        bundles,
        ...store,
        "--out",
        "nowhere",
        ...MASK_KEY,
        "--json",
      ],
      awsEnv(),
    );
    expect(result.exitCode, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report).toMatchObject({ revision: revisionA, drift: false, replayed: { outcome: "deny" } });
    expect(report.rules).toMatchObject([{ name: "allow", file: "authz.rego", row: 24 }]);
    expect(result.stdout).not.toContain("bob-key");
  });

  it("drift: a recorded result that the revision does not give is flagged", async () => {
    const event = JSON.parse(logged.denied.line);
    // The edited result also copies the caller's key: a masked value is masked in results too.
    event.result = { allow: true, headers: { "x-debug": "key bob-key" } };
    await writeFile(path.join(repo.dir, "edited.ndjson"), `${JSON.stringify(event)}\n`);
    const result = await explain([event.decision_id, "--decisions", "edited.ndjson", ...MASK_KEY, "--json"]);
    expect(result.exitCode, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report).toMatchObject({
      drift: true,
      recorded: { outcome: "allow", result: { allow: true, headers: { "x-debug": "key [masked]" } } },
      replayed: { outcome: "deny" },
    });
    expect(result.stdout).not.toContain("bob-key");
    // The untouched line is no drift.
    const honest = await explain([event.decision_id, "--decisions", log, "--json"]);
    expect(JSON.parse(honest.stdout).drift).toBe(false);
    const text = await explain([event.decision_id, "--decisions", "edited.ndjson"]);
    expect(text.stdout).toContain("drift: the replay differs from the recording");
  });

  it("--candidate explains a flip: which rule decides under each revision, and a markdown block for the ticket", async () => {
    const markdown = path.join(repo.dir, "incident.md");
    const result = await explain([
      logged.denied.decision_id,
      "--decisions",
      log,
      "--candidate",
      "HEAD",
      ...MASK_KEY,
      "--markdown",
      markdown,
      "--json",
    ]);
    expect(result.exitCode, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report.rules).toMatchObject([{ file: "authz.rego", row: 24 }]);
    expect(report.candidate).toMatchObject({
      revision: revisionB,
      changed: true,
      replayed: { outcome: "allow", result: { allow: true, headers: { "x-user": "bob" } } },
    });
    expect(report.candidate.rules).toMatchObject([
      { name: "allow", file: "authz.rego", row: 19, default: false },
    ]);
    expect(report.candidate.why).toContain(`${revisionA} decides deny by allow at authz.rego:24`);
    expect(report.candidate.why).toContain(`${revisionB} decides allow by allow at authz.rego:19`);
    // What differs between the bundles, as diff compares them: readers' methods gained POST, no rule changed.
    expect(report.candidate.changes).toEqual({
      rules: { added: [], removed: [], changed: [] },
      data: { added: ["/roles/reader/0/methods/2"], removed: [], changed: [] },
    });
    expect(report.candidate.why).toMatch(/: data changed: \/roles\/reader\/0\/methods\/2 \(added\)$/);
    const text = await readFile(markdown, "utf8");
    expect(text).toContain("## policyship explain");
    expect(text).toContain("`allow authz.rego:24`");
    expect(text).toContain(`### Candidate \`${revisionB}\``);
    expect(text).toContain("**Changed**");
    expect(text).not.toContain("bob-key");
  });

  it("stops reading at the first match: what follows it in the log is never read", async () => {
    // A line nested past the decision log's depth cap is refused whenever it is read.
    const deep = `{"decision_id":"d","input":${"[".repeat(5_000)}${"]".repeat(5_000)}}`;
    await writeFile(path.join(repo.dir, "then-deep.ndjson"), `${logged.denied.line}\n${deep}\n`);
    await writeFile(path.join(repo.dir, "deep-first.ndjson"), `${deep}\n${logged.denied.line}\n`);
    const found = await explain([logged.denied.decision_id, "--decisions", "then-deep.ndjson", "--json"]);
    expect(found.exitCode, found.stderr).toBe(0);
    expect(JSON.parse(found.stdout).rules).toMatchObject([{ row: 24 }]);
    const refused = await explain([logged.denied.decision_id, "--decisions", "deep-first.ndjson"]);
    expect(refused.exitCode).toBe(2);
    expect(expectOneLineError(refused)).toMatch(/deep-first\.ndjson is refused: line 1 nests deeper than/);
  });

  it("an input of its own with --input and --revision (a short SHA), and --path", async () => {
    const input = JSON.parse(logged.allowed.line).input;
    await writeFile(path.join(repo.dir, "request.json"), JSON.stringify(input));
    const result = await explain([
      "--input",
      "request.json",
      "--revision",
      revisionA.slice(0, 7),
      "--path",
      "authz/allow",
      ...MASK_KEY,
      "--json",
    ]);
    expect(result.exitCode, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report).toMatchObject({ revision: revisionA, drift: false, replayed: { outcome: "allow" } });
    expect(report).toMatchObject({ decision_id: null, recorded: null });
    expect(report.rules).toMatchObject([{ name: "allow", file: "authz.rego", row: 19 }]);
  });

  it("an id no log holds is exit 1 with one line", async () => {
    const result = await explain(["00000000-0000-4000-8000-000000000000", "--decisions", log]);
    expect(result.exitCode).toBe(1);
    expect(expectOneLineError(result)).toMatch(
      /decision 00000000-0000-4000-8000-000000000000 is not in .*decisions\.ndjson \(1 file read\) — /,
    );
  });

  it("a decision that names no revision needs --revision", async () => {
    const event = JSON.parse(logged.denied.line);
    delete event.bundles;
    await writeFile(path.join(repo.dir, "bare.ndjson"), `${JSON.stringify(event)}\n`);
    const refused = await explain([event.decision_id, "--decisions", "bare.ndjson"]);
    expect(refused.exitCode).toBe(2);
    expect(expectOneLineError(refused)).toMatch(/names no bundle revision .* — pass --revision <rev>/);
    const named = await explain([
      event.decision_id,
      "--decisions",
      "bare.ndjson",
      "--revision",
      revisionA,
      "--json",
    ]);
    expect(named.exitCode, named.stderr).toBe(0);
    expect(JSON.parse(named.stdout).rules).toMatchObject([{ row: 24 }]);
  });
});
