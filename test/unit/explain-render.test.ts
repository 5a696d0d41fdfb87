import { describe, expect, it } from "vitest";
import { renderExplain, renderExplainMarkdown } from "../../src/explain/render.ts";
import type { ExplainResult } from "../../src/explain/result.ts";

const HOSTILE = "@octocat see https://evil.example/x #123 <img src=x onerror=alert(1)> ```";

function hostileResult(): ExplainResult {
  const rule = {
    name: "allow",
    file: "authz.rego",
    row: 24,
    default: false,
    source: [{ row: 24, text: "allow := false" }],
  };
  return {
    decision_id: "d-1",
    revision: "a".repeat(40),
    path: "authz/allow",
    recorded: { defined: true, result: { allow: false, message: HOSTILE }, outcome: "deny" },
    replayed: { defined: true, result: { allow: false, message: HOSTILE }, outcome: "deny" },
    drift: false,
    rules: [rule],
    input: { request: { http: { path: `/\u001b[2J${HOSTILE}` } } },
    candidate: {
      revision: "b".repeat(40),
      replayed: { defined: false, outcome: "error", error: `conflict ${HOSTILE}` },
      rules: [],
      changed: true,
      why: `the candidate fails: conflict ${HOSTILE}`,
      changes: {
        rules: { added: [], removed: [], changed: [] },
        data: { added: [], removed: [], changed: [] },
      },
    },
  };
}

describe("explain's markdown is a block to paste into a ticket", () => {
  it("a recorded message or an opa error mentions, links and references nothing outside code", () => {
    const markdown = renderExplainMarkdown(hostileResult());
    // The one line of prose that carries outside text: every trigger defused by a word joiner, markup escaped.
    const why = markdown.split("\n").find((line) => line.startsWith("- **Changed**:")) ?? "";
    expect(why).toContain("@\u2060octocat");
    expect(why).toContain("https:\u2060//evil");
    expect(why).toContain("#\u2060123");
    expect(why).toContain("\\<img");
    expect(why).not.toMatch(/@octocat|https:\/\/|#123|[^\\]<img/);
    // Recorded values sit in code spans whose fence is longer than any backtick run inside them.
    expect(markdown).toContain("- Recorded: **deny** ````");
  });

  it("the terminal text has no control character from the log", () => {
    const text = renderExplain(hostileResult());
    expect(text).not.toContain("\u001b");
    expect(text).toContain("\\u001b[2J");
    expect(text).toContain("allow  authz.rego:24");
  });
});
