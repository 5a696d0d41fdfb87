import { execFileSync } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { explainEvaluation } from "../../src/explain/trace.ts";
import { type OfflineCapabilities, offlineCapabilities } from "../../src/opa/capabilities.ts";
import { toolPath } from "../helpers/tools.ts";

const opa = { path: toolPath("opa"), env: { PATH: process.env.PATH ?? "" } };
let bundle: string;
let capabilities: OfflineCapabilities;

beforeAll(async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-explain-trace-"));
  await writeFile(
    path.join(dir, "a.rego"),
    [
      "package a",
      "",
      "default allow := false",
      "",
      "allow if {",
      '\tinput.user == "root"',
      "\tpad := input.padding",
      "\tcount(pad) > 0",
      "}",
      "",
    ].join("\n"),
  );
  bundle = path.join(dir, "bundle.tar.gz");
  execFileSync(opa.path, ["build", "--bundle", ".", "--output", bundle], { cwd: dir });
  capabilities = await offlineCapabilities(opa);
});
afterAll(() => capabilities?.dispose());

describe("opa's explanation, read with bounds", () => {
  it("names the rule from the trace, and nothing of the bindings the trace carries", async () => {
    const explained = await explainEvaluation(
      opa,
      bundle,
      "a/allow",
      { user: "root", padding: "s3cr3t-value" },
      {
        capabilities: capabilities.file,
      },
    );
    expect(explained).toEqual({
      replayed: { defined: true, result: true },
      rules: [{ name: "allow", file: "a.rego", row: 5, default: false }],
    });
    expect(JSON.stringify(explained)).not.toContain("s3cr3t-value");
  });

  it("an explanation past the byte cap is refused with one line, not held", async () => {
    const input = { user: "root", padding: "x".repeat(100_000) };
    await expect(
      explainEvaluation(opa, bundle, "a/allow", input, {
        capabilities: capabilities.file,
        maxTraceBytes: 50_000,
      }),
    ).rejects.toThrow(/opa's explanation of a\/allow for this input is over 50000 bytes/);
  });
});
