import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { readBundle } from "../../src/bundle/read.ts";
import { createEnforcer } from "../../src/enforcer/index.ts";
import { expectOneLineError, runCli } from "../helpers/cli.ts";
import { buildBundles } from "../helpers/enforcer-fixtures.ts";
import { type TarEntry, tarball } from "../helpers/tarball.ts";
import { repoRoot, toolPath } from "../helpers/tools.ts";

const rego = { name: "/a.rego", body: "package a\n\nallow := true\n" };
const data = { name: "/data.json", body: '{"x": 1}' };
const manifest = (revision: string) => ({ name: "/.manifest", body: JSON.stringify({ revision }) });

interface Row {
  name: string;
  entries: (revision: string) => TarEntry[];
  opa: "accepts" | "refuses";
  policyship: "accepts" | "refuses";
  /** Why policyship refuses what OPA loads; only these rows may differ. */
  stricter?: string;
  flags?: string[];
}

const ROWS: Row[] = [
  {
    name: "a bundle as opa writes it",
    entries: (r) => [manifest(r), rego, data],
    opa: "accepts",
    policyship: "accepts",
  },
  {
    name: "paths without the leading slash",
    entries: (r) => [
      { ...manifest(r), name: ".manifest" },
      { ...rego, name: "./a.rego" },
    ],
    opa: "accepts",
    policyship: "accepts",
  },
  {
    name: "data.json in a directory",
    entries: (r) => [manifest(r), rego, { name: "/x/data.json", body: '{"y": 2}' }],
    opa: "accepts",
    policyship: "accepts",
  },
  {
    name: "a duplicate .manifest (last would win)",
    entries: (r) => [manifest("someone-else"), rego, manifest(r)],
    opa: "refuses",
    policyship: "refuses",
  },
  {
    name: "a duplicate policy",
    entries: (r) => [manifest(r), rego, rego],
    opa: "refuses",
    policyship: "refuses",
  },
  {
    name: "a duplicate data.json",
    entries: (r) => [manifest(r), rego, data, data],
    opa: "refuses",
    policyship: "refuses",
  },
  {
    name: "a duplicate through ./",
    entries: (r) => [manifest(r), rego, { ...rego, name: "./a.rego" }],
    opa: "refuses",
    policyship: "refuses",
  },
  {
    name: "data overlapping another data file",
    entries: (r) => [
      manifest(r),
      rego,
      { name: "/x/data.json", body: '{"y": 2}' },
      { ...data, body: '{"x": {"y": 3}}' },
    ],
    opa: "refuses",
    policyship: "refuses",
  },
  {
    name: "a .manifest that is not JSON",
    entries: () => [{ name: "/.manifest", body: "{" }, rego],
    opa: "refuses",
    policyship: "refuses",
  },
  {
    name: "a data.json that is not JSON",
    entries: (r) => [manifest(r), rego, { ...data, body: "{" }],
    opa: "refuses",
    policyship: "refuses",
  },
  {
    name: "a policy that does not parse",
    entries: (r) => [manifest(r), { ...rego, body: "package" }],
    opa: "refuses",
    policyship: "refuses",
  },
  {
    name: "a symlinked data.json",
    entries: (r) => [manifest(r), rego, { name: "/data.json", type: "symlink", linkname: "/etc/passwd" }],
    opa: "accepts",
    policyship: "refuses",
    stricter: "OPA skips the link, so it activates a bundle without the data its author listed",
  },
  {
    name: "a hard link",
    entries: (r) => [manifest(r), rego, { name: "/b.rego", type: "hardlink", linkname: "/a.rego" }],
    opa: "accepts",
    policyship: "refuses",
    stricter: "OPA skips it: the listed file is not what loads",
  },
  {
    name: "a FIFO",
    entries: (r) => [manifest(r), rego, { name: "/pipe", type: "fifo" }],
    opa: "accepts",
    policyship: "refuses",
    stricter: "no tool that builds bundles writes devices",
  },
  {
    name: "a path climbing out with ..",
    entries: (r) => [manifest(r), rego, { name: "/../evil.rego", body: "package evil\n\nx := 1\n" }],
    opa: "accepts",
    policyship: "refuses",
    stricter: "OPA cleans it to another path than the archive names; extracting it elsewhere escapes",
  },
  {
    name: "an absolute path beyond opa's leading slash",
    entries: (r) => [manifest(r), rego, { name: "//etc/b.rego", body: "package b\n\nx := 1\n" }],
    opa: "accepts",
    policyship: "refuses",
    stricter: "absolute paths escape whoever extracts the archive",
  },
  {
    name: "a path longer than the limit",
    entries: (r) => [
      manifest(r),
      rego,
      { name: `/${"d/".repeat(600)}c.rego`, body: "package c\n\nx := 1\n" },
    ],
    opa: "accepts",
    policyship: "refuses",
    stricter: "bundleMaxPathLength (1024) bounds the work a crafted archive causes",
  },
  {
    name: "more entries than the limit",
    entries: (r) => [
      manifest(r),
      rego,
      ...Array.from({ length: 30 }, (_, i) => ({ name: `/d${i}/data.json`, body: "{}" })),
    ],
    opa: "accepts",
    policyship: "refuses",
    stricter: "bundleMaxEntries (here lowered to 20 by flag)",
    flags: ["--bundle-max-entries", "20"],
  },
  {
    name: "a file over the per-file limit",
    entries: (r) => [manifest(r), rego, { ...data, body: JSON.stringify({ pad: "x".repeat(5000) }) }],
    opa: "accepts",
    policyship: "refuses",
    stricter: "bundleMaxFileBytes (here lowered to 4096 by flag)",
    flags: ["--bundle-max-file-bytes", "4096"],
  },
];

function opaLoads(file: string, out: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(toolPath("opa"), ["build", "--bundle", file, "--output", out], (error) => resolve(!error));
  });
}

let store: string;
let cwd: string;
beforeAll(async () => {
  cwd = await mkdtemp(path.join(os.tmpdir(), "policyship-crafted-"));
  store = path.join(cwd, "bundles");
  await mkdir(store);
});

describe("whatever verify accepts, opa accepts, and the other way round", () => {
  for (const [index, row] of ROWS.entries()) {
    it(`${row.name}: opa ${row.opa}, policyship ${row.policyship}`, async () => {
      const revision = `crafted-${index}`;
      const bytes = tarball(row.entries(revision));
      const file = path.join(store, `${revision}.tar.gz`);
      await writeFile(file, bytes);
      const { createHash } = await import("node:crypto");
      const sha256 = createHash("sha256").update(bytes).digest("hex");
      await writeFile(`${file}.meta.json`, JSON.stringify({ revision, sha256 }));
      const opa = (await opaLoads(file, path.join(cwd, `${revision}.out.tar.gz`))) ? "accepts" : "refuses";
      const verified = await runCli(["verify", revision, "--to", store, ...(row.flags ?? [])], { cwd });
      const policyship = verified.exitCode === 0 ? "accepts" : "refuses";
      expect({ opa, policyship }).toEqual({ opa: row.opa, policyship: row.policyship });
      if (policyship === "refuses") {
        expect(verified.exitCode).toBe(1);
        expectOneLineError(verified);
      }
      // Never the dangerous direction; and only the rows that say why may differ at all.
      if (policyship === "accepts") expect(opa).toBe("accepts");
      if (!row.stricter) expect(policyship).toBe(opa);
    });
  }
});

describe("reading a bundle is bounded", () => {
  it("stops at the entry limit instead of reading all of a 200,000-entry tarball", async () => {
    const entries = Array.from({ length: 200_000 }, (_, i) => ({ name: `/f${i}`, body: "" }));
    const bomb = tarball(entries);
    expect(bomb.length).toBeLessThan(4 * 1024 * 1024);
    // Against reading a bundle at the limit, in the same run: reading all 200,000 entries would take about
    // 20 times as long, and a busy machine slows both alike.
    const atLimit = tarball([manifest("limit-1"), ...entries.slice(0, 9_999)]);
    const okStarted = performance.now();
    await readBundle(atLimit);
    const okMs = performance.now() - okStarted;
    const started = performance.now();
    await expect(readBundle(bomb)).rejects.toThrow(/more than 10000 entries/);
    expect(performance.now() - started).toBeLessThan(3 * okMs + 250);
  });

  it("the embedded enforcer refuses a bundle whose data.json is a symlink", async () => {
    const built = await buildBundles(path.join(repoRoot, "policies"), "links-1", "authz/allow");
    const wasm = (await readBundle(built.wasm, ["policy.wasm"])).kept.get("policy.wasm") as Buffer;
    const crafted = path.join(cwd, "linked.tar.gz");
    await writeFile(
      crafted,
      tarball([
        manifest("links-1"),
        { name: "/policy.wasm", body: wasm },
        { name: "/data.json", type: "symlink", linkname: "/etc/passwd" },
      ]),
    );
    const enforcer = createEnforcer({ bundle: crafted, entrypoint: "authz/allow", log: () => {} });
    await expect(enforcer.ready()).rejects.toThrow(/data\.json.* is a SymbolicLink/);
    expect(await enforcer.decide({})).toMatchObject({ allow: false, status: 500 });
    await enforcer.close();
    expect((await readFile(crafted)).length).toBeGreaterThan(0);
  });

  it("verify names the limit setting that refused a bundle", async () => {
    const bytes = tarball([manifest("limits-1"), rego]);
    const file = path.join(store, "limits-1.tar.gz");
    await writeFile(file, bytes);
    const { createHash } = await import("node:crypto");
    await writeFile(
      `${file}.meta.json`,
      JSON.stringify({ revision: "limits-1", sha256: createHash("sha256").update(bytes).digest("hex") }),
    );
    const result = await runCli(["verify", "limits-1", "--to", store, "--bundle-max-entries", "1"], { cwd });
    expect(result.exitCode).toBe(1);
    expect(expectOneLineError(result)).toMatch(
      /the bundle is refused: it has more than 1 entries — .*raise the bundle limits/,
    );
  });
});
