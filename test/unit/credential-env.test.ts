import { describe, expect, it } from "vitest";
import { readEnv, readFlags } from "../../src/settings.ts";
import { isCredentialEnv } from "../../src/settings-schema.ts";

describe("opaEnv never hands opa a credential", () => {
  it("refuses the cloud, CI and registry credentials by family and by what their names say", () => {
    const refused = [
      "AWS_SECRET_ACCESS_KEY",
      "AWS_SESSION_TOKEN",
      "AWS_WEB_IDENTITY_TOKEN_FILE",
      "AWS_CONTAINER_CREDENTIALS_FULL_URI",
      "aws_access_key_id",
      "GITHUB_TOKEN",
      "GH_TOKEN",
      "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
      "ACTIONS_ID_TOKEN_REQUEST_URL",
      "ACTIONS_RUNTIME_TOKEN",
      "AZURE_CLIENT_SECRET",
      "GOOGLE_APPLICATION_CREDENTIALS",
      "POLICYSHIP_OPA_TOKEN",
      "POLICYSHIP_VERIFICATION_KEY",
      "OPA_VERIFICATION_KEY",
      "NPM_TOKEN",
      "NODE_AUTH_TOKEN",
      "DOCKER_AUTH_CONFIG",
      "DB_PASSWORD",
      "STRIPE_API_KEY",
      "VAULT_ADDR",
      "SSH_AUTH_SOCK",
      "KUBECONFIG",
    ];
    for (const name of refused) expect(isCredentialEnv(name), name).toBe(true);
    for (const name of ["EXTRA_ALLOWED", "LANG", "FEATURE_FLAGS", "TENANT", "KEYBOARD", "MONKEY"]) {
      expect(isCredentialEnv(name), name).toBe(false);
    }
  });

  it("names the variable and the source, as a flag, an environment variable or a file key", () => {
    expect(() => readFlags({ opaEnv: ["TENANT", "AWS_SESSION_TOKEN"] })).toThrow(
      /^invalid settings: flags: --opa-env: AWS_SESSION_TOKEN holds or leads to credentials/,
    );
    expect(() => readEnv({ POLICYSHIP_OPA_ENV: "ACTIONS_RUNTIME_TOKEN" })).toThrow(
      /environment: POLICYSHIP_OPA_ENV: ACTIONS_RUNTIME_TOKEN holds or leads to credentials/,
    );
    expect(readFlags({ opaEnv: ["TENANT"] }).opaEnv).toEqual(["TENANT"]);
  });
});
