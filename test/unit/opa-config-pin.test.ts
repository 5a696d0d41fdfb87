import { describe, expect, it } from "vitest";
import { renderOpaConfig } from "../../src/opa-config/render.ts";
import { DEFAULTS, type Settings } from "../../src/settings-schema.ts";

const settings = (overrides: Partial<Settings> = {}): Settings =>
  ({ ...DEFAULTS, entrypoints: [], ignore: [], ...overrides }) as Settings;
const sha = "b".repeat(40);
const resourceOf = (config: Record<string, unknown>) =>
  (config.bundles as Record<string, { resource: string }>).authz?.resource;

describe("an S3 config pinned to the object version that was verified", () => {
  it("names the version in the resource, which OPA signs and S3 answers with that version only", () => {
    const config = renderOpaConfig({
      revision: sha,
      settings: settings({ bucket: "acme", prefix: "authz" }),
      region: "eu-west-1",
      pin: "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
    });
    expect(resourceOf(config)).toBe(`authz/${sha}.tar.gz?versionId=3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY`);
    expect(config.services).toMatchObject({ bundles: { credentials: { s3_signing: {} } } });
  });

  it("names only the key without a pin, and through a --service-url that may drop the query", () => {
    const unpinned = renderOpaConfig({
      revision: sha,
      settings: settings({ bucket: "acme" }),
      region: "eu-west-1",
    });
    expect(resourceOf(unpinned)).toBe(`${sha}.tar.gz`);
    const served = renderOpaConfig({
      revision: sha,
      settings: settings({ bucket: "acme", serviceUrl: "https://bundles.example.com" }),
      region: "eu-west-1",
      pin: "v1",
    });
    expect(resourceOf(served)).toBe(`${sha}.tar.gz`);
  });

  it("refuses a version that would change the URL or reach OPA's environment", () => {
    for (const pin of ["a&b=c", "x$" + "{AWS_SECRET_ACCESS_KEY}", "a b", "a#b", ""]) {
      const render = () =>
        renderOpaConfig({ revision: sha, settings: settings({ bucket: "acme" }), region: "eu-west-1", pin });
      if (pin === "") expect(resourceOf(render())).toBe(`${sha}.tar.gz`);
      else expect(render).toThrow(/is not URL-safe/);
    }
  });
});
