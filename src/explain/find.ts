import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import type { Context } from "../context.ts";
import { jsonTextDeeperThan } from "../enforcer/input.ts";
import { FailureError, UserError } from "../errors.ts";
import type { RecordedDecision } from "../impact/decisions.ts";
import { LOG_LIMITS } from "../impact/log-lines.ts";
import { parseNullPrototypeJson } from "../impact/null-prototype-json.ts";
import { printable } from "../printable.ts";

/**
 * What a decision id may be: OPA's and the enforcer's are UUIDs; other producers use ids of letters,
 * digits, '.', '_', ':' and '-'. Never a pattern: the id is compared with each recorded one exactly.
 */
const DECISION_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/** A rule path as impact's --path is: slash-separated Rego names (a leading `data/` is OPA's root). */
const RULE_PATH = /^[A-Za-z_][\w-]*(\/[A-Za-z_][\w-]*)*$/;

export function assertDecisionId(id: string): string {
  if (DECISION_ID.test(id)) return id;
  throw new UserError(
    `decision id ${printable(JSON.stringify(id), 100)} is not one a decision log records`,
    "pass the decision_id of the logged event (1–128 characters of A-Z a-z 0-9 . _ : -)",
  );
}

/** `authz/allow` from `/authz/allow/`, `data/authz/allow` or `authz/allow`; anything else is refused. */
export function rulePathOf(raw: string, where: string): string {
  const rulePath = raw.replace(/^\/+|\/+$/g, "").replace(/^data\//, "");
  if (RULE_PATH.test(rulePath)) return rulePath;
  throw new UserError(
    `${where} ${printable(JSON.stringify(raw), 100)} is not a rule path`,
    "pass --path with a rule path such as authz/allow",
  );
}

/**
 * The recorded decision whose decision_id is `id`, streamed from the same sources impact reads (a file, a
 * directory, gzip, an s3:// prefix): reading stops at the first match that records an input, so the rest of a
 * large log is never downloaded or parsed. No match is a failure (exit 1): the logs were read, the decision is not in them.
 */
export async function findDecision(context: Context, source: string, id: string): Promise<RecordedDecision> {
  const [{ readDecisions, logsBucketOf }, { noneSkipped }] = await Promise.all([
    import("../impact/read-decisions.ts"),
    import("../impact/decisions.ts"),
  ]);
  const stats = { files: 0, skipped: noneSkipped() };
  let withoutInput: RecordedDecision | undefined;
  for await (const record of readDecisions(source, {
    cwd: context.cwd,
    stats,
    s3: logsBucketOf(context),
  })) {
    if (record.decisionId !== id) continue;
    // The first match with an input; one without (a bare id line) only if no other carries the id.
    if (record.input !== undefined) return record;
    withoutInput ??= record;
  }
  if (withoutInput) return withoutInput;
  throw new FailureError(
    `decision ${id} is not in ${printable(source)} (${stats.files} ${stats.files === 1 ? "file" : "files"} read)`,
    "check the decision id and pass the logs of the instance and day that made it",
  );
}

/** An input document from a file, bounded and parsed as a decision log line is (no prototype, depth-capped). */
export async function readInputFile(cwd: string, file: string): Promise<unknown> {
  const name = path.resolve(cwd, file);
  const info = await stat(name).catch(() => undefined);
  if (!info?.isFile()) {
    throw new UserError(
      `--input ${printable(file)} is not a file`,
      "pass a JSON file holding the input document",
    );
  }
  if (info.size > LOG_LIMITS.maxLineBytes) {
    throw new UserError(
      `--input ${printable(file)} is ${info.size} bytes, over the ${LOG_LIMITS.maxLineBytes} a recorded decision may hold`,
      "pass the input of one request",
    );
  }
  const text = await readFile(name, "utf8");
  if (jsonTextDeeperThan(text, LOG_LIMITS.maxDepth)) {
    throw new UserError(
      `--input ${printable(file)} nests deeper than ${LOG_LIMITS.maxDepth} levels`,
      "pass the input of one request",
    );
  }
  try {
    return parseNullPrototypeJson(text);
  } catch (error) {
    throw new UserError(
      `--input ${printable(file)} is not JSON: ${(error as Error).message}`,
      "pass a JSON file holding the input document",
    );
  }
}
