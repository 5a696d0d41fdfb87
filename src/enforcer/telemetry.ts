// A namespace import: a default import would need esModuleInterop in apps that compile to CommonJS.
import * as diagnosticsChannel from "node:diagnostics_channel";
import type { DecisionEvent } from "./enforcer.ts";

/** Subscribers (e.g. `diagnostics_channel.subscribe("policyship:decision", …)`) get every DecisionEvent. */
export const decisionChannel = diagnosticsChannel.channel("policyship:decision");

/** Subscribers get each evaluated shadow sample, as onShadow does (a ShadowEvent). */
export const shadowChannel = diagnosticsChannel.channel("policyship:shadow");

type OtelApi = typeof import("@opentelemetry/api");

type Meter = ReturnType<OtelApi["metrics"]["getMeter"]>;

interface Instruments {
  /** The global meter provider these were made from: the metrics API has no proxy, so they follow it. */
  provider: ReturnType<OtelApi["metrics"]["getMeterProvider"]>;
  duration: ReturnType<Meter["createHistogram"]>;
  decisions: ReturnType<Meter["createCounter"]>;
  shadow: ReturnType<Meter["createCounter"]>;
  /** The API's own no-op instruments: no meter provider is registered, so nothing would be recorded. */
  noop: boolean;
}

const SCOPE = "policyship/enforcer";

/**
 * OpenTelemetry when `@opentelemetry/api` is installed (an optional peer dependency): a span per decision,
 * a histogram of decision latency and a counter by outcome. The API's no-op implementations stand in until an
 * SDK is registered, and the global proxies pick the SDK up whenever it is.
 */
export class Telemetry {
  private api: OtelApi | undefined;
  private tracer: ReturnType<OtelApi["trace"]["getTracer"]> | undefined;
  private instruments: Instruments | undefined;
  /** What the API hands out while no SDK is registered, to tell "no-op" apart per decision. */
  private noopTracerProvider: unknown;
  private noopHistogram: unknown;
  readonly loaded: Promise<void>;

  constructor(enabled: boolean) {
    this.loaded = enabled ? this.load() : Promise.resolve();
  }

  private async load() {
    try {
      this.api = await import("@opentelemetry/api");
    } catch {
      return; // not installed: diagnostics_channel only
    }
    // A ProxyTracer: it delegates to whichever SDK registers, before or after this.
    this.tracer = this.api.trace.getTracer(SCOPE);
    // A proxy with no delegate answers with the API's no-op provider; the no-op meter with its no-op histogram.
    this.noopTracerProvider = new this.api.ProxyTracerProvider().getDelegate();
    this.noopHistogram = this.api.createNoopMeter().createHistogram("policyship.noop");
  }

  /**
   * Whether OpenTelemetry would keep anything: a tracer provider or a meter provider registered (now or since
   * the last decision). The API alone builds non-recording spans and drops measurements, at about a
   * microsecond and a half per decision (docs/perf/P7.md), so then no event is built for it.
   */
  private recording(api: OtelApi): boolean {
    const provider = api.trace.getTracerProvider();
    const tracerProvider = provider instanceof api.ProxyTracerProvider ? provider.getDelegate() : provider;
    return tracerProvider !== this.noopTracerProvider || !this.metricInstruments(api).noop;
  }

  private metricInstruments(api: OtelApi): Instruments {
    const provider = api.metrics.getMeterProvider();
    if (this.instruments?.provider !== provider) {
      const meter = provider.getMeter(SCOPE);
      this.instruments = {
        provider,
        duration: meter.createHistogram("policyship.decision.duration", {
          description: "Time to reach an authorization decision",
          unit: "ms",
        }),
        decisions: meter.createCounter("policyship.decisions", {
          description: "Authorization decisions by outcome",
        }),
        shadow: meter.createCounter("policyship.shadow.decisions", {
          description: "Shadow candidate decisions, by whether and how they differ from the enforced one",
        }),
        noop: false,
      };
      this.instruments.noop = this.instruments.duration === this.noopHistogram;
    }
    return this.instruments;
  }

  /** Whether anything would receive an event: a channel subscriber, or an OpenTelemetry SDK. */
  listening(): boolean {
    if (decisionChannel.hasSubscribers) return true;
    const { api } = this;
    return api !== undefined && this.tracer !== undefined && this.recording(api);
  }

  recordShadow(differs: boolean, flip: string) {
    const { api } = this;
    if (!api) return;
    this.metricInstruments(api).shadow.add(1, { differs, flip });
  }

  record(event: DecisionEvent) {
    const startedAt = event.decidedAt;
    if (decisionChannel.hasSubscribers) decisionChannel.publish(event);
    const { api, tracer } = this;
    if (!api || !tracer || !this.recording(api)) return;
    const instruments = this.metricInstruments(api);
    const outcome = event.would;
    const attributes = {
      "policyship.outcome": outcome,
      "policyship.engine": event.engine,
      "policyship.cache_hit": event.cached,
      "policyship.audited": event.audited,
      "policyship.fail_open": event.failOpen,
    };
    const span = tracer.startSpan("policyship.decision", {
      startTime: startedAt,
      // Object.assign rather than spread, which V8 builds through a slow path (see enforcer.ts).
      attributes: Object.assign({}, attributes, {
        "policyship.revision": event.revision ?? "",
        "policyship.decision_id": event.decisionId,
        "policyship.status": event.decision.status,
      }),
    });
    if (outcome === "error") {
      span.setStatus({ code: api.SpanStatusCode.ERROR, message: event.decision.error });
    }
    span.end(startedAt + event.durationMs);
    instruments.duration.record(event.durationMs, {
      "policyship.outcome": outcome,
      "policyship.engine": event.engine,
    });
    instruments.decisions.add(1, attributes);
  }
}
