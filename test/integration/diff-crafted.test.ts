import { execFileSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { expectOneLineError, runCli } from "../helpers/cli.ts";
import { createRepo, type TempRepo } from "../helpers/git-repo.ts";
import { type TarEntry, tarball } from "../helpers/tarball.ts";
import { toolPath } from "../helpers/tools.ts";

/**
 * Crafted bundles whose fields have a shape OPA does not load: diff refuses each with one line and exit 1,
 * verify (directory store) too, and the real opa refuses the same bytes. None is an internal error.
 */

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
const nested = (depth: number, leaf = "") => `${"[".repeat(depth)}${leaf}${"]".repeat(depth)}`;

interface Crafted {
  name: string;
  /** Files beside authz.rego; `.manifest` replaces the default one. */
  files: Record<string, string>;
  /** What diff says after "<file> is not a bundle OPA would load: ". */
  reason: RegExp;
}

const CRAFTED: Crafted[] = [
  // .signatures.json: OPA's SignaturesConfig is {"signatures": [string]}, each a JWT
  {
    name: "a signature that is a number",
    files: { ".signatures.json": '{"signatures":[123]}' },
    reason: /\.signatures\.json signatures\[0\] is a number, not a string/,
  },
  {
    name: "a .signatures.json that is not JSON",
    files: { ".signatures.json": "not json" },
    reason: /\.signatures\.json is not valid JSON/,
  },
  {
    name: "a signature whose header is not JSON",
    files: { ".signatures.json": '{"signatures":["a.bnVsbA.c"]}' },
    reason: /signatures\[0\] is not a JWT: its header is not a JSON object/,
  },
  {
    name: "a signature whose payload is null",
    files: {
      ".signatures.json": JSON.stringify({ signatures: [`${b64({ alg: "RS256" })}.${b64(null)}.c`] }),
    },
    reason: /signatures\[0\] is not a JWT: its payload is not a JSON object/,
  },
  {
    name: "a signature that is not three parts",
    files: { ".signatures.json": '{"signatures":["abc"]}' },
    reason: /signatures\[0\] is not a JWT \(1 parts, not 3\)/,
  },
  {
    name: "a signature whose keyid is a number",
    files: {
      ".signatures.json": JSON.stringify({ signatures: [`${b64({ alg: "RS256" })}.${b64({ keyid: 5 })}.c`] }),
    },
    reason: /signatures\[0\]: its payload's keyid is not a string/,
  },
  {
    name: "signatures that are a string",
    files: { ".signatures.json": '{"signatures":"abc"}' },
    reason: /signatures is a string, not an array of strings/,
  },
  {
    name: "a .signatures.json that is an array",
    files: { ".signatures.json": "[]" },
    reason: /\.signatures\.json is an array, not an object/,
  },
  // data: encoding/json (OPA's reader) stops at 10,000 levels
  {
    name: "a data.json nested 200,000 deep",
    files: { "data.json": `{"a":${nested(200_000)}}` },
    reason: /data\.json nests deeper than 10000 levels/,
  },
  {
    name: "a nested data.json one level past OPA's limit",
    files: { "x/data.json": nested(10_001) },
    reason: /x\/data\.json nests deeper than 10000 levels/,
  },
  {
    name: "a data.json that is not JSON",
    files: { "data.json": '{"a":' },
    reason: /data\.json is not valid JSON/,
  },
  // .manifest: OPA's bundle.Manifest
  {
    name: "a manifest revision that is a number",
    files: { ".manifest": '{"revision":5}' },
    reason: /\.manifest revision is a number, not a string/,
  },
  {
    name: "manifest roots that are a string",
    files: { ".manifest": '{"revision":"r","roots":"x"}' },
    reason: /\.manifest roots is a string, not an array of strings/,
  },
  {
    name: "a manifest root that is an object",
    files: { ".manifest": '{"revision":"r","roots":[{}]}' },
    reason: /\.manifest roots\[0\] is an object, not a string/,
  },
  {
    name: "a manifest rego_version that is a string",
    files: { ".manifest": '{"revision":"r","rego_version":"0"}' },
    reason: /\.manifest rego_version is a string, not an integer/,
  },
  {
    name: "a manifest wasm entry that is a number",
    files: { ".manifest": '{"revision":"r","wasm":[5]}' },
    reason: /\.manifest wasm\[0\] is a number, not an object/,
  },
  {
    name: "a manifest wasm entrypoint that is an array",
    files: { ".manifest": '{"revision":"r","wasm":[{"entrypoint":[],"module":"/policy.wasm"}]}' },
    reason: /\.manifest wasm\[0\]\.entrypoint is an array, not a string/,
  },
  {
    name: "manifest metadata that is an array",
    files: { ".manifest": '{"revision":"r","metadata":[]}' },
    reason: /\.manifest metadata is an array, not an object/,
  },
  {
    name: "a manifest nested 200,000 deep",
    files: { ".manifest": `{"revision":"r","metadata":{"a":${nested(200_000)}}}` },
    reason: /\.manifest nests deeper than 10000 levels/,
  },
];

let repo: TempRepo;
let sha: string;

function bundleOf(files: Record<string, string>, revision = "r"): Buffer {
  const entries: TarEntry[] = [
    { name: "/.manifest", body: JSON.stringify({ revision, roots: [""] }) },
    { name: "/authz.rego", body: "package authz\n\nallow if true\n" },
  ];
  for (const [name, body] of Object.entries(files)) {
    const existing = entries.find((entry) => entry.name === `/${name}`);
    if (existing) existing.body = body;
    else entries.push({ name: `/${name}`, body });
  }
  return tarball(entries);
}

/** Whether the real opa loads the bundle: `opa build --bundle`, as verify runs it. */
function opaLoads(file: string): boolean {
  try {
    execFileSync(toolPath("opa"), ["build", "--bundle", file, "--output", `${file}.out`], { stdio: "pipe" });
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  repo = await createRepo({ examplePolicies: true });
  sha = repo.git("rev-parse", "HEAD");
  await writeFile(path.join(repo.dir, "one.tar.gz"), bundleOf({}));
});

describe("diff and verify of crafted bundles", () => {
  for (const [index, crafted] of CRAFTED.entries()) {
    it(`${crafted.name}: one line, exit 1, and opa refuses it too`, async () => {
      const file = `crafted-${index}.tar.gz`;
      await writeFile(path.join(repo.dir, file), bundleOf(crafted.files));
      for (const args of [
        ["one.tar.gz", file],
        [file, "one.tar.gz"],
      ]) {
        const result = await runCli(["diff", ...args], { cwd: repo.dir });
        expect(result.exitCode, result.stderr).toBe(1);
        const line = expectOneLineError(result);
        expect(line.startsWith(`policyship: ${file} is not a bundle OPA would load: `), line).toBe(true);
        expect(line).toMatch(crafted.reason);
        expect(result.stdout).toBe("");
      }
      expect(opaLoads(path.join(repo.dir, file))).toBe(false);
    });
  }

  it("verify on a directory store refuses each crafted bundle with one line and exit 1", async () => {
    const store = path.join(repo.dir, "store");
    await mkdir(store, { recursive: true });
    for (const crafted of CRAFTED) {
      const files = { ...crafted.files };
      // The manifest cases keep their bad field; the key must still name the manifest's revision.
      if (files[".manifest"])
        files[".manifest"] = files[".manifest"].replace('"revision":"r"', `"revision":"${sha}"`);
      const body = bundleOf(files, sha);
      await writeFile(path.join(store, `${sha}.tar.gz`), body);
      const digest = (await import("node:crypto")).createHash("sha256").update(body).digest("hex");
      await writeFile(path.join(store, `${sha}.tar.gz.meta.json`), JSON.stringify({ sha256: digest }));
      const result = await runCli(["verify", sha, "--to", "store"], { cwd: repo.dir });
      expect(result.exitCode, `${crafted.name}: ${result.stderr}`).toBe(1);
      expect(expectOneLineError(result), crafted.name).toMatch(
        /is not a bundle OPA would load|OPA refuses to load the bundle|manifest revision is/,
      );
    }
  });

  it('{"signatures": null} is no signature, as OPA reads it: diff reports only the file', async () => {
    await writeFile(
      path.join(repo.dir, "null-signatures.tar.gz"),
      bundleOf({ ".signatures.json": '{"signatures":null}' }),
    );
    expect(opaLoads(path.join(repo.dir, "null-signatures.tar.gz"))).toBe(true);
    const result = await runCli(["diff", "one.tar.gz", "null-signatures.tar.gz", "--json"], {
      cwd: repo.dir,
    });
    expect(result.exitCode, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report.files.added).toEqual([".signatures.json"]);
    expect(report.manifest.keyids).toBeUndefined();
  });

  it("data nested as deep as OPA reads (10,000 levels) is compared to its deepest leaf", async () => {
    await writeFile(
      path.join(repo.dir, "deep-1.tar.gz"),
      bundleOf({ "data.json": `{"a":${nested(9_999, "1")}}` }),
    );
    await writeFile(
      path.join(repo.dir, "deep-2.tar.gz"),
      bundleOf({ "data.json": `{"a":${nested(9_999, "2")}}` }),
    );
    expect(opaLoads(path.join(repo.dir, "deep-2.tar.gz"))).toBe(true);
    const result = await runCli(["diff", "deep-1.tar.gz", "deep-2.tar.gz", "--json"], { cwd: repo.dir });
    expect(result.exitCode, result.stderr).toBe(0);
    const { changed } = JSON.parse(result.stdout).data as { changed: string[] };
    // One pointer: /a, then index 0 of each of the 9,999 arrays (compared as a boolean to keep output short).
    expect(changed.length).toBe(1);
    expect(changed[0] === `/a${"/0".repeat(9_999)}`).toBe(true);
  });

  it("a rule whose terms nest 3,000 deep (opa parse writes it ~10,000 deep) is compared, not a crash", async () => {
    const rule = (leaf: string) => `package authz\n\nallow if true\n\nx := ${nested(3_000, leaf)}\n`;
    await writeFile(path.join(repo.dir, "rule-1.tar.gz"), bundleOf({ "authz.rego": rule("1") }));
    await writeFile(path.join(repo.dir, "rule-2.tar.gz"), bundleOf({ "authz.rego": rule("2") }));
    expect(opaLoads(path.join(repo.dir, "rule-2.tar.gz"))).toBe(true);
    const result = await runCli(["diff", "rule-1.tar.gz", "rule-2.tar.gz", "--json"], { cwd: repo.dir });
    expect(result.exitCode, result.stderr.slice(0, 500)).toBe(0);
    expect(JSON.parse(result.stdout).rules).toEqual({ added: [], removed: [], changed: ["authz.x"] });
  });
});
