import { describe, expect, it } from "vitest";
import { DecisionLog } from "../../src/enforcer/decision-log.ts";
import type { DecisionEvent } from "../../src/enforcer/types.ts";
import { InputMask } from "../../src/impact/mask.ts";

function eventWith(authorization: string, echoed: string, extra: Record<string, string> = {}): DecisionEvent {
  return {
    input: {
      request: {
        http: {
          method: "GET",
          path: `/p/${echoed}`,
          querystring: { t: echoed },
          headers: { authorization, ...extra },
        },
      },
    },
    decision: {
      allow: false,
      status: 403,
      headers: { "x-echo": echoed },
      message: `denied ${echoed}`,
      result: { allow: false, headers: { "x-echo": echoed }, message: `denied ${echoed}` },
      error: `failed on ${echoed}`,
    } as never,
    revision: "rev-1",
    durationMs: 1,
    failOpen: false,
    decisionId: "d-1",
    cached: false,
    engine: "embedded",
    audited: false,
    would: "deny",
    decidedAt: 0,
    bundle: "authz",
    shadow: {
      revision: "rev-2",
      allow: false,
      status: 401,
      headers: { "x-shadow": echoed },
      message: { text: echoed },
      differs: true,
      flip: "none",
      engine: "embedded",
    } as never,
  };
}

async function logged(event: DecisionEvent): Promise<string> {
  const lines: string[] = [];
  const log = new DecisionLog({ sink: { write: (line: string) => lines.push(line) } }, "authz/allow");
  log.record(event);
  await log.close();
  expect(lines).toHaveLength(1);
  return lines[0] as string;
}

describe("the decision log masks an erased credential everywhere in the line", () => {
  it("masks a bearer token echoed in the path, the query, the result, the error and the candidate's answer", async () => {
    const line = await logged(eventWith("Bearer SuperSecretTok", "SuperSecretTok"));
    expect(line).not.toContain("SuperSecretTok");
    const parsed = JSON.parse(line);
    expect(parsed.erased).toEqual(["/input/request/http/headers/authorization"]);
    expect(parsed.input.request.http.path).toBe("/p/[masked]");
    expect(parsed.result.headers["x-echo"]).toBe("[masked]");
    expect(parsed.custom.policyship.shadow.headers["x-shadow"]).toBe("[masked]");
    expect(parsed.custom.policyship.shadow.message.text).toBe("[masked]");
    expect(parsed.custom.policyship.error).toBe("failed on [masked]");
  });

  it("masks a Basic credential's decoded user:password and its password alone", async () => {
    const basic = `Basic ${Buffer.from("alice:hunter2").toString("base64")}`;
    const decoded = await logged(eventWith(basic, "alice:hunter2"));
    expect(decoded).not.toContain("hunter2");
    const password = await logged(eventWith(basic, "hunter2"));
    expect(password).not.toContain("hunter2");
    expect(JSON.parse(password).input.request.http.path).toBe("/p/[masked]");
    // The user name alone is not a secret: it stays readable.
    expect(await logged(eventWith(basic, "alice"))).toContain("/p/alice");
  });

  it("masks each cookie's value", async () => {
    const event = eventWith("Bearer other-token", "sess-9f3a");
    (event.input as { request: { http: { headers: Record<string, string> } } }).request.http.headers.cookie =
      "theme=dark; sid=sess-9f3a";
    const line = await logged(event);
    expect(line).not.toContain("sess-9f3a");
  });

  it("leaves a credential shorter than four characters unmasked elsewhere, so ordinary text survives", async () => {
    const line = await logged(eventWith("Bearer abc", "abc"));
    expect(JSON.parse(line).input.request.http.path).toBe("/p/abc");
  });
});

describe("impact's mask", () => {
  it("masks a Basic password alone wherever it appears in the recorded input", () => {
    const input = {
      request: {
        http: {
          path: "/u/hunter2",
          headers: { authorization: `Basic ${Buffer.from("alice:hunter2").toString("base64")}` },
        },
      },
    };
    const masked = new InputMask().apply(input);
    expect((masked.input as typeof input).request.http.path).toBe("/u/[masked]");
    expect(masked.secrets).toContain("hunter2");
  });
});
