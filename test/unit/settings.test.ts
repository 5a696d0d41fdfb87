import { mkdtemp, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { UserError } from "../../src/errors.ts";
import { envName, flagName, resolveSettings } from "../../src/settings.ts";

async function dirWith(files: Record<string, string> = {}) {
  const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-settings-"));
  for (const [name, content] of Object.entries(files)) await writeFile(path.join(dir, name), content);
  return dir;
}

describe("settings", () => {
  it("uses defaults when nothing is set", async () => {
    const { settings, configFile } = await resolveSettings({ cwd: await dirWith(), env: {}, flags: {} });
    expect(configFile).toBeUndefined();
    expect(settings).toMatchObject({
      policies: "policies",
      out: "dist",
      target: "rego",
      bundleName: "authz",
      prefix: "",
    });
  });

  it("takes flags over POLICYSHIP_* env over policyship.yaml over defaults", async () => {
    const cwd = await dirWith({
      "policyship.yaml": "out: from-file\nbucket: file-bucket\nprefix: file/\noptimize: 1\n",
    });
    const { settings, configFile } = await resolveSettings({
      cwd,
      env: { POLICYSHIP_BUCKET: "env-bucket", POLICYSHIP_PREFIX: "env/" },
      flags: { prefix: "flag/" },
    });
    expect(configFile).toBe(path.join(cwd, "policyship.yaml"));
    expect(settings).toMatchObject({ out: "from-file", bucket: "env-bucket", prefix: "flag/", optimize: 1 });
  });

  it("reads policyship.json too", async () => {
    const cwd = await dirWith({ "policyship.json": JSON.stringify({ bundleName: "api" }) });
    const { settings } = await resolveSettings({ cwd, env: {}, flags: {} });
    expect(settings.bundleName).toBe("api");
  });

  it("converts env strings to booleans, numbers and lists", async () => {
    const { settings } = await resolveSettings({
      cwd: await dirWith(),
      env: {
        POLICYSHIP_FORCE_PATH_STYLE: "true",
        POLICYSHIP_ALLOW_DIRTY: "0",
        POLICYSHIP_POLLING_MIN: "5",
        POLICYSHIP_POLLING_MAX: "10",
        POLICYSHIP_ENTRYPOINTS: "authz/allow, authz/deny",
        POLICYSHIP_CACHE: "/somewhere", // not a setting: ignored, other tools use the prefix too
      },
      flags: {},
    });
    expect(settings).toMatchObject({
      forcePathStyle: true,
      allowDirty: false,
      pollingMin: 5,
      pollingMax: 10,
      entrypoints: ["authz/allow", "authz/deny"],
    });
  });

  it("reports every invalid field as source: path: message", async () => {
    const cwd = await dirWith({ "policyship.yaml": "bucket: Not_A_Bucket\nprefix: /abs\nmystery: 1\n" });
    const error = await resolveSettings({ cwd, env: {}, flags: {} }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    const message = (error as UserError).message;
    expect(message).toContain("policyship.yaml: bucket: must be 3–63 lower-case letters");
    expect(message).toContain("policyship.yaml: prefix: must not start with '/'");
    expect(message).toContain("policyship.yaml: unknown setting mystery");
  });

  it("names env variables and flags in their own spelling", async () => {
    const env = await resolveSettings({
      cwd: await dirWith(),
      env: { POLICYSHIP_OPTIMIZE: "lots" },
      flags: {},
    }).catch((e: Error) => e.message);
    expect(env).toContain("environment: POLICYSHIP_OPTIMIZE:");
    const flag = await resolveSettings({ cwd: await dirWith(), env: {}, flags: { prefix: "a/../b" } }).catch(
      (e: Error) => e.message,
    );
    expect(flag).toContain("flags: --prefix: must not contain '..'");
  });

  it("refuses a polling window whose max is below its min", async () => {
    await expect(
      resolveSettings({ cwd: await dirWith(), env: {}, flags: { pollingMin: 30, pollingMax: 10 } }),
    ).rejects.toThrow(/pollingMax \(10\) is below pollingMin \(30\)/);
  });

  it("spells env and flag names from setting keys", () => {
    expect(envName("forcePathStyle")).toBe("POLICYSHIP_FORCE_PATH_STYLE");
    expect(flagName("forcePathStyle")).toBe("--force-path-style");
  });
});

describe("--store", () => {
  const resolve = async (flags: Record<string, unknown>, files: Record<string, string> = {}) =>
    (await resolveSettings({ cwd: await dirWith(files), env: {}, flags })).settings;

  it("s3://bucket/prefix sets the bucket and prefix, and wins over a registry in the file", async () => {
    const settings = await resolve(
      { store: "s3://acme-policies/authz/v1" },
      { "policyship.yaml": "registry: ghcr.io/acme/p\n" },
    );
    expect(settings).toMatchObject({ bucket: "acme-policies", prefix: "authz/v1", registry: undefined });
  });

  it("oci://registry/repository sets the registry, and wins over a bucket or --to in the file", async () => {
    const settings = await resolve(
      { store: "oci://ghcr.io/acme/policies" },
      { "policyship.yaml": "bucket: acme-policies\nto: out\n" },
    );
    expect(settings).toMatchObject({
      registry: "oci://ghcr.io/acme/policies",
      bucket: undefined,
      to: undefined,
    });
  });

  it("an invalid bucket inside s3:// is named, and a bucket beside a registry is ambiguous", async () => {
    await expect(resolve({ store: "s3://Bad_Bucket" })).rejects.toThrow(/--store: bucket: must be 3–63/);
    await expect(resolve({ bucket: "acme-policies", registry: "ghcr.io/acme/p" })).rejects.toThrow(
      /both bucket and registry are set/,
    );
  });
});
