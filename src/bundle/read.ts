import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { FailureError } from "../errors.ts";
import { AmbiguousJson, parseStrictJson, type StrictJsonShape } from "../strict-json.ts";
import { assertManifestShape, BundleShapeError, MAX_JSON_DEPTH } from "./shape.ts";

export interface Manifest {
  revision?: string;
  roots?: string[];
  rego_version?: number;
  wasm?: { entrypoint: string; module: string }[];
  metadata?: Record<string, unknown>;
}

export interface BundleContents {
  sha256: string;
  size: number;
  /** Files in the bundle, without the leading slash opa writes. */
  files: string[];
  manifest: Manifest;
  /** Contents of the files asked for in `keep`, by name. */
  kept: Map<string, Buffer>;
}

const MAX_KEPT_BYTES = 64 * 1024 * 1024;

/**
 * The files OPA decodes into Go structs, case-insensitively (bundle.Manifest with its WasmResolver, and
 * bundle.SignaturesConfig): read strictly, so "Revision" beside "revision" is refused rather than read as
 * one revision here and another by OPA. data.json is decoded into maps, whose keys Go matches exactly.
 * https://github.com/open-policy-agent/opa/blob/main/v1/bundle/bundle.go
 */
const STRUCT_FILES: Record<string, StrictJsonShape> = {
  ".manifest": {
    fields: [
      "revision",
      "roots",
      "wasm",
      "rego_version",
      "file_rego_versions",
      "metadata",
      "entrypoint",
      "module",
      "annotations",
    ],
    // metadata holds any JSON; a rego_version that is not an integer OPA refuses itself.
    integersOnly: false,
    // As deep as Go's JSON decoder reads (10,000); deeper, OPA refuses the bundle too.
    maxDepth: MAX_JSON_DEPTH,
  },
  ".signatures.json": { fields: ["signatures", "plugin"], integersOnly: false, maxDepth: MAX_JSON_DEPTH },
};

/**
 * What reading a bundle may cost. A 2 MB gzip can hold a million entries or gigabytes of zeros; reading
 * stops at the first cap it passes. Per file, OPA's own default (size_limit_bytes) is 1 GiB.
 */
export interface BundleLimits {
  maxEntries: number;
  /** Uncompressed bytes of all files together. */
  maxBytes: number;
  maxFileBytes: number;
  maxPathLength: number;
}

export const DEFAULT_BUNDLE_LIMITS: BundleLimits = {
  maxEntries: 10_000,
  maxBytes: 1024 * 1024 * 1024,
  maxFileBytes: 1024 * 1024 * 1024,
  maxPathLength: 1024,
};

/** Tar entry types a bundle may hold; links, devices and FIFOs are refused (OPA silently skips them). */
const ALLOWED_TYPES = new Set(["File", "OldFile", "ContiguousFile", "Directory"]);
/** Large reads: a 200 MB bundle hashes ~20% faster than with the 64 KiB default. */
export const READ_CHUNK_BYTES = 1024 * 1024;

/** A JSON rendering of a name from the archive, cut short: it goes into one-line errors. */
function shown(name: string): string {
  return JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}…` : name);
}

/**
 * The path of an entry within the bundle: opa writes "/name", tar tools "./name" or "name". What remains
 * must be relative and must not climb (no "..", no second leading "/"); "." and empty segments fold away.
 */
function bundlePathOf(raw: string): string | { refused: string } {
  const rest = raw.replace(/^\.?\//, "");
  if (rest.startsWith("/") || /^[A-Za-z]:[\\/]/.test(rest) || rest.includes("\\")) {
    return { refused: `entry ${shown(raw)} has an absolute path` };
  }
  const segments = rest.split("/").filter((segment) => segment !== "" && segment !== ".");
  if (segments.includes("..")) return { refused: `entry ${shown(raw)} climbs out of the bundle with ".."` };
  return segments.join("/");
}

/**
 * Reads a bundle tarball once: its sha256 and size, its file list, its .manifest, and the contents of
 * the files named in `keep` (e.g. policy.wasm and data.json for the embedded engine; "all" for every one). It refuses what
 * no bundle built by opa holds: links, devices, absolute or climbing paths, duplicate paths, and anything
 * past `limits`.
 */
export async function readBundle(
  source: string | Buffer,
  keep: string[] | "all" = [],
  limits: BundleLimits = DEFAULT_BUNDLE_LIMITS,
): Promise<BundleContents> {
  const { Parser } = await import("tar");
  const hash = createHash("sha256");
  let size = 0;
  const files: string[] = [];
  const seen = new Set<string>();
  const wanted = keep === "all" ? undefined : new Set([...Object.keys(STRUCT_FILES), ...keep]);
  const kept = new Map<string, Buffer>();
  let entries = 0;
  let totalBytes = 0;
  let refusal: string | undefined;
  const parser = new Parser({
    strict: true,
    onReadEntry: (entry) => {
      const refuse = (reason: string) => {
        refusal ??= reason;
        entry.resume();
        parser.abort(new Error(reason));
      };
      if (++entries > limits.maxEntries) return refuse(`it has more than ${limits.maxEntries} entries`);
      if (entry.path.length > limits.maxPathLength) {
        return refuse(`entry ${shown(entry.path)} has a path over ${limits.maxPathLength} characters`);
      }
      if (!ALLOWED_TYPES.has(entry.type)) {
        return refuse(
          `entry ${shown(entry.path)} is a ${entry.type}; a bundle holds only files and directories`,
        );
      }
      const name = bundlePathOf(entry.path);
      if (typeof name !== "string") return refuse(name.refused);
      if (entry.type === "Directory") return void entry.resume();
      if (seen.has(name)) return refuse(`entry ${shown(name)} appears twice`);
      const readAs = readByOpaAs(name);
      if (readAs) return refuse(`entry ${shown(name)} is one OPA also reads as the bundle's ${readAs}`);
      seen.add(name);
      if (entry.size > limits.maxFileBytes) {
        return refuse(`entry ${shown(name)} is ${entry.size} bytes, over ${limits.maxFileBytes}`);
      }
      totalBytes += entry.size;
      if (totalBytes > limits.maxBytes) return refuse(`its files hold more than ${limits.maxBytes} bytes`);
      files.push(name);
      if ((wanted && !wanted.has(name)) || entry.size > MAX_KEPT_BYTES) return void entry.resume();
      const chunks: Buffer[] = [];
      entry.on("data", (chunk: Buffer) => chunks.push(chunk));
      entry.on("end", () => kept.set(name, Buffer.concat(chunks)));
    },
  });
  const input = typeof source === "string" ? createReadStream(source) : Readable.from([source]);
  input.on("data", (chunk: Buffer | string) => {
    hash.update(chunk);
    size += chunk.length;
  });
  try {
    await pipeline(input, parser);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw error;
    if (refusal) {
      throw new FailureError(
        `the bundle is refused: ${refusal}`,
        "opa build never writes this; rebuild it with policyship build (or raise the bundle limits if it is legitimate)",
      );
    }
    throw new FailureError(
      `the bundle is not a valid gzip tarball: ${(error as Error).message}`,
      "rebuild it with policyship build",
    );
  }
  const parsed = new Map<string, unknown>();
  for (const [name, shape] of Object.entries(STRUCT_FILES)) {
    const bytes = kept.get(name);
    if (bytes) parsed.set(name, readStructFile(name, bytes, shape));
  }
  const manifest = (parsed.get(".manifest") ?? {}) as Manifest;
  // Its fields have the types OPA requires, or the bundle is one OPA would not load.
  if (parsed.has(".manifest")) assertManifestShape(manifest as Record<string, unknown>);
  return { sha256: hash.digest("hex"), size, files: files.sort(), manifest, kept };
}

/**
 * OPA decodes every file whose path ends in ".manifest" into the manifest (one after the other, the later
 * fields winning) and every one ending in "signatures.json" into the signatures, where this reader looks at
 * `.manifest` and `.signatures.json` only: any other such file would give OPA a revision or roots no one
 * checked. opa build writes neither.
 */
function readByOpaAs(name: string): string | undefined {
  if (name !== ".manifest" && name.endsWith(".manifest")) return ".manifest";
  if (name !== ".signatures.json" && name.endsWith("signatures.json")) return ".signatures.json";
  return undefined;
}

/** A JSON object OPA decodes into a struct, read as OPA reads it (null-prototype objects), or refused. */
function readStructFile(name: string, bytes: Buffer, shape: StrictJsonShape): unknown {
  let value: unknown;
  try {
    value = parseStrictJson(bytes, shape);
  } catch (error) {
    if (error instanceof AmbiguousJson && !/nests deeper/.test(error.message)) {
      throw new FailureError(
        `the bundle's ${name} can be read two ways: ${error.message}`,
        "do not deploy it; rebuild it with policyship build",
      );
    }
    throw new BundleShapeError(
      error instanceof AmbiguousJson
        ? `${name} ${error.message.replace(/^it /, "")}`
        : `${name} is not valid JSON`,
    );
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new BundleShapeError(
      `${name} is ${Array.isArray(value) ? "an array" : typeof value === "object" ? "null" : `a ${typeof value}`}, not an object`,
    );
  }
  return value;
}

/** Hex sha256 of a file, read as a stream. */
export async function sha256File(file: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: READ_CHUNK_BYTES })) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest("hex"), size };
}

/**
 * A pass-through that hashes what flows through it and fails at the end when the digest is not `expected`.
 * Stores upload through it, so an object is only completed when its bytes are the ones whose sha256 goes
 * into its metadata; the error comes before the end of the stream, so a multipart upload is aborted.
 */
export function digestVerifier(expected: string, what: string): Transform {
  const hash = createHash("sha256");
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      callback(null, chunk);
    },
    flush(callback) {
      const actual = hash.digest("hex");
      if (actual === expected) callback();
      else callback(digestMismatch(what, expected, actual));
    },
  });
}

export function digestMismatch(what: string, expected: string, actual: string): FailureError {
  return new FailureError(
    `${what} changed after it was built (sha256 ${actual}, build recorded ${expected})`,
    "rebuild it with policyship build",
  );
}

export function sha256Of(bytes: Buffer): string {
  return createHash("sha256").update(bytes).digest("hex");
}
