import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { chmod, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ListMultipartUploadsCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliResult, expectOneLineError, runCli } from "../helpers/cli.ts";
import { createRepo, gitEnv, type TempRepo } from "../helpers/git-repo.ts";
import { startLoopbackProxy } from "../helpers/loopback-proxy.ts";
import { type RunningRegistry, startRegistry } from "../helpers/registry.ts";
import { awsEnv, createBucket, minio, s3Client } from "../helpers/s3.ts";
import { startS3FaultProxy } from "../helpers/s3-fault-proxy.ts";
import { repoRoot, toolPath } from "../helpers/tools.ts";

/**
 * Ctrl-C (SIGINT) and SIGTERM, sent to the policyship process alone as `kill <pid>` does: every command
 * exits 130 / 143 with one line, and leaves nothing behind — no multipart upload or object in the bucket,
 * no tag in the registry, no partial file in the out dir, no temp dir, no opa still running.
 */

let repo: TempRepo;
let revision: string;
let baseRevision: string;

interface Running {
  pid: number;
  exited: Promise<CliResult & { signal: NodeJS.Signals | null }>;
}

/** The built CLI as a separate process, like runCli, but returned while it runs so that it can be signalled. */
function startCli(args: string[], env: Record<string, string> = {}): Running {
  const child = spawn(toolPath("node"), [path.join(repoRoot, "bin/policyship.js"), ...args], {
    cwd: repo.dir,
    env: {
      ...process.env,
      ...gitEnv,
      PATH: `${path.join(repoRoot, ".tools/bin")}${path.delimiter}${process.env.PATH ?? ""}`,
      GITHUB_ACTIONS: "",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk;
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk;
  });
  const exited = new Promise<CliResult & { signal: NodeJS.Signals | null }>((resolve) =>
    child.on("close", (code, signal) => resolve({ exitCode: code ?? -1, signal, stdout, stderr })),
  );
  return { pid: child.pid as number, exited };
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(20);
  }
}

/** The fields of /proc/<pid>/stat after the command name: state, parent pid, … (undefined once gone). */
function procStat(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    return text.slice(text.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/** The opa processes the given process started (running `subcommand` when given). */
function opaChildrenOf(pid: number, subcommand?: string): number[] {
  return readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((child) => {
      if (procStat(child)?.[1] !== String(pid)) return false;
      try {
        const [program = "", first] = readFileSync(`/proc/${child}/cmdline`, "utf8").split("\0");
        return path.basename(program) === "opa" && (subcommand === undefined || first === subcommand);
      } catch {
        return false;
      }
    });
}

/** Running: it exists and is not a zombie waiting to be reaped. */
function running(pid: number): boolean {
  const state = procStat(pid)?.[0];
  return state !== undefined && state !== "Z" && state !== "X";
}

const INTERRUPTED = { SIGINT: "interrupted", SIGTERM: "interrupted (SIGTERM)" } as const;
const EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;

/** Exit 130/143 and, as its one policyship: line, `interrupted — <outcome>`. */
function expectInterrupted(
  result: CliResult & { signal: NodeJS.Signals | null },
  signal: "SIGINT" | "SIGTERM",
) {
  expect({ exitCode: result.exitCode, signal: result.signal }, result.stderr).toEqual({
    exitCode: EXIT_CODES[signal],
    signal: null,
  });
  const line = expectOneLineError(result);
  expect(result.stderr.split("\n").filter((text) => text.startsWith("policyship:"))).toEqual([line]);
  expect(line.startsWith(`policyship: ${INTERRUPTED[signal]} — `), line).toBe(true);
  return line;
}

/** Data that does not compress, so that the bundle is large enough for S3's multipart upload (> 16 MiB). */
async function writeLargeData(at: string) {
  await repo.write(at, `${JSON.stringify({ blob: randomBytes(18 * 1024 * 1024).toString("base64") })}\n`);
}

beforeAll(async () => {
  repo = await createRepo({ examplePolicies: true });
  await writeLargeData("policies/large/data.json");
  baseRevision = repo.commit("large data");
  await writeLargeData("policies/large/data.json");
  revision = repo.commit("other large data");
  const built = await runCli(["build"], { cwd: repo.dir, timeoutMs: 120_000 });
  expect(built.exitCode, built.stderr).toBe(0);
}, 180_000);

describe("publish to S3, interrupted mid-upload", () => {
  const proxies: { close: () => Promise<void> }[] = [];
  afterAll(async () => {
    await Promise.all(proxies.map((proxy) => proxy.close()));
  });

  it.each([
    ["SIGINT", "publish", []],
    ["SIGTERM", "publish", ["--json"]],
    ["SIGINT", "release", []],
  ] as const)(
    "%s to %s aborts the multipart upload: no upload, no object, one line",
    async (signal, command, flags) => {
      // The second part is held on its way to MinIO, so the signal lands while the upload is in progress.
      const proxy = await startS3FaultProxy(minio().endpoint, 120_000);
      proxies.push(proxy);
      proxy.rule = (operation, nth) => (operation === "UploadPart" && nth >= 2 ? "delay" : undefined);
      const client = s3Client();
      const bucket = await createBucket(client);
      const publishing = startCli([command, "--bucket", bucket, "--endpoint", proxy.url, ...flags], awsEnv());
      const uploads = async () =>
        (await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? [];
      await until(
        "a multipart upload is in progress",
        async () =>
          proxy.seen.filter((seen) => seen.startsWith("UploadPart")).length >= 2 &&
          (await uploads()).length > 0,
      );
      process.kill(publishing.pid, signal);
      const result = await publishing.exited;
      expect(await uploads()).toEqual([]);
      expect((await client.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? []).toEqual([]);
      expect(proxy.seen).toContain("AbortMultipartUpload");
      const line = expectInterrupted(result, signal);
      expect(line).toBe(
        `policyship: ${INTERRUPTED[signal]} — nothing was published (the upload was aborted)`,
      );
      if (flags.length) {
        expect(JSON.parse(result.stdout)).toMatchObject({
          error: { message: INTERRUPTED[signal], exitCode: EXIT_CODES[signal] },
        });
      }
    },
    120_000,
  );
});

describe("publish to S3, interrupted while the abort gets no answer", () => {
  let proxy: Awaited<ReturnType<typeof startS3FaultProxy>>;
  beforeAll(async () => {
    proxy = await startS3FaultProxy(minio().endpoint, 120_000);
    proxy.rule = (operation, nth) =>
      (operation === "UploadPart" && nth >= 2) || operation === "AbortMultipartUpload" ? "delay" : undefined;
  });
  afterAll(async () => {
    await proxy?.close();
  });

  async function interruptMidUpload(): Promise<{ bucket: string; publishing: Running }> {
    const client = s3Client();
    const bucket = await createBucket(client);
    const before = proxy.seen.filter((seen) => seen.startsWith("UploadPart")).length;
    const publishing = startCli(["publish", "--bucket", bucket, "--endpoint", proxy.url], awsEnv());
    await until("a multipart upload is in progress", async () => {
      const parts = proxy.seen.filter((seen) => seen.startsWith("UploadPart")).length - before;
      const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      return parts >= 2 && (uploads.Uploads ?? []).length > 0;
    });
    process.kill(publishing.pid, "SIGINT");
    return { bucket, publishing };
  }

  it("waits a bounded time, then names the upload and the command that aborts it", async () => {
    const { bucket, publishing } = await interruptMidUpload();
    const started = Date.now();
    const result = await publishing.exited;
    expect(Date.now() - started).toBeLessThan(9_000);
    const line = expectInterrupted(result, "SIGINT");
    expect(line).toMatch(
      new RegExp(
        `— nothing was published, but the abort of its multipart upload got no answer in 5 s; abort it with aws s3api abort-multipart-upload --bucket ${bucket} --key \\S+\\.tar\\.gz --upload-id \\S+$`,
      ),
    );
  }, 60_000);

  it("a second Ctrl-C while the abort is pending exits at once", async () => {
    const { publishing } = await interruptMidUpload();
    await sleep(300);
    const second = Date.now();
    process.kill(publishing.pid, "SIGINT");
    const result = await publishing.exited;
    expect(Date.now() - second).toBeLessThan(1_500);
    expect(expectInterrupted(result, "SIGINT")).toBe(
      "policyship: interrupted — a second signal cut its cleanup short: a temp file or an unfinished upload may be left behind",
    );
  }, 60_000);
});

describe("publish to an OCI registry, interrupted mid-blob-upload", () => {
  let registry: RunningRegistry;
  beforeAll(async () => {
    registry = await startRegistry();
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it("writes no tag (nor claim), and a re-run publishes normally", async () => {
    let held = false;
    // In front of the registry: the bundle's blob upload is held (its bytes sent, no answer yet).
    const proxy = await startLoopbackProxy(`http://${registry.host}`, ({ req, body, forward, later }) => {
      if (req.method === "PUT" && req.url?.includes("/blobs/uploads/") && body.length > 1024 * 1024) {
        held = true;
        return later(120_000, () => forward({ host: "keep" }));
      }
      forward({ host: "keep" });
    });
    const host = new URL(proxy.url).host;
    const env = { DOCKER_CONFIG: path.join(repo.dir, "no-docker") };
    try {
      const publishing = startCli(["publish", "--store", `oci://${host}/acme/policies`], env);
      await until("the bundle's blob is being uploaded", () => held);
      process.kill(publishing.pid, "SIGINT");
      const result = await publishing.exited;
      const tags = await fetch(`http://${registry.host}/v2/acme/policies/tags/list`);
      // The repository has no tags at all, or none for this revision and no claim.
      const names = tags.status === 404 ? [] : (((await tags.json()) as { tags?: string[] }).tags ?? []);
      expect(names.filter((tag) => tag.startsWith(revision))).toEqual([]);
      const line = expectInterrupted(result, "SIGINT");
      expect(line).toContain("nothing was published (no tag was written");
    } finally {
      await proxy.close();
    }
    const again = await runCli(["publish", "--store", `oci://${registry.host}/acme/policies`, "--json"], {
      cwd: repo.dir,
      env,
    });
    expect(again.exitCode, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ revision, created: true });
  }, 120_000);
});

describe("build, diff and impact, interrupted while opa runs", () => {
  it("build: SIGTERM stops opa and leaves no partial file in the out dir", async () => {
    const building = startCli(["build", "--out", "interrupted-out"]);
    let opa: number[] = [];
    await until("opa build runs", () => {
      opa = opaChildrenOf(building.pid);
      return opa.length > 0;
    });
    process.kill(building.pid, "SIGTERM");
    const result = await building.exited;
    expect(opa.filter(running)).toEqual([]);
    // opa, had it run on, would write its output (under a temp name) here.
    await sleep(2_000);
    expect(await readdir(path.join(repo.dir, "interrupted-out")).catch(() => [])).toEqual([]);
    const line = expectInterrupted(result, "SIGTERM");
    expect(line).toBe("policyship: interrupted (SIGTERM) — nothing was written to interrupted-out");
  }, 60_000);

  it.each([
    ["diff", () => ["diff", baseRevision, revision]],
    ["impact", () => ["impact", "--decisions", "decisions.ndjson", "--base", baseRevision]],
  ])(
    "%s: SIGINT stops opa and removes its temp dirs",
    async (_name, args) => {
      await writeFile(
        path.join(repo.dir, "decisions.ndjson"),
        `${JSON.stringify({ decision_id: "x", path: "authz/allow", input: {} })}\n`,
      );
      const tmp = await mkdtemp(path.join(os.tmpdir(), "policyship-interrupt-tmp-"));
      const comparing = startCli(args(), { TMPDIR: tmp });
      let opa: number[] = [];
      await until("opa runs with a temp dir made", async () => {
        opa = opaChildrenOf(comparing.pid);
        return opa.length > 0 && (await readdir(tmp)).length > 0;
      });
      process.kill(comparing.pid, "SIGINT");
      const result = await comparing.exited;
      expect(opa.filter(running)).toEqual([]);
      expect(await readdir(tmp)).toEqual([]);
      await rm(tmp, { recursive: true, force: true });
      expectInterrupted(result, "SIGINT");
    },
    60_000,
  );

  it.each(["SIGINT", "SIGTERM"] as const)(
    "impact: %s before opa has read its batch is one line, not an EPIPE crash, and removes the temp dirs",
    async (signal) => {
      // The real opa behind a shim that, for `opa eval`, closes its stdin unread and waits to be stopped, as
      // an opa stopped mid-read does: the batch (far more than a pipe holds) cannot be written to the end.
      const tmp = await mkdtemp(path.join(os.tmpdir(), "policyship-interrupt-tmp-"));
      const shimDir = await mkdtemp(path.join(os.tmpdir(), "policyship-interrupt-opa-"));
      const marker = path.join(shimDir, "eval-started");
      await writeFile(
        path.join(shimDir, "opa"),
        `#!/bin/sh\nif [ "$1" = eval ]; then exec 0<&-; : > '${marker}'; sleep 20 </dev/null >/dev/null 2>&1 & wait $!; fi\nexec '${toolPath("opa")}' "$@"\n`,
      );
      await chmod(path.join(shimDir, "opa"), 0o755);
      const padding = "p".repeat(1_000);
      const lines = Array.from({ length: 4_000 }, (_, i) =>
        JSON.stringify({ decision_id: `e${i}`, path: "authz/allow", input: { padding, i } }),
      );
      await writeFile(path.join(repo.dir, "decisions.ndjson"), `${lines.join("\n")}\n`);
      const replaying = startCli(
        ["impact", "--decisions", "decisions.ndjson", "--base", baseRevision, "--json"],
        { TMPDIR: tmp, PATH: `${shimDir}${path.delimiter}${process.env.PATH ?? ""}` },
      );
      await until("opa eval has started", async () => (await readdir(shimDir)).includes("eval-started"));
      process.kill(replaying.pid, signal);
      const result = await replaying.exited;
      await rm(shimDir, { recursive: true, force: true });
      expect(result.stderr).not.toContain("EPIPE");
      expectInterrupted(result, signal);
      expect(JSON.parse(result.stdout).error.message).toBe(INTERRUPTED[signal]);
      expect(await readdir(tmp)).toEqual([]);
      await rm(tmp, { recursive: true, force: true });
    },
    60_000,
  );

  it("impact: SIGINT during the replay prints no report from the stopped opa", async () => {
    const decision = {
      decision_id: "",
      path: "authz/allow",
      input: { request: { http: { method: "GET" } } },
    };
    const lines = Array.from({ length: 400 }, (_, i) =>
      JSON.stringify({ ...decision, decision_id: `d${i}` }),
    );
    await writeFile(path.join(repo.dir, "decisions.ndjson"), `${lines.join("\n")}\n`);
    const replaying = startCli([
      "impact",
      "--decisions",
      "decisions.ndjson",
      "--base",
      baseRevision,
      "--json",
    ]);
    await until("opa eval replays the decisions", () => opaChildrenOf(replaying.pid, "eval").length > 0);
    process.kill(replaying.pid, "SIGINT");
    const result = await replaying.exited;
    expect(expectInterrupted(result, "SIGINT")).toBe("policyship: interrupted — nothing was left half-done");
    expect(JSON.parse(result.stdout)).toEqual({
      error: { message: "interrupted", hint: "nothing was left half-done", exitCode: 130 },
    });
  }, 60_000);
});
