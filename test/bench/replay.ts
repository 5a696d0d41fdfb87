// P6: replaying recorded decisions. The naive loop (one keep-alive POST per decision to an OPA server per
// revision) against `policyship impact` (each distinct projected input evaluated once, batched `opa eval`),
// identical results required on the first 10,000 decisions of the corpus (corpus.ts); then a day of a
// mid-size service's logs: 10,000,000 decisions, its wall time and peak RSS.
import { execFileSync, spawn } from "node:child_process";
import { cp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { interpretResult } from "policyship/enforcer";
import { Pool } from "undici";
import { startOpaServer } from "../helpers/opa-server.ts";
import { repoRoot } from "../helpers/tools.ts";
import { writeCorpus } from "./corpus.ts";

export interface ReplayBench {
  work: string;
  env: NodeJS.ProcessEnv;
  cli: string;
  node: string;
  say: (message: string) => void;
  alternate: (
    a: () => Promise<number>,
    b: () => Promise<number>,
  ) => Promise<{ a: number; b: number; as: number[]; bs: number[] }>;
}

const TEN_MILLION = 10_000_000;

/** The 1-minute load average, noted beside each figure: the machine may be shared. */
function loadAverage(): number {
  return Math.round((os.loadavg()[0] ?? 0) * 100) / 100;
}

type Flips = Record<"allow_to_deny" | "deny_to_allow" | "to_error" | "from_error" | "other", number>;

function outcome(answer: { result?: unknown }) {
  try {
    const d = interpretResult(answer.result, "result" in answer);
    return `${d.allow ? "allow" : "deny"} ${JSON.stringify([d.status, Object.entries(d.headers).sort(), d.message])}`;
  } catch {
    return "error";
  }
}

/** The naive replay: for each decision, one POST to each revision's OPA server, then the next decision. */
async function naive(file: string, base: Pool, candidate: Pool) {
  const flips: Flips = { allow_to_deny: 0, deny_to_allow: 0, to_error: 0, from_error: 0, other: 0 };
  let changed = 0;
  const ask = async (pool: Pool, input: unknown) => {
    const response = await pool.request({
      method: "POST",
      path: "/v1/data/authz/allow",
      body: JSON.stringify({ input }),
      headers: { "content-type": "application/json" },
    });
    return outcome((await response.body.json()) as { result?: unknown });
  };
  const lines = (await readFile(file, "utf8")).trim().split("\n");
  for (const line of lines) {
    const { input } = JSON.parse(line) as { input: unknown };
    const [before, after] = await Promise.all([ask(base, input), ask(candidate, input)]);
    if (before === after) continue;
    changed++;
    if (after === "error") flips.to_error++;
    else if (before === "error") flips.from_error++;
    else if (before.startsWith("allow") && after.startsWith("deny")) flips.allow_to_deny++;
    else if (before.startsWith("deny") && after.startsWith("allow")) flips.deny_to_allow++;
    else flips.other++;
  }
  return { replayed: lines.length, changed, flips };
}

/** Runs the CLI and samples its peak RSS (VmHWM) from /proc while it runs. */
function impact(bench: ReplayBench, cwd: string, args: string[]) {
  return new Promise<{ stdout: string; peakRssMb: number; ms: number }>((resolve, reject) => {
    const started = performance.now();
    const child = spawn(bench.node, [bench.cli, "impact", ...args, "--json"], { cwd, env: bench.env });
    let stdout = "";
    let stderr = "";
    let peak = 0;
    const sample = setInterval(async () => {
      const status = await readFile(`/proc/${child.pid}/status`, "utf8").catch(() => "");
      const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
      peak = Math.max(peak, kb);
    }, 100);
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk));
    child.on("close", (code) => {
      clearInterval(sample);
      if (code !== 0) reject(new Error(`impact exited ${code}: ${stderr}`));
      else resolve({ stdout, peakRssMb: Math.round(peak / 1024), ms: performance.now() - started });
    });
  });
}

export async function benchReplay(bench: ReplayBench) {
  const { work, env, say } = bench;
  const dir = path.join(work, "p6");
  await mkdir(dir);
  const git = (...args: string[]) => execFileSync("git", args, { cwd: dir, env, encoding: "utf8" }).trim();
  git("init", "--quiet", "--initial-branch=main");
  await cp(path.join(repoRoot, "policies"), path.join(dir, "policies"), { recursive: true });
  git("add", "--all");
  git("commit", "--quiet", "-m", "base");
  const base = git("rev-parse", "HEAD");
  execFileSync(bench.node, [bench.cli, "build"], { cwd: dir, env });
  // The candidate opens a path (readers may POST orders) and closes one (no HEAD).
  const dataFile = path.join(dir, "policies/data.json");
  const data = JSON.parse(await readFile(dataFile, "utf8"));
  data.roles.reader[0].methods = ["GET", "POST"];
  await writeFile(dataFile, `${JSON.stringify(data, null, 2)}\n`);
  git("commit", "--quiet", "-am", "candidate");
  const candidate = git("rev-parse", "HEAD");
  execFileSync(bench.node, [bench.cli, "build"], { cwd: dir, env });

  say("P6: writing 100,000 and 10,000 recorded decisions (the first of the 10,000,000)");
  await writeCorpus(path.join(dir, "100k.ndjson"), 100_000, base);
  await writeCorpus(path.join(dir, "10k.ndjson"), 10_000, base);
  const [opaBase, opaCandidate] = await Promise.all([
    startOpaServer(["--bundle", path.join(dir, "dist", `${base}.tar.gz`)]),
    startOpaServer(["--bundle", path.join(dir, "dist", `${candidate}.tar.gz`)]),
  ]);
  const pools = [
    new Pool(opaBase.url, { connections: 1 }),
    new Pool(opaCandidate.url, { connections: 1 }),
  ] as const;
  try {
    say("P6: the same 10,000 decisions both ways must give identical results");
    const reference = await naive(path.join(dir, "10k.ndjson"), ...pools);
    const replayed = JSON.parse(
      (await impact(bench, dir, ["--decisions", "10k.ndjson", "--candidate", candidate])).stdout,
    );
    const same =
      replayed.replayed === reference.replayed &&
      replayed.changed === reference.changed &&
      JSON.stringify(replayed.flips) === JSON.stringify(reference.flips);
    if (!same)
      throw new Error(`impact and the naive loop disagree: ${JSON.stringify({ reference, replayed })}`);

    say("P6: decisions per second, naive loop (10,000) against policyship impact (100,000)");
    const { a, b } = await bench.alternate(
      async () => {
        const started = performance.now();
        await naive(path.join(dir, "10k.ndjson"), ...pools);
        return 10_000 / ((performance.now() - started) / 1000);
      },
      async () => {
        const run = await impact(bench, dir, ["--decisions", "100k.ndjson", "--candidate", candidate]);
        return 100_000 / (run.ms / 1000);
      },
    );
    say("P6: writing 10,000,000 recorded decisions (not timed)");
    const day = path.join(dir, "10m.ndjson");
    await writeCorpus(day, TEN_MILLION, base);
    say(`P6: impact over 10,000,000 decisions (load average ${loadAverage()})`);
    const big = await impact(bench, dir, ["--decisions", "10m.ndjson", "--candidate", candidate]);
    const report = JSON.parse(big.stdout);
    if (report.replayed !== TEN_MILLION) throw new Error("impact did not replay 10,000,000 decisions");
    await rm(day, { force: true });
    return {
      naive_decisions_per_s: Math.round(a),
      impact_decisions_per_s: Math.round(b),
      ratio: Math.round((b / a) * 1000) / 1000,
      impact_100k_seconds: Math.round((100_000 / b) * 10) / 10,
      identical_on_10k: same,
      flips_10k: reference.flips,
      impact_10m_seconds: Math.round(big.ms / 100) / 10,
      impact_10m_peak_rss_mb: big.peakRssMb,
      distinct_evaluated: report.evaluated as number,
      flips_10m: report.flips,
      load_average: loadAverage(),
    };
  } finally {
    await Promise.all(pools.map((pool) => pool.close()));
    await Promise.all([opaBase.stop(), opaCandidate.stop()]);
  }
}
