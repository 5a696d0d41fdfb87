// make bench: policyship against the baseline a user would otherwise pick, on this machine, in one run.
// Every comparison alternates A and B after a warm-up and reports medians. Loopback only; bounded.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { cp, link, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import autocannon from "autocannon";
import { createEnforcer, type Decision } from "policyship/enforcer";
import { buildBundles } from "../helpers/enforcer-fixtures.ts";
import { startMinio } from "../helpers/minio.ts";
import { startOpaServer } from "../helpers/opa-server.ts";
import { repoRoot, toolPath } from "../helpers/tools.ts";

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const LOAD_SECONDS = Number(process.env.BENCH_LOAD_SECONDS ?? 5);
const CONNECTIONS = 32;
const UPLOAD_BYTES = 200 * 1024 * 1024;
/** BENCH_ONLY=P3,P5 runs a subset while iterating; make bench runs all. */
const ONLY = new Set(
  (process.env.BENCH_ONLY ?? "P1,P2,P3,P4,P5,P6,P7").split(",").map((name) => name.trim()),
);
const cleanups: (() => Promise<unknown>)[] = [];
const say = (message: string) => process.stderr.write(`[bench] ${message}\n`);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    void Promise.allSettled(cleanups.reverse().map((cleanup) => cleanup())).finally(() => process.exit(130));
  });
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
};

async function timed(run: () => unknown): Promise<number> {
  const started = performance.now();
  await run();
  return performance.now() - started;
}

/** One warm-up each, then every contender in turn, RUNS times; returns the medians in order. */
async function rotate(contenders: (() => Promise<number>)[]) {
  for (const run of contenders) await run();
  const samples = contenders.map(() => [] as number[]);
  for (let i = 0; i < RUNS; i++) {
    for (const [index, run] of contenders.entries()) samples[index]?.push(await run());
  }
  return samples.map(median);
}

/** One warm-up each, then A and B alternated RUNS times; returns the medians. */
async function alternate(a: () => Promise<number>, b: () => Promise<number>) {
  await a();
  await b();
  const as: number[] = [];
  const bs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    as.push(await a());
    bs.push(await b());
  }
  return { a: median(as), b: median(bs), as, bs };
}

function sh(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  execFileSync(command, args, { stdio: ["ignore", "ignore", "pipe"], ...options });
}

// ---------------------------------------------------------------- set-up

const toolsPath = `${path.join(repoRoot, ".tools/bin")}${path.delimiter}${process.env.PATH}`;
const minio = await startMinio();
cleanups.push(minio.stop);
const s3 = new S3Client({
  endpoint: minio.endpoint,
  region: minio.region,
  forcePathStyle: true,
  credentials: { accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey },
});
const bucket = "bench";
await s3.send(new CreateBucketCommand({ Bucket: bucket }));
const env: NodeJS.ProcessEnv = {
  ...process.env,
  PATH: toolsPath,
  AWS_ACCESS_KEY_ID: minio.accessKeyId,
  AWS_SECRET_ACCESS_KEY: minio.secretAccessKey,
  AWS_REGION: minio.region,
  AWS_DEFAULT_REGION: minio.region,
  GIT_AUTHOR_NAME: "Bench",
  GIT_AUTHOR_EMAIL: "bench@example.com",
  GIT_COMMITTER_NAME: "Bench",
  GIT_COMMITTER_EMAIL: "bench@example.com",
};
const work = await mkdtemp(path.join(os.tmpdir(), "policyship-bench-"));
cleanups.push(() => rm(work, { recursive: true, force: true }));
const cli = path.join(repoRoot, "bin/policyship.js");
const node = toolPath("node");

/** ~200 rules over a 5 MB data.json, with tests, as a large real-world policy set. */
async function generateLargeSet(dir: string) {
  await mkdir(dir, { recursive: true });
  const resources: Record<string, { owner: string; tags: string[]; level: number }> = {};
  for (let i = 0; i < 40_000; i++) {
    resources[`r${i}`] = { owner: `user${i % 500}`, tags: [`t${i % 17}`, `t${i % 31}`], level: i % 5 };
  }
  await writeFile(path.join(dir, "data.json"), JSON.stringify({ resources }));
  let rego = "package large\n\n";
  for (let i = 0; i < 200; i++) {
    rego += `rule_${i} if {\n\tr := data.resources[input.resource]\n\tr.level >= ${i % 5}\n\tsome tag in r.tags\n\ttag == "t${i % 17}"\n}\n\n`;
  }
  rego += "default allow := false\n\nallow if rule_0\n\nallow if rule_1\n";
  await writeFile(path.join(dir, "large.rego"), rego);
  let tests = "package large_test\n\nimport data.large\n\n";
  for (let i = 0; i < 20; i++) {
    // A resource that satisfies rule_i by construction: tag t(i % 17) and the highest level (4).
    let j = i % 17;
    while (j % 5 !== 4) j += 17;
    tests += `test_rule_${i} if large.rule_${i} with input as {"resource": "r${j}"}\n\n`;
  }
  await writeFile(path.join(dir, "large_test.rego"), tests.trimEnd().concat("\n"));
  sh(toolPath("opa"), ["fmt", "--write", dir]);
}

async function repoWith(name: string, fill: (policies: string) => Promise<void>) {
  const dir = path.join(work, name);
  await mkdir(dir);
  sh("git", ["init", "--quiet", "--initial-branch=main"], { cwd: dir, env });
  await fill(path.join(dir, "policies"));
  sh("git", ["add", "--all"], { cwd: dir, env });
  sh("git", ["commit", "--quiet", "-m", "policies"], { cwd: dir, env });
  let n = 0;
  return {
    dir,
    /** A fresh commit, so every run ships a new revision. */
    nextRevision: () => {
      sh("git", ["commit", "--quiet", "--allow-empty", "-m", `run ${n++}`], { cwd: dir, env });
      return execFileSync("git", ["rev-parse", "HEAD"], { cwd: dir, encoding: "utf8" }).trim();
    },
  };
}

const machine = {
  cpus: os.cpus().length,
  cpu_model: os.cpus()[0]?.model ?? "unknown",
  memory_gb: Math.round(os.totalmem() / 1024 ** 3),
  platform: `${os.platform()} ${os.release()}`,
  node: process.version,
  opa:
    execFileSync(toolPath("opa"), ["version"], { encoding: "utf8" })
      .split("\n")[0]
      ?.replace("Version: ", "") ?? "",
  aws_cli:
    execFileSync(toolPath("aws" as "opa"), ["--version"], { encoding: "utf8", env })
      .trim()
      .split(" ")[0] ?? "",
};
say(`machine: ${JSON.stringify(machine)}`);
const results: Record<string, unknown> = { machine, runs: RUNS };
const rows: string[][] = [];

// ---------------------------------------------------------------- P1, pipeline

for (const set of ONLY.has("P1") ? (["example", "large"] as const) : []) {
  const repo = await repoWith(`p1-${set}`, (policies) =>
    set === "example"
      ? cp(path.join(repoRoot, "policies"), policies, { recursive: true })
      : generateLargeSet(policies),
  );
  say(`P1 ${set}: hand-written opa build && opa test && aws s3 cp, vs policyship release`);
  const baseline = () =>
    timed(() => {
      const sha = repo.nextRevision();
      sh(
        "bash",
        [
          "-c",
          'opa build -b policies -r "$SHA" -o b.tar.gz && opa test -b b.tar.gz >/dev/null && aws s3 cp b.tar.gz "s3://$BUCKET/baseline/$SHA.tar.gz" --endpoint-url "$ENDPOINT" --only-show-errors',
        ],
        { cwd: repo.dir, env: { ...env, SHA: sha, BUCKET: bucket, ENDPOINT: minio.endpoint } },
      );
    });
  const policyship = () =>
    timed(() => {
      repo.nextRevision();
      sh(
        node,
        [cli, "release", "--bucket", bucket, "--endpoint", minio.endpoint, "--prefix", `policyship-${set}`],
        {
          cwd: repo.dir,
          env,
        },
      );
    });
  const { a, b } = await alternate(baseline, policyship);
  const key = set === "example" ? "P1" : "P1_large";
  results[key] = { baseline_ms: Math.round(a), policyship_ms: Math.round(b), ratio: round(b / a) };
  rows.push([
    key,
    `pipeline, ${set} policies (ms)`,
    fmt(a),
    fmt(b),
    (b / a).toFixed(2),
    "≤ 0.80",
    b / a <= 0.8 ? "yes" : "no",
  ]);
}

// ---------------------------------------------------------------- P2, cold start

if (ONLY.has("P2")) {
  say("P2: cold start of --version and config --revision");
  const sha = "a".repeat(40);
  const run = (args: string[]) => timed(() => sh(node, [cli, ...args], { cwd: work, env }));
  const versions: number[] = [];
  const configs: number[] = [];
  await run(["--version"]);
  for (let i = 0; i < 11; i++) {
    versions.push(await run(["--version"]));
    configs.push(
      await run(["config", "--revision", sha, "--bucket", "acme-policies", "--region", "eu-west-1"]),
    );
  }
  const version = median(versions);
  const config = median(configs);
  results.P2 = { version_ms: Math.round(version), config_ms: Math.round(config) };
  rows.push([
    "P2",
    "cold start: --version / config (ms)",
    "—",
    `${fmt(version)} / ${fmt(config)}`,
    "—",
    "≤ 150",
    Math.max(version, config) <= 150 ? "yes" : "no",
  ]);
}

// ---------------------------------------------------------------- P3, P4: the enforcer

const bundles = await buildBundles(path.join(repoRoot, "policies"), "bench-1", "authz/allow");
const opa = await startOpaServer(["--bundle", bundles.rego]);
cleanups.push(opa.stop);

async function startApp(
  mode: "hand" | "remote" | "embedded" | "embedded-thread" | "none" | "remote-cached" | "embedded-cached",
): Promise<{ url: string; process: ChildProcess }> {
  const child = spawn(node, [path.join(repoRoot, "test/bench/app.mjs")], {
    cwd: repoRoot,
    env: { ...env, BENCH_MODE: mode, OPA_URL: opa.url, BUNDLE: bundles.wasm },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const port = await new Promise<string>((resolve, reject) => {
    child.stdout?.on("data", (chunk: Buffer) => {
      const match = /ready (\d+)/.exec(chunk.toString());
      if (match) resolve(match[1] as string);
    });
    child.on("exit", (code) => reject(new Error(`bench app (${mode}) exited with ${code}`)));
  });
  cleanups.push(async () => child.kill());
  return { url: `http://127.0.0.1:${port}`, process: child };
}

async function load(url: string, seconds = LOAD_SECONDS) {
  const result = await autocannon({
    url: `${url}/orders?page=1`,
    connections: CONNECTIONS,
    duration: seconds,
    headers: { "x-api-key": "bob-key" },
  });
  if (result.non2xx > 0 || result.errors > 0)
    throw new Error(`${url}: ${result.non2xx} non-2xx, ${result.errors} errors`);
  return { rps: result.requests.average, p99: result.latency.p99 };
}

if (ONLY.has("P3")) {
  say(
    `P3: node:http + undici by hand vs withAuthorization (remote), ${CONNECTIONS} connections, ${LOAD_SECONDS} s each`,
  );
  const hand = await startApp("hand");
  const remote = await startApp("remote");
  const handRuns: { rps: number; p99: number }[] = [];
  const remoteRuns: { rps: number; p99: number }[] = [];
  const { a, b } = await alternate(
    async () => {
      const r = await load(hand.url);
      handRuns.push(r);
      return r.rps;
    },
    async () => {
      const r = await load(remote.url);
      remoteRuns.push(r);
      return r.rps;
    },
  );
  const p99 = (runs: { p99: number }[]) => median(runs.slice(1).map((r) => r.p99));
  results.P3 = {
    hand_rps: Math.round(a),
    enforcer_rps: Math.round(b),
    hand_p99_ms: p99(handRuns),
    enforcer_p99_ms: p99(remoteRuns),
    ratio: round(b / a),
  };
  rows.push([
    "P3",
    "remote enforcer vs hand-written (req/s)",
    fmt(a),
    fmt(b),
    (b / a).toFixed(2),
    "≥ 0.95",
    b / a >= 0.95 ? "yes" : "no",
  ]);
  hand.process.kill();
  remote.process.kill();
}

if (ONLY.has("P4")) {
  say(
    "P4: 1,000-input corpus on every engine, then decisions per second: remote, embedded worker, in-thread",
  );
  const remote = createEnforcer({ opa: { url: opa.url, path: "authz/allow" }, timeoutMs: 2000 });
  const embedded = createEnforcer({ bundle: bundles.wasm, entrypoint: "authz/allow", timeoutMs: 2000 });
  const inThread = createEnforcer({ bundle: bundles.wasm, entrypoint: "authz/allow", inThread: true });
  await Promise.all([remote.ready(), embedded.ready(), inThread.ready()]);
  let seed = 42;
  const random = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const pick = <T>(items: T[]) => items[Math.floor(random() * items.length)] as T;
  const corpus = Array.from({ length: 1000 }, () => ({
    request: {
      http: {
        method: pick(["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"]),
        path: pick([
          "/orders",
          "/orders/42",
          "/orders-archive",
          "/reports/daily",
          "/admin/users/7",
          "/health",
          "/",
          "/orders/",
        ]),
        querystring: random() < 0.5 ? {} : { page: String(Math.floor(random() * 9)) },
        headers:
          random() < 0.15 ? {} : { "x-api-key": pick(["alice-key", "bob-key", "carol-key", "mallory-key"]) },
      },
    },
    client_ip: "127.0.0.1",
  }));
  // Header order is not part of a decision (OPA sorts object keys, the wasm SDK keeps insertion order).
  const comparable = (d: Decision) =>
    JSON.stringify([d.allow, d.status, Object.entries(d.headers).sort(), d.message, Boolean(d.error)]);
  let mismatches = 0;
  for (const input of corpus) {
    const [r, e, t] = await Promise.all([
      remote.decide(input),
      embedded.decide(input),
      inThread.decide(input),
    ]);
    if (comparable(r) !== comparable(e) || comparable(r) !== comparable(t)) mismatches++;
  }
  if (mismatches > 0)
    throw new Error(`${mismatches} of 1000 corpus inputs decided differently by the engines`);
  const p99s = new Map<string, number[]>();
  const rate = async (name: string, decide: (input: unknown) => Promise<Decision>) => {
    const total = 20_000;
    const latencies: number[] = [];
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < total) {
          const begun = performance.now();
          await decide(corpus[next++ % corpus.length]);
          latencies.push(performance.now() - begun);
        }
      }),
    );
    latencies.sort((x, y) => x - y);
    p99s.set(name, [...(p99s.get(name) ?? []), latencies[Math.floor(latencies.length * 0.99)] as number]);
    return total / ((performance.now() - started) / 1000);
  };
  const [a, b, c] = (await rotate([
    () => rate("remote", (input) => remote.decide(input)),
    () => rate("worker", (input) => embedded.decide(input)),
    () => rate("thread", (input) => inThread.decide(input)),
  ])) as [number, number, number];
  const p99Of = (name: string) => round(median(p99s.get(name) ?? [0]));
  say(
    `P4 decisions/s: remote ${fmt(a)}, worker ${fmt(b)} (${(b / a).toFixed(2)}×), in-thread ${fmt(c)} (${(c / a).toFixed(2)}×)`,
  );
  await Promise.all([remote.close(), embedded.close(), inThread.close()]);
  say("P4: the same app under load: remote, embedded worker, embedded in-thread");
  const appModes = ["remote", "embedded", "embedded-thread"] as const;
  const running = await Promise.all(appModes.map((mode) => startApp(mode)));
  const appP99 = new Map<string, number[]>();
  const appRps = await rotate(
    running.map((app, index) => async () => {
      const measured = await load(app.url, 3);
      const mode = appModes[index] as string;
      appP99.set(mode, [...(appP99.get(mode) ?? []), measured.p99]);
      return measured.rps;
    }),
  );
  for (const app of running) app.process.kill();
  const [appRemote, appWorker, appThread] = appRps as [number, number, number];
  const appP99Of = (mode: string) => median(appP99.get(mode) ?? [0]);
  results.P4 = {
    corpus: 1000,
    corpus_mismatches: mismatches,
    remote_decisions_per_s: Math.round(a),
    embedded_worker_decisions_per_s: Math.round(b),
    embedded_thread_decisions_per_s: Math.round(c),
    remote_p99_ms: p99Of("remote"),
    embedded_worker_p99_ms: p99Of("worker"),
    embedded_thread_p99_ms: p99Of("thread"),
    ratio_worker: round(b / a),
    ratio_thread: round(c / a),
    app_remote_rps: Math.round(appRemote),
    app_embedded_worker_rps: Math.round(appWorker),
    app_embedded_thread_rps: Math.round(appThread),
    app_remote_p99_ms: appP99Of("remote"),
    app_embedded_worker_p99_ms: appP99Of("embedded"),
    app_embedded_thread_p99_ms: appP99Of("embedded-thread"),
  };
  const rowOf = (label: string, base: number, value: number, goal: number | undefined) => [
    label.split(":")[0] as string,
    label.split(":")[1] as string,
    fmt(base),
    fmt(value),
    (value / base).toFixed(2),
    goal === undefined ? "—" : `≥ ${goal}`,
    goal === undefined ? "—" : value / base >= goal ? "yes" : "no",
  ];
  rows.push(rowOf("P4:embedded in-thread vs remote (decisions/s)", a, c, 5));
  rows.push(rowOf("P4 worker:embedded worker vs remote (decisions/s)", a, b, 5));
  rows.push([
    "P4 p99",
    "decide() p99 (ms): remote / worker / in-thread",
    "—",
    `${p99Of("remote")} / ${p99Of("worker")} / ${p99Of("thread")}`,
    "—",
    "—",
    "—",
  ]);
  rows.push(rowOf("P4 app:embedded worker vs remote, same app (req/s)", appRemote, appWorker, undefined));
  rows.push(
    rowOf("P4 app thread:embedded in-thread vs remote, same app (req/s)", appRemote, appThread, undefined),
  );
  rows.push([
    "P4 app p99",
    "app p99 (ms): remote / worker / in-thread",
    "—",
    `${appP99Of("remote")} / ${appP99Of("embedded")} / ${appP99Of("embedded-thread")}`,
    "—",
    "—",
    "—",
  ]);
}

// ---------------------------------------------------------------- P6: replaying recorded decisions

if (ONLY.has("P6")) {
  const { benchReplay } = await import("./replay.ts");
  const p6 = await benchReplay({ work, env, cli, node, say, alternate });
  results.P6 = p6;
  rows.push([
    "P6",
    "impact vs naive replay loop (decisions/s)",
    fmt(p6.naive_decisions_per_s),
    fmt(p6.impact_decisions_per_s),
    p6.ratio.toFixed(2),
    "≥ 10",
    p6.ratio >= 10 ? "yes" : "no",
  ]);
  rows.push([
    "P6 100k",
    "impact: 100,000 decisions (s)",
    "—",
    String(p6.impact_100k_seconds),
    "—",
    "≤ 20",
    p6.impact_100k_seconds <= 20 ? "yes" : "no",
  ]);
  rows.push([
    "P6 10M",
    `impact: 10,000,000 decisions, ${fmt(p6.distinct_evaluated)} distinct inputs evaluated (s)`,
    "—",
    String(p6.impact_10m_seconds),
    "—",
    "≤ 60",
    p6.impact_10m_seconds <= 60 ? "yes" : "no",
  ]);
  rows.push([
    "P6 RSS",
    "impact: peak RSS over 10,000,000 decisions (MB)",
    "—",
    String(p6.impact_10m_peak_rss_mb),
    "—",
    "≤ 500",
    p6.impact_10m_peak_rss_mb <= 500 ? "yes" : "no",
  ]);
}

// ---------------------------------------------------------------- P7: the cache, and telemetry's cost

if (ONLY.has("P7")) {
  say("P7: the same app with no authorization, with cache hits, and with the cache off (each engine)");
  const modes = ["none", "remote-cached", "embedded-cached", "remote", "embedded"] as const;
  const running = await Promise.all(modes.map((mode) => startApp(mode)));
  const rps = (await rotate(running.map((app) => async () => (await load(app.url, 3)).rps))) as number[];
  for (const app of running) app.process.kill();
  const [none, remoteCached, embeddedCached, remote, embedded] = rps as [
    number,
    number,
    number,
    number,
    number,
  ];

  say("P7: decide() with @opentelemetry/api loaded and no SDK registered, against telemetry: false");
  const input = {
    request: {
      http: { method: "GET", path: "/orders", headers: { "x-api-key": "bob-key" }, querystring: {} },
    },
    client_ip: "127.0.0.1",
  };
  const withApi = createEnforcer({ bundle: bundles.wasm, entrypoint: "authz/allow", inThread: true });
  const without = createEnforcer({
    bundle: bundles.wasm,
    entrypoint: "authz/allow",
    inThread: true,
    telemetry: false,
  });
  await Promise.all([withApi.ready(), without.ready()]);
  const rate = async (decide: (value: unknown) => Promise<Decision>) => {
    const total = 50_000;
    const started = performance.now();
    for (let i = 0; i < total; i++) await decide(input);
    return total / ((performance.now() - started) / 1000);
  };
  const telemetry = await alternate(
    () => rate((value) => without.decide(value)),
    () => rate((value) => withApi.decide(value)),
  );
  say("P7: what one decide() costs in-process: a cache hit against an in-thread evaluation");
  const cachedEnforcer = createEnforcer({
    bundle: bundles.wasm,
    entrypoint: "authz/allow",
    inThread: true,
    cache: { max: 100, ttlMs: 60_000, key: () => "same" },
  });
  await cachedEnforcer.ready();
  const hits = await alternate(
    () => rate((value) => without.decide(value)),
    () => rate((value) => cachedEnforcer.decide(value)),
  );
  await Promise.all([withApi.close(), without.close(), cachedEnforcer.close()]);

  results.P7 = {
    none_rps: Math.round(none),
    remote_cached_rps: Math.round(remoteCached),
    embedded_cached_rps: Math.round(embeddedCached),
    remote_uncached_rps: Math.round(remote),
    embedded_uncached_rps: Math.round(embedded),
    ratio_remote_cached: round(remoteCached / none),
    ratio_embedded_cached: round(embeddedCached / none),
    ratio_remote_uncached: round(remote / none),
    ratio_embedded_uncached: round(embedded / none),
    telemetry_off_decisions_per_s: Math.round(telemetry.a),
    telemetry_noop_decisions_per_s: Math.round(telemetry.b),
    telemetry_ratio: round(telemetry.b / telemetry.a),
    decide_uncached_us: round(1e6 / hits.a),
    decide_cache_hit_us: round(1e6 / hits.b),
  };
  const row = (label: string, value: number, goal?: number) => [
    label.split(":")[0] as string,
    label.split(":")[1] as string,
    fmt(none),
    fmt(value),
    (value / none).toFixed(2),
    goal === undefined ? "—" : `≥ ${goal}`,
    goal === undefined ? "—" : value / none >= goal ? "yes" : "no",
  ];
  rows.push(row("P7:remote, cache hits vs no authorization (req/s)", remoteCached, 0.9));
  rows.push(row("P7 embedded:embedded, cache hits vs no authorization (req/s)", embeddedCached, 0.9));
  rows.push(row("P7 off:remote, cache off vs no authorization (req/s)", remote));
  rows.push(row("P7 off embedded:embedded, cache off vs no authorization (req/s)", embedded));
  rows.push([
    "P7 decide",
    "decide() µs: in-thread evaluation / cache hit",
    "—",
    `${(1e6 / hits.a).toFixed(1)} / ${(1e6 / hits.b).toFixed(1)}`,
    "—",
    "—",
    "—",
  ]);
  rows.push([
    "P7 otel",
    "decide() with the OTel API and no SDK vs telemetry off (decisions/s)",
    fmt(telemetry.a),
    fmt(telemetry.b),
    (telemetry.b / telemetry.a).toFixed(2),
    "≥ 0.95",
    telemetry.b / telemetry.a >= 0.95 ? "yes" : "no",
  ]);
}

// ---------------------------------------------------------------- P5, large upload

if (ONLY.has("P5")) {
  say("P5: 200 MB bundle, policyship publish vs aws s3 cp");
  const dir = path.join(work, "p5");
  await mkdir(path.join(dir, "dist"), { recursive: true });
  const source = path.join(dir, "source.tar.gz");
  const chunk = randomBytes(16 * 1024 * 1024);
  const bytes = Buffer.concat(Array.from({ length: UPLOAD_BYTES / chunk.length }, () => chunk));
  await writeFile(source, bytes);
  // As build leaves it: the tarball and its record, whose sha256 publish checks while uploading.
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  let n = 0;
  const aws = () =>
    timed(() =>
      sh(
        toolPath("aws" as "opa"),
        [
          "s3",
          "cp",
          source,
          `s3://${bucket}/aws/${n++}.tar.gz`,
          "--endpoint-url",
          minio.endpoint,
          "--only-show-errors",
        ],
        {
          env,
        },
      ),
    );
  const policyship = async () => {
    const revision = `large-${n++}`;
    await link(source, path.join(dir, "dist", `${revision}.tar.gz`));
    await writeFile(
      path.join(dir, "dist", `${revision}.json`),
      JSON.stringify({ revision, sha256, size: UPLOAD_BYTES }),
    );
    return timed(() =>
      sh(
        node,
        [
          cli,
          "publish",
          "--revision",
          revision,
          "--bucket",
          bucket,
          "--endpoint",
          minio.endpoint,
          "--prefix",
          "large",
        ],
        {
          cwd: dir,
          env,
        },
      ),
    );
  };
  const { a, b } = await alternate(aws, policyship);
  const mbps = (ms: number) => UPLOAD_BYTES / 1024 / 1024 / (ms / 1000);
  results.P5 = {
    bytes: UPLOAD_BYTES,
    aws_ms: Math.round(a),
    policyship_ms: Math.round(b),
    aws_mb_per_s: round(mbps(a)),
    policyship_mb_per_s: round(mbps(b)),
    ratio: round(mbps(b) / mbps(a)),
  };
  rows.push([
    "P5",
    "200 MB upload (MB/s)",
    mbps(a).toFixed(1),
    mbps(b).toFixed(1),
    (mbps(b) / mbps(a)).toFixed(2),
    "≥ 1.0",
    mbps(b) / mbps(a) >= 1 ? "yes" : "no",
  ]);
}

function round(value: number) {
  return Math.round(value * 1000) / 1000;
}
function fmt(value: number) {
  return value >= 100 ? Math.round(value).toString() : value.toFixed(1);
}

await (await import("./shadow.ts")).benchShadow({
  only: ONLY,
  runs: RUNS,
  node,
  env,
  opaUrl: opa.url,
  load,
  results,
  rows,
  say,
  cleanups,
});

// ---------------------------------------------------------------- report

const table = [
  "| | comparison | baseline | policyship | ratio | goal | met |",
  "|---|---|---|---|---|---|---|",
  ...rows.map((row) => `| ${row.join(" | ")} |`),
].join("\n");
process.stdout.write(
  `${table}\n\nmedians of ${RUNS} alternating runs after a warm-up; ${machine.cpus} × ${machine.cpu_model}, node ${machine.node}, opa ${machine.opa}\n`,
);
// A BENCH_ONLY run replaces the sections it ran and keeps the others' last figures.
const resultsFile = path.join(repoRoot, "test/bench/results.json");
const previous = process.env.BENCH_ONLY
  ? ((await readFile(resultsFile, "utf8").then(JSON.parse, () => ({}))) as Record<string, unknown>)
  : {};
await writeFile(
  resultsFile,
  `${JSON.stringify({ ...previous, ...results, generated_at: new Date().toISOString() }, null, 2)}\n`,
);
for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
