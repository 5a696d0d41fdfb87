import diagnosticsChannel from "node:diagnostics_channel";
import { mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { metrics } from "@opentelemetry/api";
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from "@opentelemetry/sdk-metrics";
import { describe, expect, it } from "vitest";
import type { ShadowEvent } from "../../src/enforcer/index.ts";
import { createEnforcer, type EnforcerOptions } from "../../src/enforcer/index.ts";
import { ADAPTERS } from "../helpers/enforcer-apps.ts";
import { startOpaServer } from "../helpers/opa-server.ts";
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

// The real OpenTelemetry metrics SDK, registered as an app would.
const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
const reader = new PeriodicExportingMetricReader({
  exporter: metricExporter,
  exportIntervalMillis: 3_600_000,
});
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));

const policies = useShadowPolicies();

const logFile = async () =>
  path.join(await mkdtemp(path.join(os.tmpdir(), "policyship-shadow-")), "decisions.ndjson");

function remoteOptions(extra: Partial<EnforcerOptions> = {}): EnforcerOptions {
  const { a, b } = policies();
  return {
    opa: { url: a.opa.url, path: SHADOW_ENTRYPOINT },
    shadow: { opa: { url: b.opa.url, path: SHADOW_ENTRYPOINT } },
    timeoutMs: 10_000,
    log: () => {},
    ...extra,
  };
}

describe("a remote candidate in shadow", () => {
  for (const adapter of ADAPTERS) {
    it(`${adapter}: responses follow the enforced revision; onShadow and the log name exactly the paths B closes`, async () => {
      const file = await logFile();
      const events: ShadowEvent[] = [];
      const enforcer = createEnforcer(
        remoteOptions({ decisionLog: file, onShadow: (event) => events.push(event) }),
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
      expect(events).toHaveLength(PATHS.length);
      const pathOf = (event: ShadowEvent) =>
        (event.input as { request: { http: { path: string } } }).request.http.path;
      expect(
        events
          .filter((event) => event.differs)
          .map(pathOf)
          .sort(),
      ).toEqual([...CLOSED_BY_B].sort());
      const admin = events.find((event) => pathOf(event) === "/admin") as ShadowEvent;
      expect(admin).toMatchObject({
        enforced: { allow: true, status: 200, revision: REVISION_A },
        shadow: { allow: false, status: 403, revision: REVISION_B },
        differs: true,
        flip: "allow_to_deny",
      });
      expect(enforcer.shadowStats()).toEqual({ evaluated: 5, differed: 2, dropped: 0, errors: 0 });

      const lines = await readLogLines(file);
      expect(lines).toHaveLength(PATHS.length);
      for (const line of lines) {
        const event = events.find((candidate) => candidate.decisionId === line.decision_id);
        expect(event, line.input.request.http.path).toBeDefined();
        const closed = CLOSED_BY_B.includes(line.input.request.http.path);
        expect(line.bundles).toEqual({ authz: { revision: REVISION_A } });
        expect(line.custom.policyship.shadow).toEqual(
          closed
            ? {
                revision: REVISION_B,
                allow: false,
                status: 403,
                headers: {},
                message: "unauthorized",
                differs: true,
                flip: "allow_to_deny",
                engine: "remote",
              }
            : expect.objectContaining({
                revision: REVISION_B,
                differs: false,
                flip: "none",
                engine: "remote",
              }),
        );
      }
    });
  }

  it("with the candidate's OPA stopped, responses are unchanged and timely; its failures are counted and logged", async () => {
    const { b } = policies();
    const gone = await startOpaServer(["--bundle", b.rego]);
    await gone.stop();
    const file = await logFile();
    const enforcer = createEnforcer(
      remoteOptions({
        timeoutMs: 2_000,
        decisionLog: file,
        shadow: { opa: { url: gone.url, path: SHADOW_ENTRYPOINT } },
      }),
    );
    await enforcer.ready();
    let answers: Awaited<ReturnType<typeof requestEach>>;
    try {
      answers = await requestEach("express", enforcer, PATHS);
    } finally {
      await enforcer.close();
    }
    for (const answer of answers) {
      expect(answer.status, answer.path).toBe(STATUS_UNDER_A[answer.path]);
      expect(answer.ms).toBeLessThan(2_000);
    }
    expect(enforcer.shadowStats()).toMatchObject({ evaluated: 5, differed: 5, errors: 5, dropped: 0 });
    const lines = await readLogLines(file);
    expect(lines).toHaveLength(5);
    for (const line of lines) {
      expect(line.custom.policyship.shadow).toMatchObject({
        revision: null,
        allow: null,
        status: null,
        differs: true,
        flip: "to_error",
        engine: "remote",
        error: expect.stringContaining("OPA request failed"),
      });
    }
  });

  it("the decision log's /result masks erase the candidate's headers and message too", async () => {
    const file = await logFile();
    const enforcer = createEnforcer(
      remoteOptions({ decisionLog: { sink: file, mask: ["/result/headers/x-user", "/result/message"] } }),
    );
    await enforcer.ready();
    try {
      await enforcer.decide({ request: { http: { path: "/whoami" } } });
      await enforcer.decide({ request: { http: { path: "/admin" } } });
    } finally {
      await enforcer.close();
    }
    // Lines come in the order their candidates settle, not the order of the decisions.
    const lines = await readLogLines(file);
    const whoami = lines.find((line) => line.input.request.http.path === "/whoami");
    const admin = lines.find((line) => line.input.request.http.path === "/admin");
    expect(whoami?.custom.policyship.shadow).toEqual({
      revision: REVISION_B,
      allow: true,
      status: 200,
      headers: { "x-team": "core" },
      differs: true,
      flip: "other",
      engine: "remote",
    });
    expect(admin?.custom.policyship.shadow).toMatchObject({ allow: false, status: 403, headers: {} });
    expect(admin?.custom.policyship.shadow).not.toHaveProperty("message");
  });

  it("an onShadow that throws is counted and never reaches the app", async () => {
    const enforcer = createEnforcer(
      remoteOptions({
        onShadow: () => {
          throw new Error("hook failed");
        },
      }),
    );
    await enforcer.ready();
    let answers: Awaited<ReturnType<typeof requestEach>>;
    try {
      answers = await requestEach("fastify", enforcer, ["/public", "/admin"]);
    } finally {
      await enforcer.close();
    }
    expect(answers.map((answer) => answer.status)).toEqual([200, 200]);
    expect(enforcer.shadowStats()).toEqual({ evaluated: 2, differed: 1, dropped: 0, errors: 2 });
  });

  it("expectedRevision binds the enforced engine only; the candidate reports its own revision", async () => {
    const events: ShadowEvent[] = [];
    const enforcer = createEnforcer(
      remoteOptions({ expectedRevision: REVISION_A, onShadow: (event) => events.push(event) }),
    );
    await enforcer.ready();
    try {
      const decision = await enforcer.decide({ request: { http: { path: "/public" } } });
      expect(decision).toMatchObject({ allow: true, status: 200, revision: REVISION_A });
    } finally {
      await enforcer.close();
    }
    expect(events).toEqual([
      expect.objectContaining({
        shadow: { allow: true, status: 200, revision: REVISION_B },
        differs: false,
        flip: "none",
      }),
    ]);
  });

  it("a cache hit is shadowed too: the candidate has no cache", async () => {
    const events: ShadowEvent[] = [];
    const enforcer = createEnforcer(
      remoteOptions({ cache: { max: 100, ttlMs: 60_000 }, onShadow: (event) => events.push(event) }),
    );
    await enforcer.ready();
    try {
      const first = await enforcer.decide({ request: { http: { path: "/admin" } } });
      const second = await enforcer.decide({ request: { http: { path: "/admin" } } });
      expect(first.cached).toBe(false);
      expect(second.cached).toBe(true);
    } finally {
      await enforcer.close();
    }
    expect(events.map((event) => event.differs)).toEqual([true, true]);
  });

  it("publishes each sample on diagnostics_channel policyship:shadow and counts it in OpenTelemetry", async () => {
    const published: ShadowEvent[] = [];
    const listener = (message: unknown) => published.push(message as ShadowEvent);
    diagnosticsChannel.subscribe("policyship:shadow", listener);
    const enforcer = createEnforcer(remoteOptions());
    await enforcer.ready();
    try {
      await requestEach("node:http", enforcer, ["/public", "/admin", "/secret"]);
    } finally {
      await enforcer.close();
      diagnosticsChannel.unsubscribe("policyship:shadow", listener);
    }
    expect(published.map((event) => [event.differs, event.flip])).toEqual([
      [false, "none"],
      [true, "allow_to_deny"],
      [false, "none"],
    ]);
    await reader.forceFlush();
    const points = metricExporter
      .getMetrics()
      .flatMap((resource) => resource.scopeMetrics)
      .flatMap((scope) => scope.metrics)
      .filter((metric) => metric.descriptor.name === "policyship.shadow.decisions")
      .flatMap((metric) => metric.dataPoints as { attributes: Record<string, unknown>; value: unknown }[]);
    const count = (differs: boolean, flip: string) =>
      points
        .filter((point) => point.attributes.differs === differs && point.attributes.flip === flip)
        .reduce((sum, point) => sum + (point.value as number), 0);
    expect(count(true, "allow_to_deny")).toBeGreaterThanOrEqual(1);
    expect(count(false, "none")).toBeGreaterThanOrEqual(2);
  });
});
