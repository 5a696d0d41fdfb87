import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.ts";
import { createRepo, type TempRepo } from "../helpers/git-repo.ts";

// OPA decides on the number it was sent, as written: impact must replay that number, not JavaScript's.
// Each value is a JSON number token as an OPA decision log would hold it.
const NUMBERS = [
  "9007199254740993",
  "9007199254740992",
  "1.0",
  "1",
  "-0",
  "0",
  "1e400",
  "0.10000000000000000555",
  "0.1",
];

const BASE = "package authz\n\ndefault allow := false\n";
const CANDIDATE = `package authz

default allow := false

allow if input.n == 9007199254740993

allow if input.n > 1e300

allow if json.marshal(input.n) in {"-0", "1.0", "0.10000000000000000555"}
`;

let repo: TempRepo;
let base: string;
let candidate: string;
const opa = path.resolve(".tools/bin/opa");

beforeAll(async () => {
  repo = await createRepo();
  await repo.write("policies/authz.rego", BASE);
  repo.commit("deny everything");
  base = repo.git("rev-parse", "HEAD");
  await repo.write("policies/authz.rego", CANDIDATE);
  repo.commit("allow some numbers");
  candidate = repo.git("rev-parse", "HEAD");
  const lines = NUMBERS.map(
    (n, i) =>
      `{"decision_id":"n-${i}","path":"authz/allow","input":{"n":${n},"request":{"http":{"method":"GET","path":"/"}}},"result":false,"bundles":{"authz":{"revision":"${base}"}}}`,
  );
  await writeFile(path.join(repo.dir, "decisions.ndjson"), `${lines.join("\n")}\n`);
}, 120_000);

/** What opa itself decides for the candidate on the logged input, number as written. */
async function truth(n: string): Promise<boolean> {
  const file = path.join(repo.dir, "..", `${path.basename(repo.dir)}-candidate.rego`);
  await writeFile(file, CANDIDATE);
  const input = path.join(repo.dir, "..", `${path.basename(repo.dir)}-input.json`);
  await writeFile(input, `{"n":${n}}`);
  const { stdout } = await promisify(execFile)(opa, [
    "eval",
    "--format",
    "json",
    "--input",
    input,
    "-d",
    file,
    "data.authz.allow",
  ]);
  return JSON.parse(stdout).result[0].expressions[0].value === true;
}

describe("impact replays the numbers OPA was sent, as written", () => {
  it("finds every deny → allow opa finds, and invents none: big integers, 1.0, -0, 1e400, long decimals", async () => {
    const expected: string[] = [];
    for (const [i, n] of NUMBERS.entries()) if (await truth(n)) expected.push(`n-${i}`);
    // The candidate allows exactly these, as opa reads them; JavaScript's numbers would merge or change them.
    expect(expected).toEqual(["n-0", "n-2", "n-4", "n-6", "n-7"]);
    const result = await runCli(
      ["impact", "--decisions", "decisions.ndjson", "--candidate", candidate, "--json", "--examples", "20"],
      { cwd: repo.dir, timeoutMs: 120_000 },
    );
    expect(result.exitCode, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report.replayed).toBe(NUMBERS.length);
    expect(report.flips.deny_to_allow).toBe(expected.length);
    expect(report.changed).toBe(expected.length);
    const flipped = (report.examples as { decision_id: string }[]).map((e) => e.decision_id).sort();
    expect(flipped).toEqual(expected);
  }, 180_000);
});
