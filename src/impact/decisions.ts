import { createReadStream } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { gunzipSync } from "node:zlib";
import { UserError } from "../errors.ts";
import type { Store } from "../store/store.ts";

/** A recorded decision, from any of the shapes OPA and the enforcer write. */
export interface RecordedDecision {
  decisionId?: string;
  /** The rule path, e.g. "authz/allow". */
  path?: string;
  input: unknown;
  /** undefined when the decision was undefined. */
  result: unknown;
  hasResult: boolean;
  /** Bundle name → revision that answered. */
  revisions: Record<string, string>;
}

/** Turns one event (the enforcer's line, OPA's console line, or an element of an uploaded batch) into a record. */
export function toRecord(event: unknown): RecordedDecision | undefined {
  if (typeof event !== "object" || event === null || Array.isArray(event)) return undefined;
  const fields = event as Record<string, unknown>;
  // OPA's console logger adds level/msg/time around the event's own fields.
  if (fields.msg !== undefined && fields.msg !== "Decision Log") return undefined;
  if (!("input" in fields) && !("decision_id" in fields)) return undefined;
  const revisions: Record<string, string> = {};
  const bundles = fields.bundles;
  if (typeof bundles === "object" && bundles !== null) {
    for (const [name, info] of Object.entries(bundles)) {
      const revision = (info as { revision?: unknown })?.revision;
      if (typeof revision === "string" && revision !== "") revisions[name] = revision;
    }
  }
  return {
    decisionId: typeof fields.decision_id === "string" ? fields.decision_id : undefined,
    path: typeof fields.path === "string" ? fields.path : undefined,
    input: fields.input,
    result: fields.result,
    hasResult: "result" in fields,
    revisions,
  };
}

/** The lines of a file (gunzipped when it is gzip), or the elements of an uploaded JSON array. */
async function* eventsOf(name: string, open: () => Promise<Buffer> | Readable): AsyncGenerator<unknown> {
  if (name.endsWith(".gz") || name.endsWith(".gzip")) {
    // OPA's decision-log service uploads gzipped JSON arrays, each a few hundred KB at most.
    const text = gunzipSync(await bufferOf(open()))
      .toString("utf8")
      .trim();
    if (text.startsWith("[")) {
      yield* JSON.parse(text) as unknown[];
      return;
    }
    for (const line of text.split("\n")) if (line.trim()) yield parseLine(line, name);
    return;
  }
  const opened = open();
  const stream = opened instanceof Readable ? opened : Readable.from([await opened]);
  for await (const line of linesOf(stream)) {
    if (line.trim()) yield parseLine(line, name);
  }
}

/**
 * Lines of a stream, read only as fast as they are consumed. (readline's async iterator keeps reading while
 * the consumer awaits, so a file replayed in batches would end up whole in memory.)
 */
async function* linesOf(stream: Readable): AsyncGenerator<string> {
  stream.setEncoding("utf8");
  let rest = "";
  for await (const chunk of stream) {
    rest += chunk as string;
    let start = 0;
    let end = rest.indexOf("\n", start);
    while (end !== -1) {
      yield rest.slice(start, end);
      start = end + 1;
      end = rest.indexOf("\n", start);
    }
    rest = rest.slice(start);
  }
  if (rest) yield rest;
}

async function bufferOf(opened: Promise<Buffer> | Readable): Promise<Buffer> {
  if (!(opened instanceof Readable)) return opened;
  const chunks: Buffer[] = [];
  for await (const chunk of opened) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function parseLine(line: string, source: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    return { __unparsable: source };
  }
}

export interface DecisionSourceStats {
  files: number;
  skipped: number;
}

/**
 * Every recorded decision under `source`, streamed: a file, a directory of files, or `s3://bucket/prefix`
 * through the configured store. Lines that are not decisions are counted in stats.skipped.
 */
export async function* readDecisions(
  source: string,
  options: { cwd: string; store?: (bucket: string) => Promise<Store>; stats?: DecisionSourceStats },
): AsyncGenerator<RecordedDecision> {
  const stats = options.stats ?? { files: 0, skipped: 0 };
  const emit = async function* (name: string, open: () => Promise<Buffer> | Readable) {
    stats.files++;
    for await (const event of eventsOf(name, open)) {
      const record = toRecord(event);
      if (record) yield record;
      else stats.skipped++;
    }
  };
  const s3 = /^s3:\/\/([^/]+)\/?(.*)$/.exec(source);
  if (s3) {
    if (!options.store) throw new UserError(`${source} needs a store`, "pass --bucket and credentials");
    const store = await options.store(s3[1] as string);
    for (const object of (await store.list(s3[2] ?? "")).sort((a, b) => a.key.localeCompare(b.key))) {
      yield* emit(object.key, () => store.get(object.key));
    }
    return;
  }
  const file = path.resolve(options.cwd, source);
  const info = await stat(file).catch(() => undefined);
  if (!info)
    throw new UserError(
      `--decisions ${source} does not exist`,
      "pass a file, a directory or s3://bucket/prefix",
    );
  const files = info.isDirectory()
    ? (await readdir(file, { recursive: true, withFileTypes: true }))
        .filter((entry) => entry.isFile())
        .map((entry) => path.join(entry.parentPath, entry.name))
        .sort()
    : [file];
  for (const name of files) yield* emit(name, () => createReadStream(name));
}
