import { mkdtemp, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.ts";

/**
 * What `impact --shadow` trusts in a logged line: the candidate's revision is its own answer, opaque text
 * (one odd revision must not block a day's report), and the enforced side, which states its decision more
 * than once (outcome, would, status, error, result), must agree with itself.
 */

let dir: string;
let serial = 0;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "policyship-impact-shadow-trust-"));
});

/** An enforced allow that the candidate denies, as the enforcer writes it; `over` replaces policyship fields. */
function line(revision: unknown, over: Record<string, unknown> = {}, result: unknown = true): string {
  return JSON.stringify({
    labels: { engine: "remote" },
    decision_id: `trust-${++serial}`,
    bundles: { authz: { revision: "a".repeat(40) } },
    path: "authz/allow",
    input: { request: { http: { method: "GET", path: "/admin" } } },
    result,
    timestamp: "2026-12-01T10:00:00.000Z",
    custom: {
      policyship: {
        outcome: "allow",
        status: 200,
        audited: false,
        would: "allow",
        cached: false,
        fail_open: false,
        shadow: {
          revision,
          allow: false,
          status: 403,
          headers: {},
          message: "unauthorized",
          differs: true,
          flip: "allow_to_deny",
          engine: "remote",
        },
        ...over,
      },
    },
  });
}

async function impact(lines: string[], ...args: string[]) {
  const file = path.join(dir, `day-${++serial}.ndjson`);
  await writeFile(file, `${lines.join("\n")}\n`);
  return runCli(["impact", "--shadow", "--decisions", file, ...args], { cwd: dir });
}

describe("impact --shadow reads a candidate's revision as opaque text", () => {
  it("accepts a revision with spaces and control characters, and prints it escaped", async () => {
    const odd = "cand rev with spaces \u001b[2J";
    const json = await impact([line(odd), line("b".repeat(40))], "--json");
    expect(json.exitCode, json.stderr).toBe(0);
    const report = JSON.parse(json.stdout);
    expect(report.compared).toBe(2);
    expect(report.candidates.map((c: { revision: string }) => c.revision).sort()).toEqual(
      ["b".repeat(40), odd].sort(),
    );
    const text = await impact([line(odd)]);
    expect(text.exitCode, text.stderr).toBe(0);
    expect(text.stdout).not.toContain("\u001b");
    expect(text.stdout).toContain("cand rev with spaces");
  });

  it("accepts the enforcer's cut-and-marked form of a very long revision", async () => {
    const cut = `${"r".repeat(256)}…(truncated)`;
    const result = await impact([line(cut)], "--json");
    expect(result.exitCode, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout).candidates[0].revision).toBe(cut);
  });
});

describe("impact --shadow refuses a line whose enforced side contradicts itself", () => {
  const cases: [string, Record<string, unknown>, unknown, RegExp][] = [
    [
      "would disagrees with outcome",
      { would: "deny" },
      true,
      /would is deny, yet custom\.policyship\.outcome is allow/,
    ],
    [
      "the result denies an allow",
      {},
      false,
      /the logged result denies, yet custom\.policyship\.outcome is allow/,
    ],
    [
      "the result object denies an allow",
      {},
      { allow: false, status: 401 },
      /the logged result denies, yet custom\.policyship\.outcome is allow/,
    ],
    [
      "an allow with a denial's status",
      { status: 403 },
      true,
      /outcome is allow, yet custom\.policyship\.status is 403/,
    ],
    [
      "an allow with an error",
      { error: "opa down" },
      true,
      /custom\.policyship\.error is set, yet custom\.policyship\.outcome is allow/,
    ],
    [
      "a deny whose status is not its result's",
      { outcome: "deny", would: "deny", status: 403 },
      { allow: false, status: 401 },
      /the logged result's status is 401, yet custom\.policyship\.status is 403/,
    ],
  ];
  for (const [name, over, result, message] of cases) {
    it(name, async () => {
      const run = await impact([line("b".repeat(40), over, result)]);
      expect(run.exitCode, run.stderr).toBe(2);
      expect(run.stdout).toBe("");
      const lines = run.stderr.trimEnd().split("\n");
      expect(lines.filter((l) => l.startsWith("policyship:"))).toHaveLength(1);
      expect(lines.at(-1)).toMatch(/^policyship: decision trust-\d+ in .*day-\d+\.ndjson is refused: /);
      expect(lines.at(-1)).toMatch(message);
    });
  }
});
