import { cp, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.ts";
import { createRepo, type TempRepo } from "../helpers/git-repo.ts";

const KEYS = ["alice-key", "bob-key", "carol-key", "mallory-key", "nobody-key"];
const METHODS = ["GET", "POST", "PUT", "DELETE"];
const PATHS = ["/orders", "/orders/42", "/reports/daily", "/health", "/admin/users"];
const COUNT = 3_000;

let repo: TempRepo;
let base: string;
let candidate: string;
/** The (key, method, path) triples of the log: all the example policy reads of an input. */
const triples = new Set<string>();

beforeAll(async () => {
  repo = await createRepo({ examplePolicies: true });
  base = repo.git("rev-parse", "HEAD");
  const data = JSON.parse(await readFile(path.join(repo.dir, "policies/data.json"), "utf8"));
  data.roles.reader[0].methods = ["GET", "POST"];
  await repo.write("policies/data.json", `${JSON.stringify(data, null, 2)}\n`);
  repo.commit("readers may create orders");
  candidate = repo.git("rev-parse", "HEAD");
  // Every line its own request id, trace and time, as a gateway logs them: no two inputs are equal.
  const lines: string[] = [];
  for (let i = 0; i < COUNT; i++) {
    const key = KEYS[i % KEYS.length] as string;
    const method = METHODS[Math.floor(i / KEYS.length) % METHODS.length] as string;
    const route = PATHS[Math.floor(i / (KEYS.length * METHODS.length)) % PATHS.length] as string;
    triples.add(`${key} ${method} ${route}`);
    lines.push(
      JSON.stringify({
        decision_id: `d-${i}`,
        path: "authz/allow",
        input: {
          request: {
            http: {
              method,
              path: route,
              headers: {
                "x-api-key": key,
                "x-request-id": `req-${i}`,
                traceparent: `00-${i.toString(16).padStart(32, "0")}-${"1".repeat(16)}-01`,
              },
            },
          },
          time: new Date(Date.UTC(2026, 10, 25) + i).toISOString(),
        },
        bundles: { authz: { revision: base } },
      }),
    );
  }
  await writeFile(path.join(repo.dir, "decisions.ndjson"), `${lines.join("\n")}\n`);
}, 120_000);

const impact = async (...args: string[]) => {
  const result = await runCli(["impact", "--decisions", "decisions.ndjson", ...args], {
    cwd: repo.dir,
    timeoutMs: 180_000,
  });
  expect(result.exitCode, result.stderr).toBe(0);
  return result;
};

describe("impact at scale: each distinct input evaluated once", () => {
  it("evaluates one input per distinct (key, method, path), the parts of the input the policies read", async () => {
    const report = JSON.parse((await impact("--candidate", candidate, "--json")).stdout);
    expect(report.replayed).toBe(COUNT);
    expect(report.evaluated).toBe(triples.size);
    expect(triples.size).toBeLessThan(COUNT / 10);
    expect(report.flips.deny_to_allow).toBeGreaterThan(0);
  }, 240_000);

  it("evaluates every input when a policy reads input whole, and the flips stay the same", async () => {
    const projected = JSON.parse((await impact("--candidate", candidate, "--json")).stdout);
    const checkout = path.join(repo.dir, "..", `${path.basename(repo.dir)}-whole`);
    await cp(path.join(repo.dir, "policies"), path.join(checkout, "policies"), { recursive: true });
    await writeFile(path.join(checkout, "policies", "whole.rego"), "package audit\n\nseen := input\n");
    const report = JSON.parse((await impact("--candidate-dir", checkout, "--json")).stdout);
    expect(report.evaluated).toBe(COUNT);
    expect(report.flips).toEqual(projected.flips);
    expect(report.changed).toBe(projected.changed);
  }, 240_000);
});

describe("impact --sample", () => {
  it("replays the same share of the decisions on every run, and every report says it was sampled", async () => {
    const markdown = path.join(repo.dir, "impact.md");
    const first = JSON.parse((await impact("--candidate", candidate, "--sample", "0.25", "--json")).stdout);
    expect(first.sample).toEqual({ rate: 0.25, read: COUNT });
    expect(first.replayed).toBeGreaterThan(COUNT * 0.2);
    expect(first.replayed).toBeLessThan(COUNT * 0.3);
    const text = await impact("--candidate", candidate, "--sample", "0.25", "--markdown", markdown);
    expect(text.stdout).toContain(`replayed ${first.replayed} decisions (a 25% sample of ${COUNT} read):`);
    expect(await readFile(markdown, "utf8")).toContain(
      `Replayed **${first.replayed}** recorded decisions (a 25% sample of ${COUNT} read):`,
    );
    const all = JSON.parse((await impact("--candidate", candidate, "--json")).stdout);
    expect(all.sample).toBeUndefined();
    expect(all.replayed).toBe(COUNT);
  }, 240_000);
});
