import { mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { runCli } from "./cli.ts";
import { repoRoot } from "./tools.ts";

export const CONFORMANCE_DIR = path.join(repoRoot, "test/fixtures/conformance");
export const CONFORMANCE_ENTRYPOINT = "conformance/decision";

/** Builds a policy directory with the real CLI (and opa) as a rego bundle and a wasm bundle. */
export async function buildBundles(policies: string, revision: string, entrypoint: string) {
  const out = await mkdtemp(path.join(os.tmpdir(), "policyship-enforcer-"));
  const rego = await runCli(
    ["build", "--policies", policies, "--revision", revision, "--out", path.join(out, "rego"), "--json"],
    {
      cwd: out,
    },
  );
  if (rego.exitCode !== 0) throw new Error(`rego build failed: ${rego.stderr}`);
  const wasm = await runCli(
    [
      "build",
      "--policies",
      policies,
      "--revision",
      revision,
      "--out",
      path.join(out, "wasm"),
      "--target",
      "wasm",
      "--entrypoint",
      entrypoint,
      "--json",
    ],
    { cwd: out },
  );
  if (wasm.exitCode !== 0) throw new Error(`wasm build failed: ${wasm.stderr}`);
  return {
    dir: out,
    rego: path.join(out, JSON.parse(rego.stdout).bundle),
    wasm: path.join(out, JSON.parse(wasm.stdout).bundle),
  };
}

export interface ConformanceCase {
  name: string;
  path: string;
  method?: string;
  headers?: Record<string, string>;
  expect: { allow: boolean; status: number; headers?: Record<string, string>; message?: unknown };
}

const error500 = { allow: false, status: 500, message: "An unexpected error occurred" };

/** One row per rule of Kong's decision contract; both engines and every adapter must agree on each. */
export const CONFORMANCE_CASES: ConformanceCase[] = [
  { name: "result true allows", path: "/bool-allow", expect: { allow: true, status: 200, headers: {} } },
  {
    name: "result false denies with 403 unauthorized",
    path: "/bool-deny",
    expect: { allow: false, status: 403, headers: {}, message: "unauthorized" },
  },
  {
    name: "{allow: true, headers} allows and adds the headers to the request",
    path: "/object-allow",
    headers: { "x-api-key": "alice-key" },
    expect: { allow: true, status: 200, headers: { "x-user": "alice" } },
  },
  {
    name: "{allow: false, status, headers, message} denies with all three",
    path: "/object-deny",
    expect: { allow: false, status: 401, headers: { "www-authenticate": "ApiKey" }, message: "who are you?" },
  },
  {
    name: "{allow: false} denies with 403 unauthorized",
    path: "/object-deny-defaults",
    expect: { allow: false, status: 403, headers: {}, message: "unauthorized" },
  },
  {
    name: "message may be an object",
    path: "/object-message",
    expect: { allow: false, status: 429, headers: {}, message: { error: "slow down", retry_after: 3 } },
  },
  {
    name: "the policy sees method, querystring, client_ip and scheme",
    path: "/echo?a=1&a=2&flag&b=x%20y",
    method: "POST",
    expect: {
      allow: true,
      status: 200,
      headers: {
        "x-method": "POST",
        "x-query-a": "1,2",
        "x-query-b": "x y",
        "x-query-flag": "true",
        "x-client-ip-set": "true",
        "x-scheme": "http",
      },
    },
  },
  { name: "a header value with CR/LF is an error", path: "/header-injection", expect: error500 },
  { name: "an invalid header name is an error", path: "/bad-header-name", expect: error500 },
  { name: "a framing header is an error", path: "/framing-header", expect: error500 },
  { name: "a non-boolean allow is an error", path: "/non-boolean-allow", expect: error500 },
  { name: "a string result is an error", path: "/string-result", expect: error500 },
  { name: "a status outside 100–599 is an error", path: "/bad-status", expect: error500 },
  { name: "a fractional status is an error", path: "/fractional-status", expect: error500 },
  { name: "a message over the size limit is an error", path: "/huge-message", expect: error500 },
  { name: "an undefined decision is an error", path: "/undefined", expect: error500 },
];

/** A Kong input for a case, as buildInput would make it for a plain-HTTP request from loopback. */
export function inputFor(testCase: ConformanceCase) {
  const [pathname, query = ""] = testCase.path.split("?");
  const querystring: Record<string, unknown> = {};
  for (const part of query.split("&").filter(Boolean)) {
    const [key, value] = part.split("=");
    const decoded = value === undefined ? true : decodeURIComponent(value);
    const existing = querystring[key as string];
    querystring[key as string] = existing === undefined ? decoded : [existing, decoded].flat();
  }
  return {
    request: {
      http: {
        host: "127.0.0.1",
        port: "8080",
        tls: {},
        method: testCase.method ?? "GET",
        scheme: "http",
        path: pathname,
        querystring,
        headers: { host: "127.0.0.1:8080", ...testCase.headers },
      },
    },
    client_ip: "127.0.0.1",
  };
}
