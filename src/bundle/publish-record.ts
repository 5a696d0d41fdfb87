import { readFile, rename, writeFile } from "node:fs/promises";

/**
 * Where a revision was published, kept in build's record beside the bundle (`<out>/<rev>.json`) under
 * `published`, one entry per store location: the URL, and the pin when the store has one (an OCI manifest
 * digest). `config` for that revision pins what publish recorded instead of asking the store again.
 */

export interface PublishedEntry {
  url: string;
  pin?: string;
  publishedAt: string;
}

async function readRecord(file: string): Promise<Record<string, unknown> | undefined> {
  const text = await readFile(file, "utf8").catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Adds (or replaces) the entry for `location`; written to a temp name first, so the record is never half. */
export async function recordPublished(file: string, location: string, entry: PublishedEntry): Promise<void> {
  const record = (await readRecord(file)) ?? {};
  const earlier = record.published;
  const published: Record<string, unknown> =
    typeof earlier === "object" && earlier !== null && !Array.isArray(earlier) ? { ...earlier } : {};
  published[location] = entry;
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, `${JSON.stringify({ ...record, published }, null, 2)}\n`);
  await rename(temp, file);
}

/** The pin publish recorded for `location`, if it recorded one that looks like a pin. */
export async function recordedPin(file: string, location: string): Promise<string | undefined> {
  const published = (await readRecord(file))?.published;
  if (typeof published !== "object" || published === null || !Object.hasOwn(published, location)) {
    return undefined;
  }
  const pin = (published as Record<string, { pin?: unknown } | undefined>)[location]?.pin;
  return typeof pin === "string" ? pin : undefined;
}

/** What this machine recorded for a revision: build's sha256 of the bundle, and publish's pin for a location. */
export interface LocalRecord {
  file: string;
  sha256?: string;
  pin?: string;
}

/**
 * The local record of a revision (`<out>/<rev>.json`), when it says anything to check a store against.
 * Unlike the store's metadata, whoever overwrites the object cannot rewrite it.
 */
export async function readLocalRecord(file: string, location: string): Promise<LocalRecord | undefined> {
  const sha256 = (await readRecord(file))?.sha256;
  const pin = await recordedPin(file, location);
  const recorded: LocalRecord = {
    file,
    ...(typeof sha256 === "string" && /^[0-9a-f]{64}$/.test(sha256) ? { sha256 } : {}),
    ...(pin ? { pin } : {}),
  };
  return recorded.sha256 || recorded.pin ? recorded : undefined;
}
