import { readFile } from "node:fs/promises";
import type { LoadedPolicy } from "@open-policy-agent/opa-wasm";
import { readBundle } from "../bundle/read.ts";
import { type Engine, EngineError, type Evaluation } from "./engine.ts";

export interface EmbeddedOptions {
  /** A bundle built with `policyship build --target wasm --entrypoint <entrypoint>`. */
  bundle: string;
  entrypoint: string;
}

/** Turns what opa-wasm throws (strings and plain objects too) into a message. */
function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === "string") return error;
  if (error && typeof error === "object" && "message" in error)
    return String((error as { message: unknown }).message);
  return String(error);
}

/** Decisions in-process from the bundle's policy.wasm, with the bundle's data.json. */
export class EmbeddedEngine implements Engine {
  readonly kind = "embedded";
  private policy: LoadedPolicy | undefined;
  private bundleRevision: string | undefined;
  private loading: Promise<void> | undefined;
  private readonly entrypoint: string;

  constructor(private readonly options: EmbeddedOptions) {
    if (typeof options.bundle !== "string" || options.bundle === "") {
      throw new TypeError(`bundle must be the path of a wasm bundle, got ${JSON.stringify(options.bundle)}`);
    }
    if (typeof options.entrypoint !== "string" || options.entrypoint === "") {
      throw new TypeError(
        `entrypoint must be a rule path such as "authz/allow", got ${JSON.stringify(options.entrypoint)}`,
      );
    }
    this.entrypoint = options.entrypoint.replace(/^\/+|\/+$/g, "");
  }

  ready(): Promise<void> {
    this.loading ??= this.load();
    return this.loading;
  }

  private async load(): Promise<void> {
    const bytes = await readFile(this.options.bundle).catch((error: NodeJS.ErrnoException) => {
      throw new EngineError(`cannot read bundle ${this.options.bundle}: ${error.code ?? error.message}`);
    });
    const contents = await readBundle(bytes, ["policy.wasm", "data.json"]);
    const wasm = contents.kept.get("policy.wasm");
    if (!wasm) {
      throw new EngineError(
        `${this.options.bundle} has no policy.wasm; build it with --target wasm --entrypoint ${this.entrypoint}`,
      );
    }
    const { loadPolicy } = await import("@open-policy-agent/opa-wasm");
    try {
      this.policy = await loadPolicy(wasm);
    } catch (error) {
      throw new EngineError(`cannot load policy.wasm: ${messageOf(error)}`);
    }
    if (!Object.hasOwn(this.policy.entrypoints as object, this.entrypoint)) {
      const known = Object.keys(this.policy.entrypoints as object).join(", ");
      throw new EngineError(`entrypoint ${this.entrypoint} is not in the bundle (it has: ${known})`);
    }
    const data = contents.kept.get("data.json");
    this.policy.setData(data && data.length > 0 ? JSON.parse(data.toString("utf8")) : {});
    this.bundleRevision = contents.manifest.revision;
  }

  revision(): string | undefined {
    return this.bundleRevision;
  }

  async evaluate(input: unknown): Promise<Evaluation> {
    if (!this.policy) await this.ready();
    const policy = this.policy as LoadedPolicy;
    let resultSet: unknown;
    try {
      resultSet = policy.evaluate(input, this.entrypoint);
    } catch (error) {
      const message = messageOf(error);
      // A built-in the wasm SDK lacks surfaces here, named, instead of crashing the app.
      if (message.startsWith("not implemented")) {
        throw new EngineError(
          `the policy uses a built-in the embedded engine does not implement (${message})`,
        );
      }
      throw new EngineError(`policy evaluation failed: ${message}`);
    }
    if (!Array.isArray(resultSet) || resultSet.length === 0) return { defined: false, result: undefined };
    const first = resultSet[0] as { result?: unknown };
    return { defined: Object.hasOwn(first, "result"), result: first.result };
  }

  async close(): Promise<void> {
    this.policy = undefined;
  }
}
