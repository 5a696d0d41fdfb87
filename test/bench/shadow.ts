// The shadow's cost to the app it runs in: the P3 app (remote engine) with a candidate OPA in shadow at
// sampleRate 0.1 and at 1, against shadow off, rotated in one run after a warm-up, medians reported.
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { buildBundles } from "../helpers/enforcer-fixtures.ts";
import { startOpaServer } from "../helpers/opa-server.ts";
import { repoRoot } from "../helpers/tools.ts";

export interface ShadowBench {
  only: Set<string>;
  runs: number;
  node: string;
  env: NodeJS.ProcessEnv;
  /** The enforced OPA, serving the bench bundle. */
  opaUrl: string;
  load: (url: string) => Promise<{ rps: number; p99: number }>;
  results: Record<string, unknown>;
  rows: string[][];
  say: (message: string) => void;
  cleanups: (() => Promise<unknown>)[];
}

/** Throughput at 0.1 at least this share of shadow off's, and p99 within this factor of it. */
const GOAL_RPS_RATIO = 0.9;
const GOAL_P99_RATIO = 1.1;

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
};

async function startApp(
  bench: ShadowBench,
  env: NodeJS.ProcessEnv,
): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(bench.node, [path.join(repoRoot, "test/bench/shadow-app.mjs")], {
    cwd: repoRoot,
    env: { ...bench.env, OPA_URL: bench.opaUrl, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const port = await new Promise<string>((resolve, reject) => {
    child.stdout?.on("data", (chunk: Buffer) => {
      const match = /ready (\d+)/.exec(chunk.toString());
      if (match) resolve(match[1] as string);
    });
    child.on("exit", (code) => reject(new Error(`shadow bench app exited with ${code}`)));
  });
  const stopped = new Promise((resolve) => child.once("exit", resolve));
  bench.cleanups.push(async () => {
    child.kill("SIGTERM");
    await stopped;
  });
  return { url: `http://127.0.0.1:${port}`, child };
}

export async function benchShadow(bench: ShadowBench) {
  if (process.env.BENCH_ONLY && !bench.only.has("SHADOW")) return;
  const { say, results, rows } = bench;
  say("SHADOW: the remote app with a candidate OPA in shadow at sampleRate 0.1 and 1, vs shadow off");
  // The candidate is another revision of the same policies: what is measured is the shadow's work, not a
  // slower policy.
  const candidate = await buildBundles(path.join(repoRoot, "policies"), "bench-candidate", "authz/allow");
  const shadowOpa = await startOpaServer(["--bundle", candidate.rego]);
  bench.cleanups.push(shadowOpa.stop);
  const apps: { url: string; child: ChildProcess }[] = [];
  const samples: { rps: number; p99: number }[][] = [[], [], []];
  try {
    apps.push(await startApp(bench, {}));
    apps.push(await startApp(bench, { SHADOW_OPA_URL: shadowOpa.url, SHADOW_SAMPLE_RATE: "0.1" }));
    apps.push(await startApp(bench, { SHADOW_OPA_URL: shadowOpa.url, SHADOW_SAMPLE_RATE: "1" }));
    // One warm-up each, then each in turn: a machine that slows down part-way slows all three alike.
    for (const app of apps) await bench.load(app.url);
    for (let run = 0; run < bench.runs; run++) {
      for (const [index, app] of apps.entries()) samples[index]?.push(await bench.load(app.url));
    }
  } finally {
    for (const app of apps) app.child.kill("SIGTERM");
    await shadowOpa.stop();
  }
  const [off, tenth, all] = samples.map((runs) => ({
    rps: median(runs.map((r) => r.rps)),
    p99: median(runs.map((r) => r.p99)),
  })) as [{ rps: number; p99: number }, { rps: number; p99: number }, { rps: number; p99: number }];
  const ratio = (value: number) => Math.round(value * 1000) / 1000;
  results.SHADOW = {
    off_rps: Math.round(off.rps),
    rate_0_1_rps: Math.round(tenth.rps),
    rate_1_rps: Math.round(all.rps),
    off_p99_ms: off.p99,
    rate_0_1_p99_ms: tenth.p99,
    rate_1_p99_ms: all.p99,
    ratio_0_1: ratio(tenth.rps / off.rps),
    ratio_1: ratio(all.rps / off.rps),
    p99_ratio_0_1: ratio(tenth.p99 / off.p99),
    p99_ratio_1: ratio(all.p99 / off.p99),
  };
  const met = tenth.rps / off.rps >= GOAL_RPS_RATIO && tenth.p99 <= off.p99 * GOAL_P99_RATIO;
  rows.push([
    "Shadow 0.1",
    "remote, shadow at sampleRate 0.1 vs off (req/s; p99 ms)",
    `${Math.round(off.rps)}; ${off.p99}`,
    `${Math.round(tenth.rps)}; ${tenth.p99}`,
    `${(tenth.rps / off.rps).toFixed(2)}; ${(tenth.p99 / off.p99).toFixed(2)}`,
    `≥ ${GOAL_RPS_RATIO}; ≤ ${GOAL_P99_RATIO}`,
    met ? "yes" : "no",
  ]);
  rows.push([
    "Shadow 1",
    "remote, shadow at sampleRate 1 vs off (req/s; p99 ms)",
    `${Math.round(off.rps)}; ${off.p99}`,
    `${Math.round(all.rps)}; ${all.p99}`,
    `${(all.rps / off.rps).toFixed(2)}; ${(all.p99 / off.p99).toFixed(2)}`,
    "—",
    "—",
  ]);
}
