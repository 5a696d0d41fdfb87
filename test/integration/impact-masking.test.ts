import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.ts";
import { createRepo, type TempRepo } from "../helpers/git-repo.ts";

/** Credentials as a recorded request carries them, and the pieces a policy could copy out of them. */
const TOKEN = "SENTINEL-bearer-token-91c3e5a7";
const COOKIE = "SENTINEL-session-cookie-2b8d";
const API_KEY = "SENTINEL-api-key-6f0e4c";
const BASIC_PASSWORD = "SENTINEL-basic-password-d41f";
const SENTINELS = [TOKEN, COOKIE, API_KEY, BASIC_PASSWORD];

const BASE_POLICY = 'package authz\n\nallow := {"allow": true}\n';

/** A candidate that denies everything and copies the request into its answer: a debug message, echoed headers. */
const LEAKY_POLICY = `package authz

headers := input.request.http.headers

allow := {
	"allow": false,
	"status": 401,
	"message": sprintf("denied: %v", [headers]),
	"headers": {
		"x-debug-cookie": object.get(headers, "cookie", "none"),
		"x-token": token,
		"x-basic": basic,
	},
}

token := t if {
	t := split(object.get(headers, "authorization", "none none"), " ")[1]
} else := "none"

basic := b if {
	parts := split(object.get(headers, "proxy-authorization", ""), " ")
	count(parts) == 2
	b := base64.decode(parts[1])
} else := "none"
`;

let repo: TempRepo;
let revision: string;
let logs: string;

beforeAll(async () => {
  repo = await createRepo();
  await repo.write("policies/authz.rego", BASE_POLICY);
  revision = repo.commit("allow everything");
  const built = await runCli(["build"], { cwd: repo.dir });
  expect(built.exitCode, built.stderr).toBe(0);
  const basic = Buffer.from(`ops:${BASIC_PASSWORD}`).toString("base64");
  const http = (headers: Record<string, string>, requestPath: string) => ({
    request: { http: { method: "GET", path: requestPath, headers } },
  });
  const bundles = { authz: { revision } };
  const lines = [
    // The enforcer's own decision log.
    {
      decision_id: "enforcer-1",
      path: "authz/allow",
      input: http(
        {
          authorization: `Bearer ${TOKEN}`,
          cookie: `sid=${COOKIE}; theme=dark`,
          "proxy-authorization": `Basic ${basic}`,
          "x-api-key": API_KEY,
        },
        "/orders",
      ),
      result: { allow: true },
      bundles,
    },
    // OPA's console decision log, which masks nothing, from a client that capitalises header names.
    {
      level: "info",
      msg: "Decision Log",
      decision_id: "opa-console-1",
      path: "authz/allow",
      input: http(
        { Authorization: `Bearer ${TOKEN}`, Cookie: `sid=${COOKIE}`, "X-Api-Key": API_KEY },
        `/reports/${API_KEY}`,
      ),
      result: { allow: true },
      bundles,
      time: "2026-01-01T00:00:00Z",
    },
  ];
  logs = path.join(repo.dir, "decisions.ndjson");
  await writeFile(logs, `${lines.map((line) => JSON.stringify(line)).join("\n")}\n`);
  // The candidate is the working tree.
  await repo.write("policies/authz.rego", LEAKY_POLICY);
}, 120_000);

async function runImpact(extra: string[]) {
  const markdown = path.join(repo.dir, "impact.md");
  const summary = path.join(repo.dir, "summary.md");
  await writeFile(summary, "");
  const result = await runCli(
    [
      "impact",
      "--decisions",
      logs,
      "--mask",
      "/input/request/http/headers/x-api-key",
      "--markdown",
      markdown,
      "--json",
      ...extra,
    ],
    { cwd: repo.dir, env: { GITHUB_ACTIONS: "true", GITHUB_STEP_SUMMARY: summary } },
  );
  expect(result.exitCode, result.stderr).toBe(0);
  const written = [
    result.stdout,
    result.stderr,
    await readFile(markdown, "utf8"),
    await readFile(summary, "utf8"),
  ];
  return { report: JSON.parse(result.stdout), markdown: await readFile(markdown, "utf8"), written };
}

describe("impact never prints a recorded credential, whatever the candidate returns", () => {
  it("by default shows each example's outcome and status only, and no credential anywhere", async () => {
    const { report, markdown, written } = await runImpact([]);
    expect(report.changed).toBe(2);
    expect(report.flips.allow_to_deny).toBe(2);
    for (const example of report.examples) {
      expect(example.base).toEqual({ outcome: "allow", status: 200 });
      expect(example.candidate).toEqual({ outcome: "deny", status: 401 });
    }
    expect(markdown).toContain("Examples (outcome and status only)");
    expect(markdown).toContain('`{"outcome":"deny","status":401}`');
    for (const text of written) for (const sentinel of SENTINELS) expect(text).not.toContain(sentinel);
    // The request path held the API key: the group shows it masked.
    expect(report.groups.map((group: { path: string }) => group.path).sort()).toEqual([
      "/orders",
      "/reports/[masked]",
    ]);
  });

  it("--show-results shows messages and headers with every masked value masked in them too", async () => {
    const { report, markdown, written } = await runImpact(["--show-results"]);
    const byId = Object.fromEntries(
      report.examples.map((example: { decision_id: string }) => [example.decision_id, example]),
    );
    const enforcer = byId["enforcer-1"].candidate;
    expect(enforcer.outcome).toBe("deny");
    expect(enforcer.headers).toEqual({
      "x-debug-cookie": "[masked]",
      "x-token": "[masked]",
      "x-basic": "[masked]",
    });
    expect(enforcer.message).toMatch(/^denied: \{.*\[masked\]/);
    // OPA's console lines are masked with the same default, capitalised header names included.
    const console = byId["opa-console-1"];
    expect(console.input.request.http.headers).toEqual({});
    expect(console.candidate.message).toContain("[masked]");
    expect(markdown).toContain("Examples (policy output shown, credential values masked)");
    for (const text of written) for (const sentinel of SENTINELS) expect(text).not.toContain(sentinel);
  });

  it("--show-results says in its help what it reveals", async () => {
    const help = await runCli(["impact", "--help"], { cwd: repo.dir });
    expect(help.stdout.replace(/\s+/g, " ")).toMatch(
      /--show-results also show the headers, message and error text of each example: policy output, which may contain request data/,
    );
  });
});
