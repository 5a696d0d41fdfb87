import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Differential,
  embeddedEngineFor,
  evaluateWithOpa,
  startDifferential,
  summarize,
} from "../helpers/differential.ts";
import { b64url, signature } from "../helpers/jwt-corpus.ts";
import { repoRoot } from "../helpers/tools.ts";

const FIXTURES = path.join(repoRoot, "test/fixtures/public-policies");

async function fixtures(...files: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const file of files) out[file] = await readFile(path.join(FIXTURES, file), "utf8");
  return out;
}

let current: Differential;
let legacy: Differential;

beforeAll(async () => {
  current = await startDifferential(
    {
      envoy_primer: "data.envoy.authz.allow with input as c",
      api_authz_jwt: "data.httpapi.authz.jwt.allow with input as c",
      api_authz: "data.httpapi.authz.allow with input as c",
      api_authz_hr: "data.httpapi.authz.hr.allow with input as c",
    },
    {
      files: await fixtures(
        "opa-envoy-primer/authz.rego",
        "contrib-api-authz/example-jwt.rego",
        "contrib-api-authz/example.rego",
        "contrib-api-authz/example-hr.rego",
      ),
    },
  );
  legacy = await startDifferential(
    { kong: "data.httpapi.authz.allow with input as c" },
    { files: await fixtures("contrib-kong-api-authz/policy.rego"), v0Compatible: true },
  );
}, 120_000);

afterAll(async () => {
  await current?.close();
  await legacy?.close();
});

const NOW = Math.floor(Date.now() / 1000);

function hs256(payload: object, secret: string, header: object = { alg: "HS256", typ: "JWT" }): string {
  const data = `${b64url(header)}.${b64url(payload)}`;
  return `${data}.${signature("HS256", secret, data).toString("base64url")}`;
}

/** Requests as Envoy's ext_authz sends them: every role, method, path, token lifetime and key. */
function envoyRequests(): unknown[] {
  const out: unknown[] = [];
  const lifetimes = [
    { nbf: NOW - 3600, exp: NOW + 3600 },
    { nbf: NOW - 7200, exp: NOW - 3600 },
    { nbf: NOW + 3600, exp: NOW + 7200 },
    { exp: NOW + 3600 },
  ];
  for (const role of ["guest", "admin", "other"]) {
    for (const lifetime of lifetimes) {
      for (const secret of ["secret", "wrong"]) {
        const token = hs256({ role, sub: Buffer.from("alice").toString("base64"), ...lifetime }, secret);
        for (const [method, p] of [
          ["GET", "/people/alice"],
          ["GET", "/people"],
          ["GET", "/people/a/b"],
          ["POST", "/people"],
          ["DELETE", "/people/alice"],
        ]) {
          for (const firstname of ["Alice", "Bob"]) {
            out.push({
              attributes: {
                request: { http: { method, path: p, headers: { authorization: `Bearer ${token}` } } },
              },
              parsed_body: { firstname },
            });
          }
        }
      }
    }
  }
  const valid = hs256({ role: "admin", sub: "YWxpY2U=", nbf: NOW - 10, exp: NOW + 10 }, "secret");
  for (const authorization of [`Bearer ${valid}x`, valid, "Bearer", "Bearer a.b.c", `Basic ${valid}`, ""]) {
    out.push({
      attributes: { request: { http: { method: "GET", path: "/people/x", headers: { authorization } } } },
    });
  }
  out.push({ attributes: { request: { http: { method: "GET", path: "/people/x", headers: {} } } } });
  out.push({ attributes: { request: { http: { method: "GET", path: "/people/x" } } } });
  const none = `${b64url({ alg: "none" })}.${b64url({ role: "admin", nbf: NOW - 10, exp: NOW + 10 })}.`;
  out.push({
    attributes: {
      request: { http: { method: "GET", path: "/people/x", headers: { authorization: `Bearer ${none}` } } },
    },
  });
  return out;
}

/** The contrib salary API: users, managers, HR, tokens issued to someone else. */
function salaryRequests(withTokens: boolean): unknown[] {
  const out: unknown[] = [];
  const users = ["alice", "bob", "betty", "charlie", "david", "mallory"];
  for (const user of users) {
    for (const target of users) {
      for (const method of ["GET", "POST"]) {
        const request: Record<string, unknown> = { method, user, path: ["finance", "salary", target] };
        if (!withTokens) {
          out.push(request);
          continue;
        }
        for (const claims of [
          { user, azp: user, subordinates: user === "bob" ? ["alice"] : [] },
          { user, azp: "someone-else" },
          { user: "david", azp: user, hr: true },
          { user, azp: user, hr: "true" },
        ]) {
          out.push({ ...request, token: hs256(claims, "any") });
        }
      }
    }
  }
  out.push({ method: "GET", user: "alice", path: ["finance", "salary", "alice"], token: "not.a.token" });
  out.push({ method: "GET", user: "alice", path: ["finance", "salary", "alice"], token: 7 });
  out.push({ method: "GET", user: "alice", path: "/finance/salary/alice" });
  return out;
}

function kongRequests(): unknown[] {
  const out: unknown[] = [];
  for (const method of ["GET", "POST"]) {
    for (const p of ["/status", "/status/", "/status/a/b", "/statusx", "/other", "status"]) {
      for (const role of ["admin", "user", undefined]) {
        out.push({ method, path: p, token: { payload: role === undefined ? {} : { role } } });
      }
    }
  }
  out.push(
    { method: "GET", path: "/status" },
    { method: "GET", path: 5, token: { payload: { role: "admin" } } },
  );
  return out;
}

describe("public API-authorization policies decide the same in both engines", () => {
  it("the OPA Envoy primer, contrib's api_authz (plain, HR, JWT) on generated requests", async () => {
    const corpus = {
      envoy_primer: envoyRequests(),
      api_authz_jwt: salaryRequests(true),
      api_authz: salaryRequests(false),
      api_authz_hr: salaryRequests(false),
    };
    expect(summarize(await current.compare(corpus))).toEqual({});
    // Each policy both allows and denies (false, or undefined where it has no default) on its corpus.
    const opa = current.lastOpaResults();
    for (const [name, cases] of Object.entries(corpus)) {
      const decisions = Object.values(opa[name] ?? {});
      expect(decisions, name).toContain(true);
      expect(decisions.filter((decision) => decision === true).length, name).toBeLessThan(cases.length);
    }
  }, 120_000);

  it("contrib's Kong plugin policy (pre-1.0 Rego) on generated requests", async () => {
    const corpus = { kong: kongRequests() };
    expect(summarize(await legacy.compare(corpus))).toEqual({});
    const decisions = Object.values(legacy.lastOpaResults().kong ?? {});
    expect(decisions).toContain(true);
    expect(decisions).toContain(false);
  }, 120_000);

  it("the Envoy primer in the worker-thread pool too, where the host built-ins load from source", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-public-workers-"));
    const files = await fixtures("opa-envoy-primer/authz.rego");
    const { engine, policies } = await embeddedEngineFor(dir, files, "envoy/authz/allow", false);
    try {
      for (const input of envoyRequests().filter((_, i) => i % 9 === 0)) {
        const expected = await evaluateWithOpa(dir, policies, input, "data.envoy.authz.allow");
        const evaluation = await engine.evaluate(JSON.stringify(input), new AbortController().signal);
        expect(evaluation.result, JSON.stringify(input)).toBe(expected);
      }
    } finally {
      await engine.close();
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
