import { pipeline, Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import { jsonTextDeeperThan, MAX_JSON_DEPTH } from "../enforcer/input.ts";
import { UserError } from "../errors.ts";

const MIB = 1024 * 1024;

/** How much of a decision log is read before it is refused. */
export interface LogLimits {
  /** Bytes a gzipped file may inflate to: a small file that inflates to gigabytes is refused, not read. */
  maxDecompressedBytes: number;
  /** Bytes of one line (an event, or an uploaded array of them). */
  maxLineBytes: number;
  /** Nesting of one event, as Kong's JSON decoder (lua-cjson's decode_max_depth). */
  maxDepth: number;
  /** Bytes of one S3 object: the store hands over whole objects, so this much is held at once. */
  maxObjectBytes: number;
  /**
   * Blank lines of one log: a small gzip of newlines inflates to a billion of them, each cheap but together
   * minutes of work before the byte cap; no writer of decision logs leaves more than a few.
   */
  maxBlankLines?: number;
  /** Bytes read (inflated) across every file of one source: a directory or prefix of many capped files. */
  maxTotalBytes?: number;
}

export const LOG_LIMITS: LogLimits = {
  maxDecompressedBytes: 1024 * MIB,
  maxLineBytes: 16 * MIB,
  maxDepth: MAX_JSON_DEPTH,
  maxObjectBytes: 256 * MIB,
  maxBlankLines: 100_000,
  maxTotalBytes: 64 * 1024 * MIB,
};

/** What a source (every file of a directory or prefix) has read so far, against `maxTotalBytes`. */
export interface ReadTotal {
  bytes: number;
}

const GZIP_MAGIC = [0x1f, 0x8b] as const;
/** Lines handed over at once, whatever the chunk: an S3 object comes as one buffer of up to 256 MiB. */
const MAX_BATCH_LINES = 1024;
const NEWLINE = 0x0a;

function refuse(name: string, what: string): never {
  throw new UserError(
    `${name} is refused: ${what}`,
    "pass decision logs as OPA or the enforcer writes them (NDJSON, or OPA's uploaded JSON arrays, gzipped or not)",
  );
}

/**
 * The bytes of a log, gunzipped when they start with gzip's magic bytes (whatever the file is called: OPA's
 * uploads are gzip however they were saved), and refused past `maxDecompressedBytes`.
 */
async function* decodedChunks(
  source: Readable,
  name: string,
  limits: LogLimits,
  total: ReadTotal,
): AsyncGenerator<Buffer> {
  const maxTotalBytes = limits.maxTotalBytes ?? (LOG_LIMITS.maxTotalBytes as number);
  try {
    for await (const chunk of decode(source, name, limits)) {
      total.bytes += chunk.length;
      if (total.bytes > maxTotalBytes) {
        throw new UserError(
          `--decisions is refused at ${name}: its files hold more than ${maxTotalBytes} bytes in all`,
          "pass fewer files (a day's logs, one instance's) or a narrower prefix",
        );
      }
      yield chunk;
    }
  } finally {
    source.destroy();
  }
}

async function* decode(source: Readable, name: string, limits: LogLimits): AsyncGenerator<Buffer> {
  const iterator = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let head = Buffer.alloc(0);
  let done = false;
  try {
    while (head.length < GZIP_MAGIC.length && !done) {
      const next = await iterator.next();
      if (next.done) done = true;
      else head = Buffer.concat([head, next.value]);
    }
  } catch (error) {
    throw unreadable(name, error);
  }
  const rest = async function* () {
    if (head.length > 0) yield head;
    while (!done) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  };
  if (head[0] !== GZIP_MAGIC[0] || head[1] !== GZIP_MAGIC[1]) {
    try {
      yield* rest();
    } catch (error) {
      throw unreadable(name, error);
    }
    return;
  }
  // pipeline() destroys both ends when the consumer stops early (a refusal) or either side fails.
  const gunzip = pipeline(Readable.from(rest()), createGunzip(), () => {});
  let inflated = 0;
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      inflated += chunk.length;
      if (inflated > limits.maxDecompressedBytes) {
        refuse(
          name,
          `it inflates past ${limits.maxDecompressedBytes} bytes (a gzip bomb, or a log to split)`,
        );
      }
      yield chunk;
    }
  } catch (error) {
    if (error instanceof UserError) throw error;
    throw new UserError(
      `${name} is not valid gzip: ${(error as Error).message}`,
      "pass the file as OPA uploaded it, or gunzip it and pass the text",
    );
  } finally {
    gunzip.destroy();
  }
}

function unreadable(name: string, error: unknown): UserError {
  if (error instanceof UserError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  return new UserError(
    `cannot read ${name}: ${code ?? (error as Error).message}`,
    "check that the file exists and is readable",
  );
}

/** Whether `text` holds more than `max` of `{` and `[` (found natively; a decision line holds a handful). */
function openersOver(text: string, max: number): boolean {
  let count = 0;
  for (const opener of ["{", "["]) {
    for (let at = text.indexOf(opener); at !== -1; at = text.indexOf(opener, at + 1)) {
      if (++count > max) return true;
    }
  }
  return false;
}

/** A line of a log as read: its bytes (no newline) and its number in the file, from 1. */
export interface LogLine {
  bytes: Buffer;
  line: number;
}

/**
 * What a line of the log `name` says, as text, or undefined for a blank line; refuses the line (or the log)
 * as logLineBatches' readers must: more than `maxBlankLines` blank lines, or a line nested deeper than
 * `maxDepth` (one more for an array of events), refused before it is parsed. Checked when each line is
 * taken, so a reader that stops early (explain, at its match) never refuses what it did not read.
 */
export function lineReader(
  name: string,
  limits: LogLimits = LOG_LIMITS,
): (line: LogLine) => string | undefined {
  let blank = 0;
  const maxBlankLines = limits.maxBlankLines ?? (LOG_LIMITS.maxBlankLines as number);
  const blankLine = () => {
    if (++blank > maxBlankLines) refuse(name, `it has more than ${maxBlankLines} blank lines`);
    return undefined;
  };
  return ({ bytes, line }) => {
    if (bytes.length === 0) return blankLine();
    const text = bytes.toString("utf8");
    if (!/\S/.test(text)) return blankLine();
    const depth = text.trimStart().startsWith("[") ? limits.maxDepth + 1 : limits.maxDepth;
    // Nesting past `depth` takes more than `depth` openers: most lines need no scan.
    if (openersOver(text, depth) && jsonTextDeeperThan(text, depth)) {
      refuse(name, `line ${line} nests deeper than ${limits.maxDepth} levels`);
    }
    return text;
  };
}

/**
 * The lines of a log, each at most `maxLineBytes`, found with one scan of each chunk (a long line is never
 * searched twice) and never held beyond that cap; read them with lineReader(). Handed over a chunk's lines at
 * a time (at most 1,024): a day of logs is millions of lines, and each hop through an async generator costs
 * microseconds.
 */
export async function* logLineBatches(
  source: Readable,
  name: string,
  limits: LogLimits = LOG_LIMITS,
  total: ReadTotal = { bytes: 0 },
): AsyncGenerator<LogLine[]> {
  let parts: Buffer[] = [];
  let length = 0;
  let line = 0;
  const tooLong = () => refuse(name, `line ${line + 1} is longer than ${limits.maxLineBytes} bytes`);
  for await (const chunk of decodedChunks(source, name, limits, total)) {
    const lines: LogLine[] = [];
    let start = 0;
    let end = chunk.indexOf(NEWLINE, start);
    while (end !== -1) {
      const piece = chunk.subarray(start, end);
      if (length + piece.length > limits.maxLineBytes) tooLong();
      const bytes = parts.length > 0 ? Buffer.concat([...parts, piece]) : piece;
      parts = [];
      length = 0;
      if (lines.push({ bytes, line: ++line }) >= MAX_BATCH_LINES) yield lines.splice(0);
      start = end + 1;
      end = chunk.indexOf(NEWLINE, start);
    }
    if (start < chunk.length) {
      length += chunk.length - start;
      if (length > limits.maxLineBytes) tooLong();
      parts.push(chunk.subarray(start));
    }
    if (lines.length > 0) yield lines;
  }
  if (length > 0) yield [{ bytes: Buffer.concat(parts), line: ++line }];
}
