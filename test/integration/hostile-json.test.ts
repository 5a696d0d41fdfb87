import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { afterEach, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { run } from "../../src/cli.ts";
import { EmbeddedEngine } from "../../src/enforcer/embedded.ts";
import { runCli } from "../helpers/cli.ts";
import { awsEnv, createBucket, minio, s3Client } from "../helpers/s3.ts";
import { serversClosedAfterEach } from "../helpers/serve.ts";
import { tarball } from "../helpers/tarball.ts";
import { repoRoot } from "../helpers/tools.ts";

/**
 * Every reader of outside JSON, run in this process on hostile input (real bundles, real opa, a loopback
 * OPA), and then Object.prototype must hold exactly what it held before.
 */

const PROTOTYPE_KEYS = Object.getOwnPropertyNames(Object.prototype).sort();
const serve = serversClosedAfterEach();

afterEach(() => {
  // A failing reader must not poison the tests after it.
  for (const key of Object.getOwnPropertyNames(Object.prototype))
    if (!PROTOTYPE_KEYS.includes(key)) delete (Object.prototype as Record<string, unknown>)[key];
});

function expectCleanPrototype() {
  expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(PROTOTYPE_KEYS);
}

/** The CLI in this process, its stdout and the error it threw (if any). */
async function runHere(
  args: string[],
  cwd: string,
  extraEnv: Record<string, string> = {},
): Promise<{ stdout: string; error?: Error }> {
  let stdout = "";
  const env = {
    ...process.env,
    ...extraEnv,
    PATH: `${path.join(repoRoot, ".tools/bin")}${path.delimiter}${process.env.PATH}`,
  };
  try {
    await run([...args, "--json"], {
      stdout: (text) => {
        stdout += text;
      },
      stderr: () => {},
      env,
      cwd,
    });
    return { stdout };
  } catch (error) {
    return { stdout, error: error as Error };
  }
}

const REVISION_A = "a".repeat(40);
const REVISION_B = "b".repeat(40);
let scratch: string;
let store: string;

const manifest = (revision: string) => ({
  name: ".manifest",
  // A manifest's own __proto__ is a key like any other; it must not become the manifest's revision.
  body: `{"revision": "${revision}", "roots": [""], "__proto__": {"revision": "planted"}}`,
});

/** Writes a bundle into the directory store the way a tampered store would hold it, with its metadata. */
async function plant(revision: string, entries: Parameters<typeof tarball>[0], meta: string) {
  const bytes = tarball(entries);
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  await writeFile(path.join(store, `${revision}.tar.gz`), bytes);
  await writeFile(path.join(store, `${revision}.tar.gz.meta.json`), meta.replace("SHA256", sha256));
}

beforeAll(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), "policyship-hostile-"));
  store = path.join(scratch, "store");
  await mkdir(store);
  await plant(
    REVISION_A,
    [manifest(REVISION_A), { name: "authz.rego", body: "package authz\n\nallow := false\n" }],
    '{"sha256": "SHA256"}',
  );
  await plant(
    REVISION_B,
    [
      manifest(REVISION_B),
      { name: "authz.rego", body: "package authz\n\nallow := true\n" },
      { name: "__proto__/data.json", body: '{"GIT_EXTERNAL_DIFF": "/tmp/never", "shell": "/bin/sh"}' },
      { name: "constructor/prototype/data.json", body: '{"polluted": "yes"}' },
      { name: "data.json", body: '{"__proto__": {"polluted": "yes"}}' },
    ],
    '{"sha256": "SHA256", "__proto__": "not a prototype", "constructor": "a key"}',
  );
});

describe("readers of outside JSON leave Object.prototype alone", () => {
  it("diff of a tampered store object and of a bundle file, --patch included", async () => {
    const fromStore = await runHere(["diff", REVISION_A, REVISION_B, "--to", store, "--patch"], scratch);
    expect(fromStore.error).toBeUndefined();
    expectCleanPrototype();
    expect(JSON.parse(fromStore.stdout).data.added).toEqual(["/__proto__", "/constructor"]);
    const fromFile = await runHere(
      ["diff", path.join(store, `${REVISION_A}.tar.gz`), path.join(store, `${REVISION_B}.tar.gz`)],
      scratch,
    );
    expect(fromFile.error).toBeUndefined();
    expectCleanPrototype();
  });

  it("verify and list read the directory store's .meta.json and the manifest as data", async () => {
    const verified = await runHere(["verify", REVISION_B, "--to", store], scratch);
    expect(verified.error).toBeUndefined();
    expectCleanPrototype();
    const report = JSON.parse(verified.stdout);
    expect(report.revision).toBe(REVISION_B);
    // .meta.json's own __proto__ and constructor are metadata keys, shown as such.
    expect(report.metadata).toEqual(
      JSON.parse(`{"sha256": "${report.sha256}", "__proto__": "not a prototype", "constructor": "a key"}`),
    );
    const listed = await runHere(["list", "--to", store], scratch);
    expect(listed.error).toBeUndefined();
    expect(
      JSON.parse(listed.stdout)
        .map((entry: { revision: string }) => entry.revision)
        .sort(),
    ).toEqual([REVISION_A, REVISION_B]);
    expectCleanPrototype();
  });

  it("S3: metadata named __proto__ and constructor stays metadata for verify, list and diff", async () => {
    const bucket = await createBucket();
    const client = s3Client();
    for (const revision of [REVISION_A, REVISION_B]) {
      const body = await readFile(path.join(store, `${revision}.tar.gz`));
      await client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: `${revision}.tar.gz`,
          Body: body,
          // Keys a tampering writer can set: the SDK sends them as x-amz-meta-__proto__ and so on.
          Metadata: JSON.parse(
            `{"sha256": "${createHash("sha256").update(body).digest("hex")}", "__proto__": "planted", "constructor": "planted"}`,
          ),
        }),
      );
    }
    const s3 = ["--bucket", bucket, "--endpoint", minio().endpoint];
    // The SDK's credential chain reads this process's own environment.
    const saved = { ...process.env };
    Object.assign(process.env, awsEnv());
    onTestFinished(() => {
      for (const name of Object.keys(awsEnv())) {
        if (saved[name] === undefined) delete process.env[name];
        else process.env[name] = saved[name];
      }
    });
    const verified = await runHere(["verify", REVISION_B, ...s3], scratch, awsEnv());
    expect(verified.error).toBeUndefined();
    expect(JSON.parse(verified.stdout).revision).toBe(REVISION_B);
    expect(JSON.parse(verified.stdout).metadata.constructor).toBe("planted");
    expectCleanPrototype();
    const listed = await runHere(["list", ...s3], scratch, awsEnv());
    expect(listed.error).toBeUndefined();
    expect(JSON.parse(listed.stdout)).toHaveLength(2);
    const diffed = await runHere(["diff", REVISION_A, REVISION_B, ...s3, "--patch"], scratch, awsEnv());
    expect(diffed.error).toBeUndefined();
    expect(JSON.parse(diffed.stdout).data.added).toEqual(["/__proto__", "/constructor"]);
    expectCleanPrototype();
  });

  it("status: an OPA answering __proto__ and constructor bundles is shown, never merged", async () => {
    const url = await serve((_request, response) => {
      response.setHeader("content-type", "application/json");
      response.end(
        '{"result": {"bundles": {"__proto__": {"authz": {"active_revision": "planted"}}, "constructor": {"active_revision": "c1"}}}}',
      );
    });
    const plain = await runHere(["status", "--opa", url], scratch);
    // No bundle named authz is no active revision: the report is printed and the run fails (exit 1).
    expect((plain.error as { exitCode?: number } | undefined)?.exitCode).toBe(1);
    const [instance] = JSON.parse(plain.stdout).instances;
    expect(instance.revision).toBeNull();
    expect(instance.error).toBe("no bundle named authz (it has: __proto__, constructor)");
    const named = await runHere(["status", "--opa", url, "--bundle", "constructor"], scratch);
    expect(JSON.parse(named.stdout).instances[0].revision).toBe("c1");
    expectCleanPrototype();
  });

  it("status: with Object.prototype already polluted, an empty answer is not read through it", async () => {
    const url = await serve((request, response) => {
      response.statusCode = request.url?.startsWith("/health") ? 500 : 200;
      response.end("{}");
    });
    // Defence in depth: whatever another bug planted, an OPA answer holds only what OPA sent.
    (Object.prototype as Record<string, unknown>).result = {
      bundles: { authz: { active_revision: "planted" } },
    };
    const result = await runHere(["status", "--opa", url], scratch);
    delete (Object.prototype as Record<string, unknown>).result;
    expect((result.error as { exitCode?: number } | undefined)?.exitCode).toBe(1);
    const [instance] = JSON.parse(result.stdout).instances;
    expect(instance.revision).toBeNull();
    expect(instance.error).toContain("status plugin off");
  });

  it("policyship.yaml and policyship.json with __proto__ are refused as unknown settings", async () => {
    for (const [name, text] of [
      ["policyship.yaml", "__proto__:\n  opa: /tmp/never\nout: dist\n"],
      ["policyship.json", '{"__proto__": {"opa": "/tmp/never"}, "out": "dist"}'],
    ] as const) {
      const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-hostile-config-"));
      await writeFile(path.join(dir, name), text);
      const result = await runCli(["list", "--to", store], { cwd: dir });
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toContain(`${name}: unknown setting __proto__`);
      const here = await runHere(["list", "--to", store], dir);
      expect(here.error?.message).toContain("unknown setting __proto__");
      expectCleanPrototype();
    }
  });

  it("the embedded engine loads a data.json holding __proto__ and constructor as data, as OPA does", async () => {
    const policies = path.join(scratch, "wasm-policies");
    await mkdir(policies);
    await writeFile(path.join(policies, "t.rego"), "package t\n\nallow := data.__proto__.admin\n");
    await writeFile(
      path.join(policies, "data.json"),
      '{"__proto__": {"admin": true}, "constructor": {"prototype": {"x": 1}}}',
    );
    const built = await runCli(
      [
        "build",
        "--policies",
        policies,
        "--revision",
        "proto",
        "--out",
        path.join(scratch, "wasm"),
        "--target",
        "wasm",
        "--entrypoint",
        "t/allow",
        "--json",
      ],
      { cwd: scratch },
    );
    expect(built.exitCode, built.stderr).toBe(0);
    const engine = new EmbeddedEngine({
      bundle: path.join(scratch, JSON.parse(built.stdout).bundle),
      entrypoint: "t/allow",
      inThread: true,
    });
    try {
      await engine.ready();
      const decision = await engine.evaluate("{}", AbortSignal.timeout(10_000));
      expect(decision).toMatchObject({ defined: true, result: true });
    } finally {
      await engine.close();
    }
    expectCleanPrototype();
  });
});
