import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.ts";
import { createRepo, type TempRepo } from "../helpers/git-repo.ts";

let repo: TempRepo;
let base: string;

/** A decision as the enforcer logs it, made by the base revision. */
function line(id: string, method: string, extra: Record<string, unknown> = {}) {
  return JSON.stringify({
    decision_id: id,
    path: "authz/allow",
    input: { request: { http: { method, path: "/orders", headers: { "x-api-key": "bob-key" } } } },
    bundles: { authz: { revision: base } },
    ...extra,
  });
}

beforeAll(async () => {
  repo = await createRepo({ examplePolicies: true });
  base = repo.git("rev-parse", "HEAD");
  // The candidate lets readers POST orders: bob's POST flips deny → allow, his GET does not change.
  const data = JSON.parse(await readFile(path.join(repo.dir, "policies/data.json"), "utf8"));
  data.roles.reader[0].methods = ["GET", "POST"];
  await repo.write("policies/data.json", `${JSON.stringify(data, null, 2)}\n`);
}, 120_000);

const impact = (file: string, ...args: string[]) =>
  runCli(["impact", "--decisions", file, "--json", ...args], { cwd: repo.dir, timeoutMs: 180_000 });

describe("impact: a decision_id read again", () => {
  it("skips a decision read again whole, and replays another event under the same id", async () => {
    const post = line("X", "POST");
    await writeFile(
      path.join(repo.dir, "same-id.ndjson"),
      `${line("X", "GET")}\n${post}\n${post}\n{"decision_id":"X"}\n${line("", "POST")}\n${line("", "GET")}\n`,
    );
    const result = await impact("same-id.ndjson", "--fail-on", "deny-to-allow");
    // The POST under X flips, though a GET under X came first: an id alone hides nothing.
    expect(result.exitCode, result.stderr).toBe(1);
    const report = JSON.parse(result.stdout);
    expect(report.replayed).toBe(4);
    expect(report.flips.deny_to_allow).toBe(2);
    expect(report.skipped).toMatchObject({ duplicate: 1, no_input: 1 });
  }, 240_000);

  it("a bare id line first neither hides nor stands in for the decision that follows it", async () => {
    await writeFile(path.join(repo.dir, "bare-first.ndjson"), `{"decision_id":"Y"}\n${line("Y", "POST")}\n`);
    const report = JSON.parse((await impact("bare-first.ndjson")).stdout);
    expect(report.replayed).toBe(1);
    expect(report.flips.deny_to_allow).toBe(1);
    const explained = await runCli(["explain", "Y", "--decisions", "bare-first.ndjson", "--json"], {
      cwd: repo.dir,
      timeoutMs: 120_000,
    });
    expect(explained.exitCode, explained.stderr).toBe(0);
    expect(JSON.parse(explained.stdout)).toMatchObject({
      decision_id: "Y",
      replayed: { outcome: "deny", result: { status: 403 } },
    });
  }, 240_000);
});
