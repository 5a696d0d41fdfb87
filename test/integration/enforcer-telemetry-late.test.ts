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
import { afterEach, describe, expect, it } from "vitest";
import { createEnforcer } from "../../src/enforcer/index.ts";
import { useConformanceEngines } from "../helpers/enforcer-apps.ts";

// With the OpenTelemetry API installed and no SDK, the enforcer builds no span and no event; an SDK
// registered later, as an app that sets up tracing after creating its enforcer does, still gets every
// decision from then on.
const optionsFor = useConformanceEngines("otel-late-1");
const input = { request: { http: { method: "GET", path: "/bool-allow", headers: {}, querystring: {} } } };

afterEach(() => {
  trace.disable();
  metrics.disable();
});

describe("an OpenTelemetry SDK registered after the enforcer", () => {
  it("gets the spans of the decisions made once it is registered, cache hits included", async () => {
    const enforcer = createEnforcer(optionsFor("embedded", { cache: { max: 10, ttlMs: 60_000 } }));
    await enforcer.ready();
    const before = await enforcer.decide(input);
    const spans = new InMemorySpanExporter();
    trace.setGlobalTracerProvider(
      new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }),
    );
    const after = await enforcer.decide(input);
    await enforcer.close();
    const ids = spans.getFinishedSpans().map((span) => span.attributes["policyship.decision_id"]);
    expect(after.cached).toBe(true);
    expect(ids).toEqual([after.decisionId]);
    expect(ids).not.toContain(before.decisionId);
  });

  it("gets the metrics of the decisions made once a meter provider alone is registered", async () => {
    const enforcer = createEnforcer(optionsFor("remote"));
    await enforcer.ready();
    await enforcer.decide(input);
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
    await enforcer.decide(input);
    await enforcer.decide(input);
    await enforcer.close();
    await reader.forceFlush();
    const counted = exporter
      .getMetrics()
      .flatMap((resource) => resource.scopeMetrics.flatMap((scope) => scope.metrics))
      .filter((metric) => metric.descriptor.name === "policyship.decisions")
      .flatMap((metric) => metric.dataPoints as { value: unknown }[])
      .reduce((sum, point) => sum + (point.value as number), 0);
    expect(counted).toBe(2);
  });
});
