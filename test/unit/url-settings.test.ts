import { mkdtemp, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { UserError } from "../../src/errors.ts";
import { flagName, resolveSettings } from "../../src/settings.ts";

/** URL settings (endpoint, serviceUrl, instances) and the opa binary, as resolveSettings reads them. */

const cwd = () => mkdtemp(path.join(os.tmpdir(), "policyship-url-settings-"));

async function refusal(options: {
  env?: NodeJS.ProcessEnv;
  flags?: Record<string, unknown>;
}): Promise<string> {
  const error = await resolveSettings({
    cwd: await cwd(),
    env: options.env ?? {},
    flags: options.flags ?? {},
  }).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(UserError);
  return (error as UserError).message;
}

describe("URL settings", () => {
  it("refuse a line break, a tab or a space, which URL parsing would drop and output would print", async () => {
    for (const value of ["http://127.0.0.1:9000\n::warning::x", "http://127.0.0.1:9000/a\tb", "http://a b"]) {
      for (const key of ["endpoint", "serviceUrl"]) {
        const message = await refusal({ flags: { [key]: value } });
        expect(message).toMatch(
          /must not hold spaces, line breaks or control characters|must be an http\(s\) URL/,
        );
        expect(message).not.toContain("::warning::");
      }
      expect(await refusal({ flags: { instances: [value] } })).toMatch(/--instance: must/);
    }
    // U+202E (right-to-left override) reorders what a terminal shows.
    expect(await refusal({ env: { POLICYSHIP_INSTANCES: "http://opa\u202e.example" } })).toMatch(
      /POLICYSHIP_INSTANCES: must not hold spaces, line breaks or control characters/,
    );
  });

  it("instances: POLICYSHIP_INSTANCES splits on commas; flags win over it; the flag is named --instance", async () => {
    const dir = await cwd();
    await writeFile(path.join(dir, "policyship.yaml"), "instances: [http://from-file:8181]\n");
    const env = { POLICYSHIP_INSTANCES: "http://a:8181, http://b:8181," };
    const read = (flags: Record<string, unknown>, environment: NodeJS.ProcessEnv = env) =>
      resolveSettings({ cwd: dir, env: environment, flags }).then(({ settings }) => settings.instances);
    expect(await read({}, {})).toEqual(["http://from-file:8181"]);
    expect(await read({})).toEqual(["http://a:8181", "http://b:8181"]);
    expect(await read({ instances: ["http://c:8181"] })).toEqual(["http://c:8181"]);
    expect(flagName("instances")).toBe("--instance");
    expect(flagName("bundleName")).toBe("--bundle-name");
  });

  it("opa is a path: a URL there names --instance, from every source", async () => {
    expect(await refusal({ flags: { opa: "http://opa-0:8181" } })).toMatch(
      /flags: --opa: takes the path of the opa binary, not a URL: name OPA instances with --instance <url>/,
    );
    expect(await refusal({ env: { POLICYSHIP_OPA: "https://opa-0:8181" } })).toMatch(
      /POLICYSHIP_OPA: takes the path/,
    );
    const { settings } = await resolveSettings({ cwd: await cwd(), env: {}, flags: { opa: "./bin/opa:v1" } });
    expect(settings.opa).toBe("./bin/opa:v1");
  });
});
