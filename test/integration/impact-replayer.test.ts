import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inputOf, type RecordedDecision, releaseInput } from "../../src/impact/decisions.ts";
import { parseNullPrototypeJson } from "../../src/impact/null-prototype-json.ts";
import { Replayer } from "../../src/impact/replayer.ts";
import { ImpactReport } from "../../src/impact/report.ts";
import { type OfflineCapabilities, offlineCapabilities } from "../../src/opa/capabilities.ts";
import { repoRoot, toolPath } from "../helpers/tools.ts";

const REVISION = "a".repeat(40);
const opa = { path: toolPath("opa"), env: Object.assign(Object.create(null), { PATH: "/usr/bin:/bin" }) };
let dir: string;
let base: string;
let candidate: string;
let capabilities: OfflineCapabilities;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "policyship-replayer-"));
  base = path.join(dir, "base.tar.gz");
  execFileSync(opa.path, ["build", "-b", path.join(repoRoot, "policies"), "-o", base]);
  // The candidate lets everyone in: every decision the base denies flips.
  const open = path.join(dir, "open");
  execFileSync("mkdir", ["-p", open]);
  execFileSync("sh", [
    "-c",
    `printf 'package authz\\n\\nallow := {"allow": true, "headers": {}}\\n' > ${open}/authz.rego`,
  ]);
  candidate = path.join(dir, "candidate.tar.gz");
  execFileSync(opa.path, ["build", "-b", open, "-o", candidate]);
  capabilities = await offlineCapabilities(opa);
}, 60_000);

afterAll(async () => {
  await capabilities?.dispose();
  await rm(dir, { recursive: true, force: true });
});

/** A line as the enforcer logs it: each its own id and trace, `distinct` (key, path) pairs in a cycle. */
function record(i: number, distinct: number): RecordedDecision {
  const which = i % distinct;
  const text = JSON.stringify({
    decision_id: `d-${i}`,
    path: "authz/allow",
    input: {
      request: {
        http: {
          method: "GET",
          path: `/orders/${which}`,
          headers: { "x-api-key": which % 3 === 0 ? "bob-key" : `user-${which}`, "x-request-id": `r-${i}` },
        },
      },
    },
    bundles: { authz: { revision: REVISION } },
  });
  const event = parseNullPrototypeJson(text) as Record<string, unknown>;
  return {
    decisionId: `d-${i}`,
    path: "authz/allow",
    input: event.input,
    result: undefined,
    hasResult: false,
    revisions: Object.assign(Object.create(null), { authz: REVISION }),
    text,
  };
}

async function replayAll(
  count: number,
  distinct: number,
  sizes: { hotEntries?: number; batchSize?: number } = {},
) {
  const report = new ImpactReport(3);
  const replayer = new Replayer(opa, async () => base, candidate, report, {
    capabilities: capabilities.file,
    parallel: 1,
    ...sizes,
  });
  for (let i = 0; i < count; i++) await replayer.add(record(i, distinct), REVISION, "authz/allow");
  await replayer.finish();
  return { result: report.finish(), evaluated: replayer.evaluated };
}

describe("Replayer", () => {
  it("evaluates each distinct projected input once, though far more of them pass than it keeps by text", async () => {
    // Batches of 8, one at a time: each cycle meets the inputs of the one before evaluated, none held as text.
    const small = await replayAll(600, 40, { hotEntries: 2, batchSize: 8 });
    expect(small.evaluated).toBe(40);
    const large = await replayAll(600, 40);
    expect(large.evaluated).toBe(40);
    expect(small.result).toEqual(large.result);
    expect(small.result.replayed).toBe(600);
    expect(small.result.changed).toBeGreaterThan(0);
  }, 120_000);

  it("shows an example's whole input, read again from its line after the replayer let it go", async () => {
    const { result } = await replayAll(50, 10);
    const example = result.examples[0] as {
      input: { request: { http: { headers: Record<string, string> } } };
    };
    expect(example.input.request.http.headers["x-request-id"]).toMatch(/^r-\d+$/);
    const held = record(7, 10);
    const before = JSON.stringify(held.input);
    releaseInput(held);
    expect(held.input).toBeUndefined();
    expect(JSON.stringify(inputOf(held))).toBe(before);
  }, 120_000);
});
