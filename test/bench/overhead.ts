// make overhead: what policyship adds over the bare tools on the example policies, medians of alternating runs.
//   build + test   against  opa build + opa test
//   release        against  opa build + opa test + one conditional PutObject of the bundle
import { execFileSync } from "node:child_process";
import { cp, mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { CreateBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { startMinio } from "../helpers/minio.ts";
import { repoRoot, toolPath } from "../helpers/tools.ts";

const RUNS = Number(process.env.BENCH_RUNS ?? 9);
const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1] as number;

const minio = await startMinio();
const work = await mkdtemp(path.join(os.tmpdir(), "policyship-overhead-"));
try {
  const s3 = new S3Client({
    endpoint: minio.endpoint,
    region: minio.region,
    forcePathStyle: true,
    credentials: { accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey },
  });
  await s3.send(new CreateBucketCommand({ Bucket: "overhead" }));
  const env = {
    ...process.env,
    PATH: `${path.join(repoRoot, ".tools/bin")}${path.delimiter}${process.env.PATH}`,
    AWS_ACCESS_KEY_ID: minio.accessKeyId,
    AWS_SECRET_ACCESS_KEY: minio.secretAccessKey,
    AWS_REGION: minio.region,
    GIT_AUTHOR_NAME: "Bench",
    GIT_AUTHOR_EMAIL: "bench@example.com",
    GIT_COMMITTER_NAME: "Bench",
    GIT_COMMITTER_EMAIL: "bench@example.com",
  };
  const run = (command: string, args: string[], cwd = work) =>
    execFileSync(command, args, { cwd, env, stdio: "ignore" });
  await cp(path.join(repoRoot, "policies"), path.join(work, "policies"), { recursive: true });
  run("git", ["init", "--quiet"]);
  run("git", ["add", "--all"]);
  run("git", ["commit", "--quiet", "-m", "policies"]);
  const opa = toolPath("opa");
  const cli = [path.join(repoRoot, "bin/policyship.js")];
  const node = toolPath("node");
  let n = 0;
  const time = async (work: () => unknown) => {
    const started = performance.now();
    await work();
    return performance.now() - started;
  };
  const bareBuildTest = () => {
    run(
      opa,
      ["build", "--bundle", ".", "--revision", `bare${n}`, "--output", path.join(work, "bare.tar.gz")],
      path.join(work, "policies"),
    );
    run(opa, ["test", "--bundle", path.join(work, "bare.tar.gz")]);
  };
  const measures = {
    buildTest: { bare: [] as number[], policyship: [] as number[] },
    release: { bare: [] as number[], policyship: [] as number[] },
  };
  for (let i = -1; i < RUNS; i++) {
    const record = i >= 0;
    const a = await time(bareBuildTest);
    const b = await time(() => {
      run(node, [...cli, "build"]);
      run(node, [...cli, "test"]);
    });
    const c = await time(async () => {
      bareBuildTest();
      await s3.send(
        new PutObjectCommand({
          Bucket: "overhead",
          Key: `bare/${n++}.tar.gz`,
          Body: await readFile(path.join(work, "bare.tar.gz")),
          IfNoneMatch: "*",
        }),
      );
    });
    run("git", ["commit", "--quiet", "--allow-empty", "-m", `run ${i}`]);
    const d = await time(() =>
      run(node, [...cli, "release", "--bucket", "overhead", "--endpoint", minio.endpoint]),
    );
    if (record) {
      measures.buildTest.bare.push(a);
      measures.buildTest.policyship.push(b);
      measures.release.bare.push(c);
      measures.release.policyship.push(d);
    }
  }
  for (const [name, { bare, policyship }] of Object.entries(measures)) {
    const [m1, m2] = [median(bare), median(policyship)];
    process.stdout.write(
      `${name === "buildTest" ? "build + test" : "release     "}: bare ${m1.toFixed(0)} ms, policyship ${m2.toFixed(0)} ms, added ${(m2 - m1).toFixed(0)} ms (median of ${RUNS})\n`,
    );
  }
} finally {
  await minio.stop();
  await rm(work, { recursive: true, force: true });
}
