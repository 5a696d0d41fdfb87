import { mkdtemp, readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { createEnforcer } from "../../src/enforcer/index.ts";
import { ENGINES, startAdapterApp, useConformanceEngines } from "../helpers/enforcer-apps.ts";

/** A credential the log erases from the headers is not left in the path or query of the same line. */

const optionsFor = useConformanceEngines("log-credentials-1");

describe("the decision log of a real enforcer", () => {
  for (const engine of ENGINES) {
    it(`${engine}: a bearer token and a Basic password sent in the path too are masked there`, async () => {
      const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-log-credentials-"));
      const file = path.join(dir, "decisions.ndjson");
      const enforcer = createEnforcer(optionsFor(engine, { decisionLog: file }));
      await enforcer.ready();
      const app = await startAdapterApp("node:http", enforcer);
      try {
        await fetch(`${app.url}/object-allow/SuperSecretTok?t=SuperSecretTok`, {
          headers: { authorization: "Bearer SuperSecretTok" },
        });
        await fetch(`${app.url}/u/hunter2`, {
          headers: { authorization: `Basic ${Buffer.from("alice:hunter2").toString("base64")}` },
        });
      } finally {
        await app.close();
        await enforcer.close();
      }
      const text = await readFile(file, "utf8");
      const lines = text
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line));
      expect(lines).toHaveLength(2);
      expect(text).not.toContain("SuperSecretTok");
      expect(text).not.toContain("hunter2");
      expect(lines[0].input.request.http.path).toBe("/object-allow/[masked]");
      expect(lines[1].input.request.http.path).toBe("/u/[masked]");
    });
  }
});
