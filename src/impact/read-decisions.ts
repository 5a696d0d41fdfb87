import { constants } from "node:fs";
import { open, readdir, stat } from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import type { Context } from "../context.ts";
import { UserError } from "../errors.ts";
import { printable } from "../printable.ts";
import type { Store } from "../store/store.ts";
import { noneSkipped, type RecordedDecision, type SkippedEvents, toRecord } from "./decisions.ts";
import {
  LOG_LIMITS,
  type LogLimits,
  type LogLine,
  lineReader,
  logLineBatches,
  type ReadTotal,
} from "./log-lines.ts";
import { parseNullPrototypeJson } from "./null-prototype-json.ts";
import { SeenDecisions } from "./seen-decisions.ts";

/**
 * The events of a chunk of a log's lines, each line read as it is taken: one event per line (the enforcer's
 * NDJSON, OPA's console lines), or the elements of a line that is a JSON array (OPA's upload bodies, gzipped
 * or not). Every value is read without a prototype.
 */
function* eventsOf(
  lines: LogLine[],
  read: (line: LogLine) => string | undefined,
): Generator<{ event: unknown; text?: string } | undefined> {
  for (const line of lines) {
    const text = read(line);
    if (text === undefined) continue;
    let parsed: unknown;
    try {
      parsed = parseNullPrototypeJson(text);
    } catch {
      yield undefined;
      continue;
    }
    if (Array.isArray(parsed)) for (const event of parsed) yield { event };
    else yield { event: parsed, text };
  }
}

/**
 * What readDecisions' `s3` option wants for an s3:// source: the logs' bucket, always S3, with the configured
 * endpoint, region and credentials — the bundles may live in another bucket, a registry or a directory.
 */
export function logsBucketOf(context: Context): (bucket: string) => Promise<Store> {
  return async (bucket) => {
    const { openStore } = await import("../store/open.ts");
    return openStore({
      ...context,
      settings: { ...context.settings, bucket, registry: undefined, to: undefined },
    });
  };
}

export interface DecisionSourceStats {
  /** Files (or objects) read. */
  files: number;
  skipped: SkippedEvents;
}

export interface ReadDecisionsOptions {
  cwd: string;
  s3?: (bucket: string) => Promise<Store>;
  stats?: DecisionSourceStats;
  limits?: LogLimits;
  /** Count a decision with no input field as no_input and leave it out (impact); explain refuses it itself. */
  skipNoInput?: boolean;
}

/**
 * Every recorded decision under `source`, streamed: a file, a directory of files, or `s3://bucket/prefix`
 * (always S3, whatever store holds the bundles). Events that are not decisions, and a decision_id seen
 * before (OPA uploads a batch again until it is acknowledged), are counted in stats.skipped. A source that
 * cannot be read, or holds no file, is an error. Each line is read as its decision is taken: a reader that
 * stops early leaves the rest unread.
 */
export async function* readDecisions(
  source: string,
  options: ReadDecisionsOptions,
): AsyncGenerator<RecordedDecision> {
  for await (const chunk of decisionChunks(source, options)) yield* chunk;
}

/** readDecisions a chunk of the log at a time (at most 1,024 lines): what a day of logs is read with. */
export async function* readDecisionBatches(
  source: string,
  options: ReadDecisionsOptions,
): AsyncGenerator<RecordedDecision[]> {
  for await (const chunk of decisionChunks(source, options)) {
    const records = [...chunk];
    if (records.length > 0) yield records;
  }
}

/** The decisions of each chunk of the source's lines, each taken when asked for. */
async function* decisionChunks(
  source: string,
  options: ReadDecisionsOptions,
): AsyncGenerator<Generator<RecordedDecision>> {
  const stats = options.stats ?? { files: 0, skipped: noneSkipped() };
  const limits = options.limits ?? LOG_LIMITS;
  const seen = new SeenDecisions();
  // One bound over every file of the source, beside each file's own.
  const total: ReadTotal = { bytes: 0 };
  const decisionsOf = function* (lines: LogLine[], read: (line: LogLine) => string | undefined) {
    for (const item of eventsOf(lines, read)) {
      if (!item) {
        stats.skipped.unparseable++;
        continue;
      }
      const record = toRecord(item.event, item.text);
      if (!record) {
        stats.skipped.not_a_decision++;
        continue;
      }
      // A decision logged with no input field (OPA decided with input undefined) cannot be replayed as it
      // was: `with input as` needs a value, and null is not undefined (`allow if not input` differs).
      if (options.skipNoInput && record.input === undefined) {
        stats.skipped.no_input++;
        continue;
      }
      // Only a decision read again whole is a duplicate (seen-decisions.ts); an id alone hides nothing.
      if (record.decisionId !== undefined && !seen.add(record)) {
        stats.skipped.duplicate++;
        continue;
      }
      yield record;
    }
  };
  const emit = async function* (name: string, open: () => Promise<Readable>) {
    stats.files++;
    const read = lineReader(name, limits);
    for await (const lines of logLineBatches(await open(), name, limits, total)) {
      yield decisionsOf(lines, read);
    }
  };
  const s3 = /^s3:\/\/([^/]+)\/?(.*)$/.exec(source);
  if (s3) {
    if (!options.s3) throw new UserError(`${source} needs S3`, "pass --region and credentials");
    const store = await options.s3(s3[1] as string);
    const objects = (await store.list(s3[2] ?? "")).sort((a, b) => a.key.localeCompare(b.key));
    if (objects.length === 0) {
      throw new UserError(`--decisions ${printable(source)} holds no objects`, "check the bucket and prefix");
    }
    for (const object of objects) {
      // The store hands over whole objects: one past the cap is refused before it is downloaded.
      if (object.size > limits.maxObjectBytes) {
        throw new UserError(
          `s3://${s3[1]}/${printable(object.key)} is ${object.size} bytes, over the ${limits.maxObjectBytes} read at once`,
          "split the log into smaller objects",
        );
      }
      yield* emit(`s3://${s3[1]}/${printable(object.key)}`, async () =>
        Readable.from([await store.get(object.key)]),
      );
    }
    return;
  }
  const file = path.resolve(options.cwd, source);
  const info = await stat(file).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return undefined;
    throw new UserError(
      `cannot read --decisions ${printable(source)}: ${error.code}`,
      "check its permissions",
    );
  });
  if (!info)
    throw new UserError(
      `--decisions ${printable(source)} does not exist`,
      "pass a file, a directory or s3://bucket/prefix",
    );
  if (!info.isDirectory() && !info.isFile()) {
    // A FIFO, socket or device would block the read (or never end): only files and directories are logs.
    throw new UserError(
      `--decisions ${printable(source)} is not a regular file or a directory`,
      "pass a log file, a directory of them or s3://bucket/prefix (save a stream to a file first)",
    );
  }
  const files = info.isDirectory() ? await filesUnder(file, source) : [file];
  for (const name of files) yield* emit(shownPath(options.cwd, name), async () => openFile(name));
}

/** Every file under a directory, sorted; links to files count as files (a log directory is often links). */
async function filesUnder(dir: string, source: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(
    (error: NodeJS.ErrnoException) => {
      throw new UserError(
        `cannot read --decisions ${printable(source)}: ${error.code}`,
        "check its permissions",
      );
    },
  );
  const files: string[] = [];
  for (const entry of entries) {
    const name = path.join(entry.parentPath, entry.name);
    if (entry.isFile()) files.push(name);
    else if (entry.isSymbolicLink()) {
      const target = await stat(name).catch(() => undefined);
      if (!target)
        throw new UserError(`cannot read ${printable(name)}: it is a broken link`, "fix or remove it");
      if (target.isFile()) files.push(name);
    }
  }
  if (files.length === 0) {
    throw new UserError(
      `--decisions ${printable(source)} holds no files`,
      "pass the directory the logs are in",
    );
  }
  return files.sort();
}

/** A path as the user would write it: relative to the working directory when under it. */
function shownPath(cwd: string, name: string): string {
  const relative = path.relative(cwd, name);
  return printable(relative && !relative.startsWith("..") && !path.isAbsolute(relative) ? relative : name);
}

/**
 * A regular file opened for reading, or one line saying why it cannot be. Opened without blocking and
 * checked on the open descriptor: a file swapped for a FIFO after it was listed is refused, never waited on.
 */
async function openFile(name: string): Promise<Readable> {
  const handle = await open(name, constants.O_RDONLY | constants.O_NONBLOCK).catch(
    (error: NodeJS.ErrnoException) => {
      throw new UserError(
        `cannot read ${printable(name)}: ${error.code ?? error.message}`,
        "check its permissions",
      );
    },
  );
  const info = await handle.stat().catch(() => undefined);
  if (!info?.isFile()) {
    await handle.close();
    throw new UserError(
      `cannot read ${printable(name)}: it is not a regular file`,
      "pass log files only (save a stream to a file first)",
    );
  }
  // 1 MiB reads: a day of logs is gigabytes, and each read is a call into the file system.
  return handle.createReadStream({ highWaterMark: 1024 * 1024 });
}
