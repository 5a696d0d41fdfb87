import { describe, expect, it } from "vitest";
import { credentialHelperEnvironment, opaEnvironment } from "../../src/opa/environment.ts";
import { readFlags } from "../../src/settings.ts";
import { isCredentialEnv } from "../../src/settings-schema.ts";

const PROXY = "http://user:proxy-password@proxy.example:3128";
const PARENT = {
  PATH: "/usr/bin",
  HTTPS_PROXY: PROXY,
  HTTP_PROXY: PROXY,
  ALL_PROXY: PROXY,
  https_proxy: PROXY,
  http_proxy: PROXY,
  NO_PROXY: "internal",
  no_proxy: "internal",
};

describe("opa never sees the proxy settings, the credential helpers do", () => {
  it("opa's environment holds no proxy variable, even one named in opaEnv", () => {
    const env = opaEnvironment(PARENT, ["HTTPS_PROXY", "no_proxy", "Http_Proxy"]);
    expect({ ...env }).toEqual({ PATH: "/usr/bin" });
  });

  it("a docker credential helper still gets them: it reaches the registry's auth service", () => {
    expect({ ...credentialHelperEnvironment(PARENT) }).toEqual(PARENT);
  });

  it("opaEnv refuses a proxy that can carry a password, in either case", () => {
    for (const name of ["HTTPS_PROXY", "http_proxy", "ALL_PROXY", "FTP_PROXY"]) {
      expect(isCredentialEnv(name), name).toBe(true);
    }
    expect(() => readFlags({ opaEnv: ["https_proxy"] })).toThrow(
      /--opa-env: https_proxy holds or leads to credentials/,
    );
  });
});
