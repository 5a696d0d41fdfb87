import { writeFile } from "node:fs/promises";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.ts";
import { createRepo, type TempRepo } from "../helpers/git-repo.ts";

/** Rule shapes whose deciding bodies OPA's trace must name: partial sets, else chains, ref heads, functions. */
const POLICY = `package shapes

deny contains msg if {
	input.a == 1
	msg := "a is one"
}

deny contains msg if {
	input.b == 2
	msg := "b is two"
}

deny contains "never" if {
	input.c == 3
}

level := "high" if {
	input.a == 9
} else := "mid" if {
	input.a == 1
} else := "low"

allow.admin if input.a == 1

allow.user if input.b == 5

plus_one(x) := x + 1

counted := plus_one(input.a)
`;

let repo: TempRepo;

beforeAll(async () => {
  repo = await createRepo();
  await repo.write("policies/shapes.rego", POLICY);
  repo.commit("rule shapes");
  await writeFile(path.join(repo.dir, "input.json"), JSON.stringify({ a: 1, b: 2 }));
});

/** The rules explain names for `rulePath`, built from git at HEAD (no bundle kept). */
async function rulesOf(rulePath: string) {
  const result = await runCli(
    ["explain", "--input", "input.json", "--revision", "HEAD", "--path", rulePath, "--json"],
    {
      cwd: repo.dir,
    },
  );
  expect(result.exitCode, result.stderr).toBe(0);
  const report = JSON.parse(result.stdout);
  return {
    value: report.replayed.result,
    rules: report.rules.map(
      (rule: { name: string; row: number; file: string; source: { text: string }[] }) => ({
        name: rule.name,
        file: rule.file,
        row: rule.row,
        first: rule.source[0]?.text,
      }),
    ),
  };
}

describe("explain names every body that contributed, and only those", () => {
  it("a partial set: each rule whose body added an element, not the one whose body failed", async () => {
    expect(await rulesOf("shapes/deny")).toEqual({
      value: ["a is one", "b is two"],
      rules: [
        { name: "deny", file: "shapes.rego", row: 3, first: "deny contains msg if {" },
        { name: "deny", file: "shapes.rego", row: 8, first: "deny contains msg if {" },
      ],
    });
  });

  it("an else chain: the branch that gave the value", async () => {
    expect(await rulesOf("shapes/level")).toEqual({
      value: "mid",
      rules: [{ name: "level", file: "shapes.rego", row: 19, first: '} else := "mid" if {' }],
    });
  });

  it("a ref head: the rule that defined the key, under the object it builds", async () => {
    const { value, rules } = await rulesOf("shapes/allow");
    expect(value).toEqual({ admin: true });
    expect(rules).toMatchObject([{ name: "allow.admin", row: 23 }]);
  });

  it("a rule that calls a function: the rule, not the function it called", async () => {
    expect(await rulesOf("shapes/counted")).toMatchObject({
      value: 2,
      rules: [{ name: "counted", row: 29 }],
    });
  });

  it("an undefined value: no rule, and an error under Kong's contract", async () => {
    const result = await runCli(
      ["explain", "--input", "input.json", "--revision", "HEAD", "--path", "shapes/missing", "--json"],
      {
        cwd: repo.dir,
      },
    );
    expect(result.exitCode, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({
      replayed: { defined: false, outcome: "error" },
      rules: [],
    });
  });

  it("--help shows how to ask about a logged decision, an S3 prefix, a candidate and an input", async () => {
    const help = await runCli(["explain", "--help"], { cwd: repo.dir });
    expect(help.exitCode).toBe(0);
    expect(help.stdout).toContain("Usage: policyship explain [options] [decision-id]");
    expect(help.stdout).toMatch(/Examples:\n {2}\$ policyship explain \S+ --decisions decisions\.ndjson/);
    for (const flag of ["--decisions s3://", "--candidate main", "--input request.json --revision"]) {
      expect(help.stdout).toContain(flag);
    }
  });
});
