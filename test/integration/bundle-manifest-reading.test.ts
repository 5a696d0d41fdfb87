import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { expectOneLineError, runCli } from "../helpers/cli.ts";
import { type TarEntry, tarball } from "../helpers/tarball.ts";
import { toolPath } from "../helpers/tools.ts";

/**
 * OPA decodes a bundle's .manifest into a Go struct: keys match fields case-insensitively and the last match
 * wins, and every file ending in ".manifest" is decoded into it. policyship must never read a revision or
 * roots other than the ones OPA will run, so whatever the two could read differently is refused.
 */

const rego = { name: "/authz/a.rego", body: "package authz\n\nallow := true\n" };

/** What the real opa reads as the bundle's manifest. */
function opaManifest(file: string): Promise<{ revision?: string; roots?: string[] }> {
  return new Promise((resolve, reject) => {
    execFile(toolPath("opa"), ["inspect", "--format", "json", file], (error, stdout) => {
      if (error) reject(error);
      else resolve((JSON.parse(stdout) as { manifest: { revision?: string; roots?: string[] } }).manifest);
    });
  });
}

let cwd: string;
let store: string;
beforeAll(async () => {
  cwd = await mkdtemp(path.join(os.tmpdir(), "policyship-manifest-"));
  store = path.join(cwd, "bundles");
  await mkdir(store);
});

/** Puts a hand-made bundle in a directory store as revision `revision`, with honest metadata. */
async function place(revision: string, entries: TarEntry[]): Promise<string> {
  const bytes = tarball(entries);
  const file = path.join(store, `${revision}.tar.gz`);
  await writeFile(file, bytes);
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  await writeFile(`${file}.meta.json`, JSON.stringify({ revision, sha256 }));
  return file;
}

const CASES: { name: string; entries: TarEntry[]; refusal: RegExp }[] = [
  {
    name: "a .manifest with case-folded duplicate keys",
    entries: [
      {
        name: "/.manifest",
        body: '{"revision":"goodrev","Revision":"EVILREV","roots":["authz"],"Roots":[""]}',
      },
      rego,
    ],
    refusal: /\.manifest can be read two ways: the keys "revision" and "Revision" differ only in case/,
  },
  {
    name: "a .manifest whose revision is spelled with a long s (U+017F)",
    entries: [{ name: "/.manifest", body: '{"revision":"goodrev","reviſion":"EVILREV"}' }, rego],
    refusal: /\.manifest can be read two ways: the keys "revision" and "reviſion" differ only in case/,
  },
];

describe("a bundle whose .manifest OPA reads otherwise than JSON.parse", () => {
  for (const [index, row] of CASES.entries()) {
    it(`${row.name}: opa runs EVILREV, so verify refuses it (exit 1, one line)`, async () => {
      const file = await place("goodrev", row.entries);
      // The premise, from the real opa: it would run another revision than the one the key names.
      expect((await opaManifest(file)).revision).toBe("EVILREV");
      const verified = await runCli(["verify", "goodrev", "--to", store], { cwd });
      expect(verified.exitCode, `${index}: ${verified.stdout}`).toBe(1);
      expect(expectOneLineError(verified)).toMatch(row.refusal);
    });
  }

  it("a manifest in another file ending in .manifest is refused", async () => {
    // OPA (which refuses two) takes the only one there is, wherever it is and whatever precedes the suffix.
    const file = await place("goodrev", [
      rego,
      { name: "/authz/x.manifest", body: '{"revision":"goodrev","roots":["authz"]}' },
    ]);
    expect(await opaManifest(file)).toEqual({ revision: "goodrev", roots: ["authz"] });
    const verified = await runCli(["verify", "goodrev", "--to", store], { cwd });
    expect(verified.exitCode).toBe(1);
    expect(expectOneLineError(verified)).toMatch(
      /entry "authz\/x\.manifest" is one OPA also reads as the bundle's \.manifest/,
    );
  });

  it("a .manifest with a known field in other case (Roots alone) is refused", async () => {
    const file = await place("goodrev", [
      { name: "/.manifest", body: '{"revision":"goodrev","Roots":["authz","other"]}' },
      rego,
    ]);
    expect((await opaManifest(file)).roots).toEqual(["authz", "other"]);
    const verified = await runCli(["verify", "goodrev", "--to", store], { cwd });
    expect(verified.exitCode).toBe(1);
    expect(expectOneLineError(verified)).toMatch(
      /the key "Roots" is not spelled "roots", yet Go's JSON reader \(OPA's\) reads it as that field/,
    );
  });

  it("a .signatures.json with case-folded duplicate keys is refused", async () => {
    await place("goodrev", [
      { name: "/.manifest", body: '{"revision":"goodrev"}' },
      rego,
      { name: "/.signatures.json", body: '{"signatures":[],"Signatures":["e30.e30.e30"]}' },
    ]);
    const verified = await runCli(["verify", "goodrev", "--to", store], { cwd });
    expect(verified.exitCode).toBe(1);
    expect(expectOneLineError(verified)).toMatch(/\.signatures\.json can be read two ways/);
  });

  it("a .manifest as opa writes it, with metadata holding any JSON, still verifies", async () => {
    await place("goodrev", [
      {
        name: "/.manifest",
        body: '{"revision":"goodrev","roots":["authz"],"metadata":{"ratio":0.5,"team":"Authz"}}',
      },
      rego,
    ]);
    const verified = await runCli(["verify", "goodrev", "--to", store], { cwd });
    expect(verified.exitCode, verified.stderr).toBe(0);
    expect(verified.stdout).toContain("verified");
  });
});
