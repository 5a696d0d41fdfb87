// make soak: 200,000 requests through a node:http app behind the enforcer, in remote mode (a real OPA)
// and in embedded mode. After warm-up, RSS may grow by less than 20 MB, and closing must leave no
// sockets or other handles behind. Loopback only, bounded in count and time.
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { getHeapSpaceStatistics } from "node:v8";
// The built package, as an app imports it.
import { createEnforcer, type Enforcer, withAuthorization } from "policyship/enforcer";
import { Pool } from "undici";
import { buildBundles } from "../helpers/enforcer-fixtures.ts";
import { startOpaServer } from "../helpers/opa-server.ts";
import { repoRoot } from "../helpers/tools.ts";

const REQUESTS = Number(process.env.SOAK_REQUESTS ?? 200_000);
// make soak runs this with --max-semi-space-size=16: under this allocation rate V8 otherwise grows its young
// generation in steps (34 → 67 → 134 MB committed) at unpredictable times, which moves RSS by ~50 MB with
// the used heap flat. Pinned, RSS measures what a leak would grow. The warm-up covers JIT and wasm tier-up.
const WARMUP = Number(process.env.SOAK_WARMUP ?? 50_000);
const CONCURRENCY = 32;
const MAX_GROWTH_MB = 20;
const TIME_LIMIT_MS = 6 * 60_000;

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --expose-gc");

function memory(): { rss: number; heap: number; newSpace: number } {
  gc?.();
  gc?.();
  const usage = process.memoryUsage();
  const newSpace =
    getHeapSpaceStatistics().find((space) => space.space_name === "new_space")?.space_size ?? 0;
  return {
    rss: usage.rss / 1024 / 1024,
    heap: usage.heapUsed / 1024 / 1024,
    newSpace: newSpace / 1024 / 1024,
  };
}

function sockets(): number {
  return process
    .getActiveResourcesInfo()
    .filter((name) => name === "TCPSocketWrap" || name === "TCPServerWrap").length;
}

const paths = ["/orders", "/orders/42", "/reports/daily", "/admin/users/7", "/health"];
const keys = ["alice-key", "bob-key", "carol-key", "mallory-key", ""];

async function soak(name: string, enforcer: Enforcer) {
  await enforcer.ready();
  const baselineResources = process.getActiveResourcesInfo().length;
  const server = http.createServer(
    withAuthorization(enforcer, (_req, res) => {
      res.end("ok");
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const client = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, {
    connections: CONCURRENCY,
  });
  const statuses = new Map<number, number>();
  let sent = 0;
  let peakSockets = 0;
  const deadline = Date.now() + TIME_LIMIT_MS;
  const run = async (until: number) => {
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (sent < until && Date.now() < deadline) {
          const i = sent++;
          const key = keys[i % keys.length] as string;
          const response = await client.request({
            method: i % 7 === 0 ? "POST" : "GET",
            path: `${paths[i % paths.length]}?i=${i % 100}`,
            headers: key ? { "x-api-key": key } : {},
          });
          await response.body.dump();
          statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
          if (i % 5000 === 0) peakSockets = Math.max(peakSockets, sockets());
        }
      }),
    );
  };
  const started = performance.now();
  await run(WARMUP);
  const afterWarmup = memory();
  await run(WARMUP + REQUESTS);
  const afterSoak = memory();
  const seconds = (performance.now() - started) / 1000;
  await client.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await enforcer.close();
  await new Promise((resolve) => setTimeout(resolve, 200));
  const leftover = process.getActiveResourcesInfo().length - baselineResources;
  const growth = afterSoak.rss - afterWarmup.rss;
  const measured = sent - WARMUP;
  const errors = statuses.get(500) ?? 0;
  const line = `${name}: ${WARMUP} warm-up + ${measured} requests in ${seconds.toFixed(1)} s (${(sent / seconds).toFixed(0)}/s); RSS ${afterWarmup.rss.toFixed(1)} → ${afterSoak.rss.toFixed(1)} MB (growth ${growth.toFixed(1)} MB), heap ${afterWarmup.heap.toFixed(1)} → ${afterSoak.heap.toFixed(1)} MB, new space ${afterWarmup.newSpace.toFixed(0)} → ${afterSoak.newSpace.toFixed(0)} MB; peak sockets ${peakSockets}; leftover handles ${leftover}; statuses ${JSON.stringify(Object.fromEntries(statuses))}`;
  process.stdout.write(`${line}\n`);
  const failures: string[] = [];
  if (measured < REQUESTS) failures.push(`only ${measured} of ${REQUESTS} requests within the time limit`);
  if (growth >= MAX_GROWTH_MB) failures.push(`RSS grew ${growth.toFixed(1)} MB`);
  if (leftover > 0)
    failures.push(`${leftover} handles left after close: ${process.getActiveResourcesInfo().join(", ")}`);
  if (errors > 0) failures.push(`${errors} requests answered 500`);
  return failures.map((failure) => `${name}: ${failure}`);
}

const bundles = await buildBundles(path.join(repoRoot, "policies"), "soak-1", "authz/allow");
const opa = await startOpaServer(["--bundle", bundles.rego]);
const failures: string[] = [];
try {
  failures.push(
    ...(await soak(
      "remote",
      createEnforcer({ opa: { url: opa.url, path: "authz/allow" }, timeoutMs: 2000 }),
    )),
  );
  failures.push(
    ...(await soak("embedded", createEnforcer({ bundle: bundles.wasm, entrypoint: "authz/allow" }))),
  );
} finally {
  await opa.stop();
}
if (failures.length > 0) {
  process.stderr.write(`soak failed:\n${failures.join("\n")}\n`);
  process.exit(1);
}
process.stdout.write("soak passed\n");
