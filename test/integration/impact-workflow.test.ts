import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../helpers/tools.ts";

interface Step {
  uses?: string;
  if?: string;
  run?: string;
  with?: Record<string, string>;
  env?: Record<string, string>;
}

describe("policy-impact.yml", () => {
  it("runs on pull_request, never pull_request_target, and posts one sticky comment with a pinned action", async () => {
    const YAML = await import("yaml");
    const text = await readFile(path.join(repoRoot, ".github/workflows/policy-impact.yml"), "utf8");
    const workflow = YAML.parse(text) as { on: Record<string, unknown>; jobs: { impact: { steps: Step[] } } };
    expect(Object.keys(workflow.on)).toEqual(["pull_request"]);
    const code = text.split("\n").filter((line) => !line.trimStart().startsWith("#"));
    expect(code.join("\n")).not.toContain("pull_request_target");
    const steps = workflow.jobs.impact.steps;
    for (const step of steps.filter((s) => s.uses)) expect(step.uses).toMatch(/@[0-9a-f]{40}$/);
    const comment = steps.find((s) => s.uses?.startsWith("marocchino/sticky-pull-request-comment@"));
    expect(comment?.with).toMatchObject({ header: "policyship-impact", path: "impact.md" });
    // Credentials and the replay only for branches of this repository; the logs' location never in a script.
    const credentials = steps.find((s) => s.uses?.startsWith("aws-actions/configure-aws-credentials@"));
    expect(credentials?.if).toBe("env.SAME_REPOSITORY == 'true'");
    const impact = steps.find((s) => s.run?.startsWith("policyship impact"));
    expect(impact?.if).toBe("env.SAME_REPOSITORY == 'true'");
    expect(impact?.run).not.toContain("${{");
    const install = steps.findIndex((s) => s.run?.includes("npm ci --ignore-scripts"));
    expect(install).toBeGreaterThanOrEqual(0);
    expect(install).toBeLessThan(steps.indexOf(credentials as Step));
  });
});
