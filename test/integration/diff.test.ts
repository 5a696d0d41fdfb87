import { generateKeyPairSync } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { expectOneLineError, runCli } from "../helpers/cli.ts";
import { createRepo, type TempRepo } from "../helpers/git-repo.ts";

let repo: TempRepo;
let revisionA: string;
let revisionB: string;

beforeAll(async () => {
  repo = await createRepo({ examplePolicies: true });
  revisionA = repo.git("rev-parse", "HEAD");
  const rego = await readFile(path.join(repo.dir, "policies/authz.rego"), "utf8");
  await repo.write(
    "policies/authz.rego",
    `${rego.replace('public_paths := {"/health"}', 'public_paths := {"/health", "/status"}')}\nmaintenance if input.request.http.headers["x-maintenance"]\n`,
  );
  const data = JSON.parse(await readFile(path.join(repo.dir, "policies/data.json"), "utf8"));
  data.roles.reader[0].methods = ["GET", "POST"];
  data.users.dave = { key: "dave-key", roles: ["reader"] };
  delete data.users.carol;
  await repo.write("policies/data.json", `${JSON.stringify(data, null, 2)}\n`);
  await repo.write("policies/extra/data.json", '{"limits": {"rps": 10}}\n');
  revisionB = repo.commit("open /status, readers may POST, dave replaces carol");
});

describe("policyship diff", () => {
  it("git refs built on the fly: --json names the changed and added rules and the data paths", async () => {
    const result = await runCli(["diff", revisionA.slice(0, 8), "HEAD", "--json"], { cwd: repo.dir });
    expect(result.exitCode, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(Object.keys(report)).toEqual(["from", "to", "manifest", "files", "rules", "data"]);
    expect(report.from).toEqual({ revision: revisionA });
    expect(report.to).toEqual({ revision: revisionB });
    expect(report.manifest.revision).toEqual({ from: revisionA, to: revisionB });
    // opa build merges every data file into the bundle's one data.json; the data paths tell them apart.
    expect(report.files).toEqual({ added: [], removed: [], changed: ["authz.rego", "data.json"] });
    expect(report.rules).toEqual({
      added: ["authz.maintenance"],
      removed: [],
      changed: ["authz.public_paths"],
    });
    expect(report.data).toEqual({
      added: ["/extra", "/users/dave"],
      removed: ["/users/carol"],
      changed: ["/roles/reader/0/methods/1"],
    });
  });

  it("--exit-code exits 1 when they differ and 0 when only the revision does; --patch shows the Rego diff", async () => {
    const differ = await runCli(["diff", revisionA, revisionB, "--exit-code", "--patch"], { cwd: repo.dir });
    expect(differ.exitCode).toBe(1);
    expect(expectOneLineError(differ)).toContain(`${revisionA} and ${revisionB} differ`);
    expect(differ.stdout).toContain('+public_paths := {"/health", "/status"}');
    expect(differ.stdout).toContain("~ rule authz.public_paths");
    // The same policies under another commit: no difference in files, rules or data.
    const same = repo.commit("an empty commit");
    const quiet = await runCli(["diff", revisionB, same, "--exit-code"], { cwd: repo.dir });
    expect(quiet.exitCode, quiet.stderr).toBe(0);
    expect(quiet.stdout).toContain("no difference in files, rules or data");
  });

  it("a published revision against a local bundle file, and signing key ids", async () => {
    // B's policies fail the example's tests on purpose, so build and publish rather than release.
    for (const args of [["build"], ["publish", "--to", "bundles"]]) {
      const step = await runCli(args, { cwd: repo.dir });
      expect(step.exitCode, step.stderr).toBe(0);
    }
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    await writeFile(
      path.join(repo.dir, "signing.pem"),
      privateKey.export({ type: "pkcs8", format: "pem" }) as string,
    );
    const signed = await runCli(["build", "--signing-key", "signing.pem", "--out", "signed", "--json"], {
      cwd: repo.dir,
    });
    expect(signed.exitCode, signed.stderr).toBe(0);
    const file = JSON.parse(signed.stdout).bundle as string;
    // --out elsewhere: the published object in the directory store is what is read, not dist/.
    const head = repo.git("rev-parse", "HEAD");
    const result = await runCli(
      ["diff", head.slice(0, 10), file, "--to", "bundles", "--out", "nowhere", "--json"],
      {
        cwd: repo.dir,
      },
    );
    expect(result.exitCode, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report.manifest.keyids).toEqual({ from: [], to: ["default"] });
    expect(report.files.added).toEqual([".signatures.json"]);
    expect(report.rules).toEqual({ added: [], removed: [], changed: [] });
  });

  it("an unknown ref is one line and exit 2", async () => {
    const result = await runCli(["diff", "no-such-ref", "HEAD"], { cwd: repo.dir });
    expect(result.exitCode).toBe(2);
    expect(expectOneLineError(result)).toMatch(
      /revision no-such-ref is neither published nor a commit this repository knows/,
    );
  });
});
