import diagnosticsChannel from "node:diagnostics_channel";
import { metrics, trace } from "@opentelemetry/api";
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from "@opentelemetry/sdk-metrics";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { describe, expect, it } from "vitest";
import { createEnforcer, type DecisionEvent } from "../../src/enforcer/index.ts";
import {
  ADAPTERS,
  ENGINES,
  type Handled,
  startAdapterApp,
  useConformanceEngines,
} from "../helpers/enforcer-apps.ts";

// The real OpenTelemetry SDK, with its in-memory exporters, registered as a user's app would.
const spans = new InMemorySpanExporter();
const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
const reader = new PeriodicExportingMetricReader({
  exporter: metricExporter,
  exportIntervalMillis: 3_600_000,
});
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }));
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));

const optionsFor = useConformanceEngines("otel-1");

const attributesOf = (decisionId: string) =>
  spans.getFinishedSpans().find((span) => span.attributes["policyship.decision_id"] === decisionId)
    ?.attributes;

describe("a span per decision, and the decision id everywhere", () => {
  for (const engine of ENGINES) {
    for (const adapter of ADAPTERS) {
      it(`${adapter}, ${engine}: span attributes, the handler's decisionId, onDecision and diagnostics_channel agree`, async () => {
        const events: DecisionEvent[] = [];
        const published: DecisionEvent[] = [];
        const listener = (message: unknown) => published.push(message as DecisionEvent);
        diagnosticsChannel.subscribe("policyship:decision", listener);
        const enforcer = createEnforcer(optionsFor(engine, { onDecision: (event) => events.push(event) }));
        await enforcer.ready();
        const app = await startAdapterApp(adapter, enforcer);
        try {
          const allowed = (await (
            await fetch(`${app.url}/object-allow`, { headers: { "x-api-key": "alice-key" } })
          ).json()) as Handled;
          expect(allowed.authz).toMatchObject({
            allow: true,
            status: 200,
            revision: "otel-1",
            cached: false,
            engine,
          });
          expect(allowed.authz?.headers).toEqual({ "x-user": "alice" });
          const id = allowed.authz?.decisionId as string;
          expect(id).toMatch(/^[0-9a-f-]{36}$/);
          expect(events.at(-1)?.decisionId).toBe(id);
          expect(published.at(-1)?.decisionId).toBe(id);
          expect(attributesOf(id)).toMatchObject({
            "policyship.outcome": "allow",
            "policyship.engine": engine,
            "policyship.revision": "otel-1",
            "policyship.cache_hit": false,
          });
          expect((await fetch(`${app.url}/bool-deny`)).status).toBe(403);
          expect(attributesOf(events.at(-1)?.decisionId as string)).toMatchObject({
            "policyship.outcome": "deny",
          });
          expect((await fetch(`${app.url}/undefined`)).status).toBe(500);
          expect(attributesOf(events.at(-1)?.decisionId as string)).toMatchObject({
            "policyship.outcome": "error",
          });
          expect(published).toHaveLength(3);
        } finally {
          diagnosticsChannel.unsubscribe("policyship:decision", listener);
          await app.close();
          await enforcer.close();
        }
      });
    }
  }
});

describe("metrics: a latency histogram and counters by outcome", () => {
  it("counts allow, deny, error, audited and cache hits, and records every decision's latency", async () => {
    metricExporter.reset();
    const input = (path: string) => ({
      request: { http: { method: "GET", path, headers: {}, querystring: {} } },
    });
    const cached = createEnforcer(optionsFor("embedded", { cache: { max: 10, ttlMs: 60_000 } }));
    const audited = createEnforcer(optionsFor("remote", { mode: "audit" }));
    await Promise.all([cached.ready(), audited.ready()]);
    for (let i = 0; i < 3; i++) await cached.decide(input("/bool-allow"));
    await audited.decide(input("/bool-deny"));
    await audited.decide(input("/undefined"));
    await Promise.all([cached.close(), audited.close()]);
    await reader.forceFlush();
    const all = metricExporter
      .getMetrics()
      .flatMap((resource) => resource.scopeMetrics.flatMap((scope) => scope.metrics));
    const latest = (name: string) => all.filter((metric) => metric.descriptor.name === name).at(-1);
    const counter = latest("policyship.decisions");
    const count = (match: Record<string, unknown>) =>
      (counter?.dataPoints ?? [])
        .filter((point) => Object.entries(match).every(([key, value]) => point.attributes[key] === value))
        .reduce((sum, point) => sum + (point.value as number), 0);
    expect(count({ "policyship.outcome": "allow", "policyship.cache_hit": true })).toBeGreaterThanOrEqual(2);
    expect(count({ "policyship.outcome": "deny", "policyship.audited": true })).toBeGreaterThanOrEqual(1);
    expect(count({ "policyship.outcome": "error", "policyship.audited": true })).toBeGreaterThanOrEqual(1);
    const histogram = latest("policyship.decision.duration");
    expect(histogram?.descriptor.unit).toBe("ms");
    const observed = (histogram?.dataPoints ?? []).reduce(
      (sum, point) => sum + (point.value as { count: number }).count,
      0,
    );
    expect(observed).toBeGreaterThanOrEqual(5);
  });

  it("telemetry: false emits no spans", async () => {
    const enforcer = createEnforcer(optionsFor("embedded", { telemetry: false }));
    await enforcer.ready();
    const decision = await enforcer.decide({
      request: { http: { path: "/bool-allow", headers: {}, querystring: {} } },
    });
    expect(attributesOf(decision.decisionId as string)).toBeUndefined();
    await enforcer.close();
  });
});
