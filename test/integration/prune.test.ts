import { createReadStream } from "node:fs";
import { mkdtemp, readdir } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectOneLineError, runCli } from "../helpers/cli.ts";
import { createRepo, type TempRepo } from "../helpers/git-repo.ts";
import { type RunningOpa, startOpaServer } from "../helpers/opa-server.ts";
import { type RunningRegistry, startRegistry } from "../helpers/registry.ts";
import { awsEnv, createBucket, minio } from "../helpers/s3.ts";
import { listen } from "../helpers/serve.ts";

/** A directory store, served over HTTP the way a static web server would, so OPA can pull from it. */
async function servedDirectory(): Promise<OpenedStore> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-prune-dir-"));
  const server = await listen(
    http.createServer((request, response) => {
      const file = path.join(dir, path.basename(new URL(request.url ?? "/", "http://x").pathname));
      createReadStream(file)
        .on("error", () => response.writeHead(404).end())
        .on("open", () => response.writeHead(200, { "content-type": "application/gzip" }))
        .pipe(response);
    }),
  );
  // Only config takes --service-url; the environment gives it to every command.
  return {
    args: ["--to", dir],
    env: { POLICYSHIP_SERVICE_URL: server.url },
    files: () => readdir(dir),
    stop: server.close,
  };
}

/** The same guarantees on each store: S3 (MinIO), an OCI registry (CNCF Distribution) and a directory. */
interface OpenedStore {
  args: string[];
  /** Settings the store needs beyond its flags. */
  env?: NodeJS.ProcessEnv;
  /** Where the store is files: every file in it, so nothing a deleted revision left behind goes unseen. */
  files?: () => Promise<string[]>;
  stop: () => Promise<void>;
}

const STORES: { name: string; open: () => Promise<OpenedStore>; spacingMs: number }[] = [
  {
    name: "S3",
    open: async () => ({
      args: ["--bucket", await createBucket(), "--endpoint", minio().endpoint],
      stop: async () => {},
    }),
    // S3 listings carry whole seconds: one publish per second keeps "newest" unambiguous.
    spacingMs: 1100,
  },
  {
    name: "an OCI registry",
    open: async () => {
      const registry: RunningRegistry = await startRegistry();
      return { args: ["--store", `oci://${registry.host}/acme/policies`], stop: registry.stop };
    },
    // The build time in the manifest has milliseconds.
    spacingMs: 20,
  },
  {
    name: "a directory",
    open: servedDirectory,
    // File times have nanoseconds.
    spacingMs: 20,
  },
];

describe.each(STORES)(
  "policyship prune on $name: trim history without breaking a rollback",
  ({ open, spacingMs }) => {
    let repo: TempRepo;
    let store: string[];
    let stopStore: () => Promise<void> = async () => {};
    /** Published revisions, oldest first. */
    const revisions: string[] = [];
    let opa: RunningOpa | undefined;

    let storeEnv: NodeJS.ProcessEnv = {};
    let storeFiles: OpenedStore["files"];
    const cli = (args: string[]) => runCli(args, { cwd: repo.dir, env: { ...awsEnv(), ...storeEnv } });
    const published = async () => {
      const listed = await cli(["list", ...store, "--json"]);
      expect(listed.exitCode, listed.stderr).toBe(0);
      return (JSON.parse(listed.stdout) as { revision: string }[]).map((entry) => entry.revision);
    };

    beforeAll(async () => {
      repo = await createRepo({ examplePolicies: true });
      const opened = await open();
      store = opened.args;
      storeEnv = opened.env ?? {};
      storeFiles = opened.files;
      stopStore = opened.stop;
      for (let i = 0; i < 5; i++) {
        if (i > 0) repo.commit(`revision ${i}`);
        for (const args of [["build"], ["publish", ...store]]) {
          const step = await cli(args);
          expect(step.exitCode, step.stderr).toBe(0);
        }
        revisions.push(repo.git("rev-parse", "HEAD"));
        await new Promise((resolve) => setTimeout(resolve, spacingMs));
      }
    }, 120_000);
    afterAll(async () => {
      await opa?.stop();
      await stopStore();
    });

    it("lists what it would delete and deletes nothing without --yes", async () => {
      const result = await cli(["prune", "--keep", "2", ...store, "--json"]);
      expect(result.exitCode, result.stderr).toBe(0);
      const plan = JSON.parse(result.stdout);
      expect(plan.deleted).toBe(false);
      expect(plan.delete.map((entry: { revision: string }) => entry.revision).sort()).toEqual(
        revisions.slice(0, 3).sort(),
      );
      expect(plan.keep.map((entry: { reason: string }) => entry.reason)).toEqual(["newest", "newest"]);
      expect((await published()).sort()).toEqual([...revisions].sort());
    });

    it("never a protected revision, one an OPA runs, or one younger than --older-than", async () => {
      const config = path.join(repo.dir, "opa.yaml");
      const rendered = await cli(["config", "--revision", revisions[1] as string, ...store, "-o", config]);
      expect(rendered.exitCode, rendered.stderr).toBe(0);
      opa = await startOpaServer(["--config-file", config], { env: awsEnv(), waitForBundles: true });
      const result = await cli([
        "prune",
        "--keep",
        "2",
        "--protect",
        (revisions[0] as string).slice(0, 8),
        "--opa",
        opa.url,
        ...store,
        "--json",
      ]);
      expect(result.exitCode, result.stderr).toBe(0);
      const plan = JSON.parse(result.stdout);
      expect(plan.delete.map((entry: { revision: string }) => entry.revision)).toEqual([revisions[2]]);
      expect(plan.keep).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ revision: revisions[0], reason: "protected" }),
          expect.objectContaining({ revision: revisions[1], reason: "active" }),
        ]),
      );
      const young = await cli(["prune", "--keep", "1", "--older-than", "90d", ...store, "--json"]);
      expect(JSON.parse(young.stdout).delete).toEqual([]);
    });

    it("--yes deletes object and metadata; a publish running beside it is never lost", async () => {
      repo.commit("published during the prune");
      const built = await cli(["build"]);
      expect(built.exitCode, built.stderr).toBe(0);
      const [publishing, pruning] = await Promise.all([
        cli(["publish", ...store]),
        cli(["prune", "--keep", "2", "--protect", revisions[0] as string, ...store, "--yes", "--json"]),
      ]);
      expect(publishing.exitCode, publishing.stderr).toBe(0);
      expect(pruning.exitCode, pruning.stderr).toBe(0);
      const left = await published();
      expect(left).toContain(repo.git("rev-parse", "HEAD"));
      expect(left).toContain(revisions[0]);
      // Whichever listed first, the newest before the new one is among the two kept.
      expect(left).toContain(revisions[4]);
      expect(left).not.toContain(revisions[2]);
      const gone = await cli(["verify", revisions[2] as string, ...store]);
      expect(gone.exitCode).toBe(1);
      expect(expectOneLineError(gone)).toMatch(/is not published/);
      if (storeFiles) {
        const files = await storeFiles();
        expect(files.filter((name) => name.startsWith(revisions[2] as string))).toEqual([]);
        expect(files).toContain(`${revisions[0]}.tar.gz.meta.json`);
      }
    });

    it("refuses a missing --keep, --keep 0 and an unknown --protect with one line and exit 2", async () => {
      for (const [args, line] of [
        [["prune", ...store], /prune needs --keep <n>/],
        [["prune", "--keep", "0", ...store], /--keep: Number must be greater than or equal to 1/],
        [
          ["prune", "--keep", "1", "--protect", "deadbeef", ...store],
          /--protect deadbeef is not a published revision/,
        ],
      ] as const) {
        const result = await cli([...args]);
        expect(result.exitCode, result.stderr).toBe(2);
        expect(expectOneLineError(result)).toMatch(line);
      }
    });
  },
);
