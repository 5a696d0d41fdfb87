import { describe, expect, it } from "vitest";
import { UserError } from "../../src/errors.ts";
import { renderOpaConfig, s3Signing, serviceUrl } from "../../src/opa-config/render.ts";
import { DEFAULTS, type Settings } from "../../src/settings-schema.ts";
import { objectKey, revisionOfKey } from "../../src/store/store.ts";

const settings = (overrides: Partial<Settings> = {}): Settings =>
  ({ ...DEFAULTS, entrypoints: [], ignore: [], ...overrides }) as Settings;
const sha = "a".repeat(40);

describe("OPA configuration", () => {
  it("pins the bundle resource to <prefix><rev>.tar.gz and labels the revision", () => {
    const config = renderOpaConfig({
      revision: sha,
      settings: settings({ bucket: "acme", prefix: "authz" }),
      region: "eu-west-1",
    });
    expect(config).toMatchObject({
      labels: { "policyship-revision": sha },
      services: {
        bundles: {
          url: "https://acme.s3.eu-west-1.amazonaws.com",
          credentials: { s3_signing: { environment_credentials: {} } },
        },
      },
      bundles: {
        authz: {
          service: "bundles",
          resource: `authz/${sha}.tar.gz`,
          polling: { min_delay_seconds: 60, max_delay_seconds: 120 },
        },
      },
      status: { prometheus: true },
    });
    expect(config).not.toHaveProperty("keys");
    expect(config).not.toHaveProperty("decision_logs");
  });

  it("uses the regional AWS endpoint, path-style when asked, and <endpoint>/<bucket> for S3-compatibles", () => {
    expect(serviceUrl(settings({ bucket: "acme" }), "us-west-2")).toBe(
      "https://acme.s3.us-west-2.amazonaws.com",
    );
    expect(serviceUrl(settings({ bucket: "acme", forcePathStyle: true }), "us-west-2")).toBe(
      "https://s3.us-west-2.amazonaws.com/acme",
    );
    expect(serviceUrl(settings({ bucket: "acme", endpoint: "http://127.0.0.1:9000/" }), "us-east-1")).toBe(
      "http://127.0.0.1:9000/acme",
    );
    expect(serviceUrl(settings({ serviceUrl: "https://bundles.example.com/" }))).toBe(
      "https://bundles.example.com",
    );
    expect(() => serviceUrl(settings({ bucket: "acme" }))).toThrow(UserError);
    expect(() => serviceUrl(settings())).toThrow(/no bucket/);
  });

  it("maps each credentials mode to its s3_signing provider", () => {
    const arn = "arn:aws:iam::123456789012:role/opa";
    expect(s3Signing(settings({ credentials: "metadata", iamRole: "opa" }), "eu-west-1")).toEqual({
      metadata_credentials: { aws_region: "eu-west-1", iam_role: "opa" },
    });
    expect(s3Signing(settings({ credentials: "web-identity", roleArn: arn }), "eu-west-1")).toEqual({
      web_identity_credentials: {
        aws_region: "eu-west-1",
        iam_role_arn: arn,
        session_name: "policyship-opa",
      },
    });
    expect(s3Signing(settings({ credentials: "profile", profile: "prod" }), "eu-west-1")).toEqual({
      profile_credentials: { profile: "prod", aws_region: "eu-west-1" },
    });
    expect(s3Signing(settings({ credentials: "assume-role", roleArn: arn }), "eu-west-1")).toMatchObject({
      assume_role_credentials: { iam_role_arn: arn, aws_signing: { environment_credentials: {} } },
    });
    expect(s3Signing(settings({ credentials: "sso", profile: "dev" }))).toEqual({
      sso_credentials: { profile: "dev" },
    });
    expect(() => s3Signing(settings({ credentials: "assume-role" }), "eu-west-1")).toThrow(/--role-arn/);
    expect(s3Signing(settings({ serviceUrl: "https://b.example.com" }))).toBeUndefined();
  });

  it("writes keys and the bundle's keyid when signed, and console sinks when asked", () => {
    const config = renderOpaConfig({
      revision: sha,
      settings: settings({
        bucket: "acme",
        keyId: "release",
        decisionLogs: "console",
        status: "console",
        persist: true,
      }),
      region: "eu-west-1",
      verificationKey: "-----BEGIN PUBLIC KEY-----\n...",
    });
    expect(config).toMatchObject({
      keys: { release: { key: "-----BEGIN PUBLIC KEY-----\n...", algorithm: "RS256" } },
      bundles: { authz: { signing: { keyid: "release" }, persist: true } },
      decision_logs: { console: true },
      status: { console: true },
    });
    expect(() =>
      renderOpaConfig({
        revision: sha,
        settings: settings({ bucket: "acme" }),
        region: "x",
        verificationKey: "k",
      }),
    ).toThrow(/--key-id/);
  });
});

describe("object keys", () => {
  it("puts revisions under the prefix as a folder", () => {
    expect(objectKey("", sha)).toBe(`${sha}.tar.gz`);
    expect(objectKey("authz", sha)).toBe(`authz/${sha}.tar.gz`);
    expect(objectKey("authz/", sha)).toBe(`authz/${sha}.tar.gz`);
    expect(revisionOfKey("authz", `authz/${sha}.tar.gz`)).toBe(sha);
    expect(revisionOfKey("authz", `authz/nested/${sha}.tar.gz`)).toBeUndefined();
    expect(revisionOfKey("authz", `other/${sha}.tar.gz`)).toBeUndefined();
  });
});
