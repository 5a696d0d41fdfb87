import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { customBuiltins } from "../../src/enforcer/builtins/index.ts";
import { repoRoot } from "../helpers/tools.ts";

describe("the README's list of the embedded engine's host built-ins", () => {
  it("names exactly the built-ins the code implements", () => {
    const readme = readFileSync(path.join(repoRoot, "README.md"), "utf8");
    const block = /<!-- host-builtins:start[^>]*-->\n([\s\S]*?)\n<!-- host-builtins:end -->/.exec(
      readme,
    )?.[1];
    expect(block, "the host-builtins block").toBeDefined();
    const listed = [...(block ?? "").matchAll(/`([^`]+)`/g)].map((match) => match[1]);
    expect(listed).toEqual(Object.keys(customBuiltins).sort());
  });
});
