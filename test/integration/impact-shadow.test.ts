import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.ts";

/**
 * `impact --shadow` reads the comparisons a shadow candidate made live from decision-log lines in the
 * enforcer's format (custom.policyship.shadow), and replays nothing. These lines are written by hand, each
 * as the enforcer writes it; impact-shadow-live.test.ts reads lines a real enforcer wrote.
 */

const ENFORCED = "a".repeat(40);
const CANDIDATE = "b".repeat(40);
const OTHER_CANDIDATE = "c".repeat(40);
const TOKEN = "SENTINEL-shadow-token-5e1d0c";

let dir: string;
let serial = 0;

interface Line {
  path?: string;
  outcome?: "allow" | "deny" | "error";
  status?: number;
  shadow?: Record<string, unknown>;
  headers?: Record<string, string>;
}

function line(options: Line): string {
  const outcome = options.outcome ?? "allow";
  return JSON.stringify({
    labels: { engine: "remote" },
    decision_id: `decision-${++serial}`,
    bundles: { authz: { revision: ENFORCED } },
    path: "authz/allow",
    input: {
      request: { http: { method: "GET", path: options.path ?? "/orders", headers: options.headers ?? {} } },
    },
    // As the enforcer logs it: a denial with its own status carries that status in its result.
    ...(outcome === "error"
      ? {}
      : {
          result:
            outcome === "deny" && options.status
              ? { allow: false, status: options.status }
              : outcome === "allow",
        }),
    timestamp: "2026-12-01T10:00:00.000Z",
    metrics: { timer_server_handler_ns: 1000 },
    custom: {
      policyship: {
        outcome,
        status: options.status ?? (outcome === "allow" ? 200 : outcome === "deny" ? 403 : 500),
        audited: false,
        would: outcome,
        cached: false,
        fail_open: false,
        ...(options.shadow ? { shadow: options.shadow } : {}),
      },
    },
  });
}

/** A candidate's answer, as custom.policyship.shadow carries it. */
function shadow(allow: boolean | null, flip: string, extra: Record<string, unknown> = {}) {
  return {
    revision: CANDIDATE,
    allow,
    status: allow === null ? null : allow ? 200 : 403,
    headers: {},
    ...(allow === false ? { message: "unauthorized" } : {}),
    differs: flip !== "none",
    flip,
    ...(allow === null ? { error: "candidate unreachable" } : {}),
    engine: "remote",
    ...extra,
  };
}

async function logOf(name: string, lines: string[]): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, `${lines.join("\n")}\n`);
  return file;
}

async function shadowImpact(file: string, ...args: string[]) {
  return runCli(["impact", "--shadow", "--decisions", file, ...args], { cwd: dir });
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "policyship-impact-shadow-"));
});

describe("impact --shadow on the enforcer's log lines", () => {
  it("counts each flip, the agreements and the decisions not sampled, without opa or git", async () => {
    const file = await logOf("day.ndjson", [
      line({ path: "/admin", shadow: shadow(false, "allow_to_deny") }),
      line({ path: "/admin", shadow: shadow(false, "allow_to_deny") }),
      line({ path: "/orders", outcome: "deny", shadow: shadow(true, "deny_to_allow") }),
      line({ path: "/orders", shadow: shadow(null, "to_error") }),
      line({ path: "/orders", outcome: "error", shadow: shadow(true, "from_error") }),
      line({ path: "/orders", shadow: shadow(true, "none") }),
      line({ path: "/orders", outcome: "deny", status: 401, shadow: shadow(false, "other") }),
      line({ path: "/orders" }),
      line({ path: "/orders" }),
    ]);
    // PATH without opa: nothing is replayed, so nothing needs it.
    const result = await runCli(["impact", "--shadow", "--decisions", file, "--json"], {
      cwd: dir,
      env: { PATH: path.dirname(process.execPath) },
    });
    expect(result.exitCode, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report).toMatchObject({
      mode: "shadow",
      compared: 7,
      unchanged: 1,
      changed: 6,
      not_sampled: 2,
      flips: { allow_to_deny: 2, deny_to_allow: 1, to_error: 1, from_error: 1, other: 1 },
      files: 1,
    });
    expect(report.candidates).toHaveLength(1);
    expect(report.candidates[0]).toMatchObject({
      revision: CANDIDATE,
      engines: ["remote"],
      base_revisions: [ENFORCED],
      groups: [
        { method: "GET", path: "/orders", changed: 4 },
        { method: "GET", path: "/admin", changed: 2 },
      ],
    });
    expect(report.candidates[0].examples[0]).toMatchObject({
      base_revision: ENFORCED,
      method: "GET",
      path: "/admin",
      flip: "allow_to_deny",
      base: { outcome: "allow", status: 200 },
      candidate: { outcome: "deny", status: 403 },
    });
  });

  it("prints the report as text and markdown, and --fail-on exits 1 on the flip it names", async () => {
    const file = await logOf("flip.ndjson", [
      line({ path: "/admin", outcome: "deny", shadow: shadow(true, "deny_to_allow") }),
      line({ shadow: shadow(true, "none") }),
    ]);
    const markdown = path.join(dir, "shadow.md");
    const passed = await shadowImpact(file, "--fail-on", "allow-to-deny", "--markdown", markdown);
    expect(passed.exitCode, passed.stderr).toBe(0);
    expect(passed.stdout).toContain("compared 2 decisions in shadow: 1 unchanged, 1 changed; 0 not sampled");
    expect(passed.stdout).toMatch(/deny → allow {2}1/);
    expect(passed.stdout).toContain("1  GET /admin");
    const text = await readFile(markdown, "utf8");
    expect(text).toContain("## policyship impact --shadow");
    expect(text).toContain(`### \`${CANDIDATE}\``);
    expect(text).toContain("| deny → allow | 1 |");
    const failed = await shadowImpact(file, "--fail-on", "deny-to-allow");
    expect(failed.exitCode).toBe(1);
    expect(failed.stderr.trimEnd().split("\n").at(-1)).toMatch(
      /^policyship: the shadow candidate disagreed with live decisions: deny-to-allow 1 — /,
    );
  });

  it("reports each candidate revision of a mixed log on its own", async () => {
    const file = await logOf("mixed.ndjson", [
      line({ path: "/admin", shadow: shadow(false, "allow_to_deny") }),
      line({
        path: "/admin",
        shadow: shadow(true, "none", { revision: OTHER_CANDIDATE, engine: "embedded" }),
      }),
      line({
        path: "/admin",
        shadow: shadow(true, "none", { revision: OTHER_CANDIDATE, engine: "embedded" }),
      }),
    ]);
    const result = await shadowImpact(file, "--json");
    expect(result.exitCode, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report.compared).toBe(3);
    expect(
      report.candidates.map(
        (c: { revision: string; compared: number; changed: number; engines: string[] }) => [
          c.revision,
          c.compared,
          c.changed,
          c.engines,
        ],
      ),
    ).toEqual([
      [OTHER_CANDIDATE, 2, 0, ["embedded"]],
      [CANDIDATE, 1, 1, ["remote"]],
    ]);
  });

  it("masks the credentials of every example's input, and their values in the candidate's output", async () => {
    const file = await logOf("secrets.ndjson", [
      line({
        headers: { authorization: `Bearer ${TOKEN}`, "x-api-key": "SENTINEL-key-7a0b9c2d" },
        shadow: shadow(false, "allow_to_deny", {
          headers: { "x-echo": TOKEN },
          message: `denied ${TOKEN} SENTINEL-key-7a0b9c2d`,
        }),
      }),
    ]);
    const result = await shadowImpact(
      file,
      "--json",
      "--show-results",
      "--mask",
      "/input/request/http/headers/x-api-key",
    );
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).not.toContain("SENTINEL");
    const example = JSON.parse(result.stdout).candidates[0].examples[0];
    expect(example.candidate).toEqual({
      outcome: "deny",
      status: 403,
      headers: { "x-echo": "[masked]" },
      message: "denied [masked] [masked]",
    });
    const hidden = await shadowImpact(file, "--json");
    expect(JSON.parse(hidden.stdout).candidates[0].examples[0].candidate).toEqual({
      outcome: "deny",
      status: 403,
    });
  });

  it("reads a denial's message of any JSON shape, as Kong's contract allows", async () => {
    const file = await logOf("message.ndjson", [
      line({ shadow: shadow(false, "allow_to_deny", { message: { reason: "closed", codes: [1, 2] } }) }),
    ]);
    const result = await shadowImpact(file, "--json", "--show-results");
    expect(result.exitCode, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout).candidates[0].examples[0].candidate.message).toEqual({
      reason: "closed",
      codes: [1, 2],
    });
  });

  it("refuses --candidate, --base and --path, which only a replay uses", async () => {
    const file = await logOf("one.ndjson", [line({ shadow: shadow(true, "none") })]);
    for (const flag of [
      ["--candidate", "HEAD"],
      ["--base", "HEAD"],
      ["--path", "authz/allow"],
    ]) {
      const result = await shadowImpact(file, ...flag);
      expect(result.exitCode).toBe(2);
      expect(result.stderr.trimEnd().split("\n").at(-1)).toMatch(
        new RegExp(`^policyship: ${flag[0]} has no part in impact --shadow`),
      );
    }
  });
});

describe("impact --shadow refuses a comparison that is malformed or contradicts itself", () => {
  const cases: [string, Record<string, unknown> | string, RegExp][] = [
    [
      "a deny → allow logged as no flip",
      { ...shadow(true, "none"), differs: false },
      /shadow\.flip is none, yet the enforced decision was deny and the candidate's allow/,
    ],
    [
      "differs that disagrees with the flip",
      { ...shadow(true, "deny_to_allow"), differs: false },
      /shadow\.differs is false, yet shadow\.flip is deny_to_allow/,
    ],
    [
      "an unknown flip",
      { ...shadow(true, "deny_to_allow"), flip: "sideways" },
      /shadow\.flip is not one of allow_to_deny/,
    ],
    [
      "allow as a string",
      { ...shadow(true, "deny_to_allow"), allow: "true" },
      /shadow\.allow is neither a boolean nor null/,
    ],
    [
      "a status out of range",
      { ...shadow(true, "deny_to_allow"), status: 1000 },
      /shadow\.status is neither null nor an HTTP status/,
    ],
    [
      "a header that is not a string",
      { ...shadow(true, "deny_to_allow"), headers: { "x-a": 1 } },
      /shadow\.headers\.x-a is not a string/,
    ],
    [
      "an unknown engine",
      { ...shadow(true, "deny_to_allow"), engine: "gpu" },
      /shadow\.engine is not remote or embedded/,
    ],
    [
      "a revision past any sane length",
      { ...shadow(true, "deny_to_allow"), revision: "b".repeat(1_025) },
      /shadow\.revision is neither null nor a string of at most 1024 characters/,
    ],
    [
      "a revision that is not a string",
      { ...shadow(true, "deny_to_allow"), revision: 7 },
      /shadow\.revision is neither null nor a string/,
    ],
    [
      "no answer without an error",
      { ...shadow(null, "to_error"), error: undefined },
      /shadow\.allow is null, yet shadow\.error does not say why/,
    ],
    ["a shadow that is a string", "sampled", /custom\.policyship\.shadow is not an object/],
  ];
  for (const [name, value, message] of cases) {
    it(name, async () => {
      const file = await logOf(`hostile-${serial}.ndjson`, [
        line({ shadow: shadow(true, "none") }),
        line({ outcome: "deny", shadow: value as Record<string, unknown> }),
      ]);
      const result = await shadowImpact(file);
      expect(result.exitCode, result.stderr).toBe(2);
      expect(result.stdout).toBe("");
      const lines = result.stderr.trimEnd().split("\n");
      expect(lines.filter((l) => l.startsWith("policyship:"))).toHaveLength(1);
      expect(lines.at(-1)).toMatch(
        /^policyship: decision decision-\d+ in .*hostile-\d+\.ndjson is refused: /,
      );
      expect(lines.at(-1)).toMatch(message);
    });
  }

  it("reads a __proto__ member as data: a comparison hidden there is no comparison", async () => {
    const hidden = JSON.stringify({ shadow: shadow(true, "deny_to_allow") });
    const text = line({ outcome: "deny" }).replace(
      '"custom":{"policyship":{',
      `"custom":{"policyship":{"__proto__":${hidden},`,
    );
    const file = await logOf("proto.ndjson", [
      text,
      line({ outcome: "deny", shadow: shadow(true, "deny_to_allow") }),
    ]);
    const result = await shadowImpact(file, "--json");
    expect(result.exitCode, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({
      compared: 1,
      not_sampled: 1,
      flips: { deny_to_allow: 1 },
    });
  });
});
