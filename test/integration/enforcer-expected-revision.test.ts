import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEnforcer, type EnforcerOptions } from "../../src/enforcer/index.ts";
import { ENGINES, type EngineName } from "../helpers/enforcer-apps.ts";
import { buildBundles, CONFORMANCE_DIR, CONFORMANCE_ENTRYPOINT } from "../helpers/enforcer-fixtures.ts";
import { type RunningOpa, startOpaServer } from "../helpers/opa-server.ts";

/** A full 40-digit SHA as git names a commit: the revision `build` gives a bundle by default. */
const FULL_SHA = createHash("sha1").update("policyship expected revision").digest("hex");

const allowInput = {
  request: { http: { method: "GET", path: "/bool-allow", headers: {}, querystring: {} } },
  client_ip: "127.0.0.1",
};

let opa: RunningOpa;
let wasm: string;
beforeAll(async () => {
  const bundles = await buildBundles(CONFORMANCE_DIR, FULL_SHA, CONFORMANCE_ENTRYPOINT);
  wasm = bundles.wasm;
  opa = await startOpaServer(["--bundle", bundles.rego]);
});
afterAll(() => opa?.stop());

function optionsFor(engine: EngineName, expectedRevision: string): EnforcerOptions {
  return {
    ...(engine === "remote"
      ? { opa: { url: opa.url, path: CONFORMANCE_ENTRYPOINT } }
      : { bundle: wasm, entrypoint: CONFORMANCE_ENTRYPOINT }),
    expectedRevision,
    timeoutMs: 10_000,
    log: () => {},
  };
}

describe("expectedRevision is the full SHA, or createEnforcer says so", () => {
  for (const engine of ENGINES) {
    it(`${engine}: a short SHA is a TypeError at start-up, not a 503 on every request`, () => {
      for (const short of [FULL_SHA.slice(0, 7), FULL_SHA.slice(0, 12), FULL_SHA.slice(0, 39)]) {
        expect(() => createEnforcer(optionsFor(engine, short))).toThrow(TypeError);
        expect(() => createEnforcer(optionsFor(engine, short))).toThrow(
          new RegExp(`short commit SHA.*pass the full SHA \\(git rev-parse ${short}\\)`),
        );
      }
    });

    it(`${engine}: an upper-case full SHA is refused with the lower-case one to pass`, () => {
      expect(() => createEnforcer(optionsFor(engine, FULL_SHA.toUpperCase()))).toThrow(
        new RegExp(`upper-case SHA.*pass ${FULL_SHA}`),
      );
    });

    it(`${engine}: the full SHA decides, and names the revision that answered`, async () => {
      const enforcer = createEnforcer(optionsFor(engine, FULL_SHA));
      try {
        await enforcer.ready();
        expect(await enforcer.decide(allowInput)).toMatchObject({
          allow: true,
          status: 200,
          revision: FULL_SHA,
        });
      } finally {
        await enforcer.close();
      }
    });
  }

  it("a revision that is not a SHA (a release name) is compared as it is", async () => {
    for (const revision of ["1.4.2", "prod-1", "abc", "release-c4acbd7"]) {
      const enforcer = createEnforcer(optionsFor("remote", revision));
      expect(await enforcer.decide(allowInput)).toMatchObject({ status: 503, revision: FULL_SHA });
      await enforcer.close();
    }
  });
});
