import { spawn } from "node:child_process";
import { UserError } from "../errors.ts";
import { dataRef, type Replayed } from "../impact/evaluate.ts";
import type { Opa } from "../opa/commands.ts";
import { childEnvironment } from "../opa/environment.ts";
import { OPA_TIMEOUT_MS } from "../opa/run.ts";
import { parseJson } from "../safe-json.ts";

/**
 * What one explanation may print: OPA's full trace carries the bindings of every step, so a large input
 * times a large policy can run to gigabytes. Past this it is refused rather than held.
 */
export const MAX_TRACE_BYTES = 256 * 1024 * 1024;

/** A rule whose body produced the queried value: where it is in the bundle, and how its head reads. */
export interface AppliedRule {
  /** The rule's head as written: `allow`, `deny`, `allow.admin`, `grants[role]`. */
  name: string;
  /** Bundle-relative, as the bundle names the file (never a directory of this machine). */
  file: string;
  row: number;
  /** The `default` rule: no other body of the rule succeeded. */
  default: boolean;
}

export interface Explanation {
  replayed: Replayed;
  rules: AppliedRule[];
}

/** What `opa eval --explain=full --format=json` prints: the result and OPA's trace events. */
interface TraceEvent {
  Op?: unknown;
  Node?: unknown;
  Location?: { file?: unknown; row?: unknown };
  QueryID?: unknown;
  ParentID?: unknown;
}

interface RuleNode {
  default?: unknown;
  head?: { ref?: unknown; name?: unknown };
}

/** One term of a rule head's ref, as OPA's JSON writes it (`{type, value}`). */
function refText(ref: unknown, fallback: unknown): string {
  if (!Array.isArray(ref) || ref.length === 0) return typeof fallback === "string" ? fallback : "?";
  return ref
    .map((term: { type?: unknown; value?: unknown }, index) => {
      if (index === 0) return String(term?.value);
      if (term?.type === "string" && typeof term.value === "string") {
        return /^[A-Za-z_][A-Za-z0-9_]*$/.test(term.value)
          ? `.${term.value}`
          : `[${JSON.stringify(term.value)}]`;
      }
      if (term?.type === "var") return `[${String(term.value)}]`;
      return `[${JSON.stringify(term?.value)}]`;
    })
    .join("");
}

/**
 * The rules that produced the value of the query, from OPA's own trace: a rule node (one with a head) that
 * was Entered and Exited for the query itself, that is whose ParentID is the query's QueryID. A body that
 * failed has no Exit; a rule that only helped (a helper the body called) has another parent; the default
 * rule is Entered and Exited when it is the one that applied. Coverage (`--coverage`) would not do: it marks
 * every expression evaluated, so the first lines of a body that then failed are covered too, and it cannot
 * tell which of several bodies gave the value. Trace semantics:
 * https://www.openpolicyagent.org/docs/policy-performance#profiling (topdown/trace.go: Enter, Exit, Eval,
 * Fail, Redo, each event with QueryID and ParentID).
 */
export function rulesOfTrace(events: unknown): AppliedRule[] {
  if (!Array.isArray(events) || events.length === 0) return [];
  const root = (events[0] as TraceEvent).QueryID;
  const rules = new Map<string, AppliedRule>();
  for (const event of events as TraceEvent[]) {
    if (event?.Op !== "Exit" || event.ParentID !== root || event.QueryID === root) continue;
    const node = event.Node as RuleNode | undefined;
    if (typeof node !== "object" || node === null || Array.isArray(node) || !node.head) continue;
    const file = typeof event.Location?.file === "string" ? event.Location.file.replace(/^\/+/, "") : "";
    const row = typeof event.Location?.row === "number" ? event.Location.row : 0;
    const key = `${file}:${row}`;
    if (!rules.has(key)) {
      rules.set(key, {
        name: refText(node.head.ref, node.head.name),
        file,
        row,
        default: node.default === true,
      });
    }
  }
  return [...rules.values()];
}

/**
 * One evaluation of `data.<rulePath>` for `input`, with the real opa as impact replays (offline
 * capabilities, an allow-listed environment, the input on stdin and never in a file), and OPA's full
 * explanation, from which the rules that produced the value are read.
 */
export function explainEvaluation(
  opa: Opa,
  bundle: string,
  rulePath: string,
  input: unknown,
  options: { capabilities: string; maxTraceBytes?: number },
): Promise<Explanation> {
  const maxBytes = options.maxTraceBytes ?? MAX_TRACE_BYTES;
  const args = [
    "eval",
    "--capabilities",
    options.capabilities,
    "--bundle",
    bundle,
    "--stdin-input",
    "--explain=full",
    "--format",
    "json",
    dataRef(rulePath),
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(opa.path, args, { env: childEnvironment(opa.env), stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    let refusal: UserError | undefined;
    const stop = (error: UserError) => {
      refusal ??= error;
      child.kill("SIGKILL");
    };
    const timer = setTimeout(
      () =>
        stop(
          new UserError(`opa eval did not finish within ${OPA_TIMEOUT_MS} ms`, "check the policy for a loop"),
        ),
      OPA_TIMEOUT_MS,
    );
    child.stdout.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        stop(
          new UserError(
            `opa's explanation of ${rulePath} for this input is over ${maxBytes} bytes`,
            "explain a smaller input (--input with the fields that matter), or a narrower --path",
          ),
        );
        return;
      }
      out.push(chunk);
    });
    child.stderr.on("data", (chunk: Buffer) => {
      if (err.length < 64) err.push(chunk);
    });
    child.on("error", reject);
    child.stdin.on("error", () => {});
    child.on("close", (code) => {
      clearTimeout(timer);
      if (refusal) {
        reject(refusal);
        return;
      }
      let parsed: {
        result?: { expressions?: { value?: unknown }[] }[];
        explanation?: unknown;
        errors?: { message?: unknown; code?: unknown }[];
      };
      try {
        parsed = parseJson(Buffer.concat(out).toString("utf8")) as typeof parsed;
      } catch {
        const line = Buffer.concat(err).toString("utf8").trim().split("\n")[0];
        resolve({
          replayed: { defined: false, result: undefined, error: line || `opa eval exited ${code}` },
          rules: [],
        });
        return;
      }
      const first = parsed.errors?.[0];
      if (code !== 0 || first) {
        const message = typeof first?.message === "string" ? first.message : `opa eval exited ${code}`;
        // A compile error is the bundle's or the path's, not this input's: nothing to explain.
        if (typeof first?.code === "string" && first.code.startsWith("rego_")) {
          reject(
            new UserError(`opa cannot evaluate ${rulePath}: ${message}`, "check --path and the revision"),
          );
          return;
        }
        resolve({ replayed: { defined: false, result: undefined, error: message }, rules: [] });
        return;
      }
      const expression = parsed.result?.[0]?.expressions?.[0];
      const replayed: Replayed =
        expression && Object.hasOwn(expression, "value")
          ? { defined: true, result: expression.value }
          : { defined: false, result: undefined };
      resolve({ replayed, rules: replayed.defined ? rulesOfTrace(parsed.explanation) : [] });
    });
    child.stdin.end(JSON.stringify(input ?? null));
  });
}
