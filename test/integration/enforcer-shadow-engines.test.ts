import { mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { ShadowEvent } from "../../src/enforcer/index.ts";
import { createEnforcer, type EnforcerOptions } from "../../src/enforcer/index.ts";
import type { AdapterName } from "../helpers/enforcer-apps.ts";
import {
  CLOSED_BY_B,
  PATHS,
  REVISION_A,
  REVISION_B,
  readLogLines,
  requestEach,
  SHADOW_ENTRYPOINT,
  STATUS_UNDER_A,
  useShadowPolicies,
} from "../helpers/shadow-fixtures.ts";

const policies = useShadowPolicies();

type EngineName = "remote" | "embedded";

/** Enforced A on one engine, candidate B on another; every pair but remote/remote (enforcer-shadow.test.ts). */
const PAIRS: { enforced: EngineName; candidate: EngineName; adapter: AdapterName }[] = [
  { enforced: "embedded", candidate: "embedded", adapter: "express" },
  { enforced: "remote", candidate: "embedded", adapter: "fastify" },
  { enforced: "embedded", candidate: "remote", adapter: "node:http" },
];

function optionsOf(enforced: EngineName, candidate: EngineName, extra: Partial<EnforcerOptions>) {
  const { a, b } = policies();
  return {
    ...(enforced === "remote"
      ? { opa: { url: a.opa.url, path: SHADOW_ENTRYPOINT } }
      : { bundle: a.wasm, entrypoint: SHADOW_ENTRYPOINT, workers: 1 }),
    shadow:
      candidate === "remote"
        ? { opa: { url: b.opa.url, path: SHADOW_ENTRYPOINT } }
        : { bundle: b.wasm, entrypoint: SHADOW_ENTRYPOINT, workers: 1 },
    // A first embedded decision on a busy two-core runner may wait for its workers.
    timeoutMs: 10_000,
    log: () => {},
    ...extra,
  } as EnforcerOptions;
}

describe("shadow candidates on either engine", () => {
  for (const { enforced, candidate, adapter } of PAIRS) {
    it(`${enforced} enforced, ${candidate} candidate (${adapter}): responses follow A, the differences are B's closed paths`, async () => {
      const file = path.join(await mkdtemp(path.join(os.tmpdir(), "policyship-shadow-")), "decisions.ndjson");
      const events: ShadowEvent[] = [];
      const enforcer = createEnforcer(
        optionsOf(enforced, candidate, { decisionLog: file, onShadow: (event) => events.push(event) }),
      );
      await enforcer.ready();
      let answers: Awaited<ReturnType<typeof requestEach>>;
      try {
        answers = await requestEach(adapter, enforcer, PATHS);
      } finally {
        await enforcer.close();
      }
      for (const answer of answers) {
        expect(answer.status, answer.path).toBe(STATUS_UNDER_A[answer.path]);
        if (answer.status === 200) expect(answer.revision).toBe(REVISION_A);
      }
      const pathOf = (event: ShadowEvent) =>
        (event.input as { request: { http: { path: string } } }).request.http.path;
      expect(
        events
          .filter((event) => event.differs)
          .map(pathOf)
          .sort(),
      ).toEqual([...CLOSED_BY_B].sort());
      for (const event of events) {
        expect(event.enforced.revision).toBe(REVISION_A);
        expect(event.shadow.revision).toBe(REVISION_B);
      }
      expect(enforcer.shadowStats()).toEqual({ evaluated: 5, differed: 2, dropped: 0, errors: 0 });
      const lines = await readLogLines(file);
      expect(lines).toHaveLength(PATHS.length);
      for (const line of lines) {
        const closed = CLOSED_BY_B.includes(line.input.request.http.path);
        expect(line.custom.policyship.shadow).toMatchObject({
          revision: REVISION_B,
          differs: closed,
          flip: closed ? "allow_to_deny" : "none",
          engine: candidate,
        });
      }
    });
  }

  it("a decision never waits for an embedded candidate to load, even before ready()", async () => {
    const { a, b } = policies();
    const events: ShadowEvent[] = [];
    const enforcer = createEnforcer({
      opa: { url: a.opa.url, path: SHADOW_ENTRYPOINT },
      shadow: { bundle: b.wasm, entrypoint: SHADOW_ENTRYPOINT, workers: 2, timeoutMs: 30_000 },
      onShadow: (event) => events.push(event),
      // Far less than starting worker threads and compiling the candidate's wasm takes.
      timeoutMs: 150,
      log: () => {},
    });
    try {
      const decision = await enforcer.decide({ request: { http: { path: "/admin" } } });
      expect(decision).toMatchObject({ allow: true, status: 200, revision: REVISION_A });
      expect(decision.error).toBeUndefined();
    } finally {
      await enforcer.close();
    }
    expect(events).toEqual([expect.objectContaining({ differs: true, flip: "allow_to_deny" })]);
  });

  it("an embedded candidate that fails to load only counts errors; the enforced decisions go on", async () => {
    const { a } = policies();
    const events: ShadowEvent[] = [];
    const enforcer = createEnforcer({
      opa: { url: a.opa.url, path: SHADOW_ENTRYPOINT },
      shadow: { bundle: path.join(os.tmpdir(), "no-such-bundle.tar.gz"), entrypoint: SHADOW_ENTRYPOINT },
      onShadow: (event) => events.push(event),
      timeoutMs: 10_000,
      log: () => {},
    });
    await enforcer.ready();
    let answers: Awaited<ReturnType<typeof requestEach>>;
    try {
      answers = await requestEach("express", enforcer, ["/public", "/secret"]);
    } finally {
      await enforcer.close();
    }
    expect(answers.map((answer) => answer.status)).toEqual([200, 403]);
    // One for the load, one for each sample it could not evaluate.
    expect(enforcer.shadowStats()).toEqual({ evaluated: 2, differed: 2, dropped: 0, errors: 3 });
    expect(events.map((event) => event.flip)).toEqual(["to_error", "to_error"]);
  });
});
