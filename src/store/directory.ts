import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { link, mkdir, opendir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { digestVerifier, READ_CHUNK_BYTES, sha256File } from "../bundle/read.ts";
import { FailureError, UserError } from "../errors.ts";
import { interruptedBy } from "../interrupt.ts";
import { parseJson } from "../safe-json.ts";
import { ListingBound, type ListLimits } from "./list-bounds.ts";
import type { CreateOptions, CreateOutcome, ObjectToCreate, Store, StoredObject } from "./store.ts";

/**
 * A local folder laid out like the bucket, for teams that serve bundles from a static HTTP server.
 * Each object has a `<key>.meta.json` beside it holding its metadata.
 */
export class DirectoryStore implements Store {
  readonly location: string;

  constructor(
    private readonly root: string,
    private readonly serviceUrl?: string,
    /** Where a listing is cut off (list-bounds.ts); tests set low ones. */
    private readonly listLimits?: ListLimits,
  ) {
    this.location = `${root}${path.sep}`;
  }

  private pathOf(key: string): string {
    const file = path.resolve(this.root, key);
    if (!file.startsWith(path.resolve(this.root) + path.sep))
      throw new UserError(`key ${key} leaves ${this.root}`);
    return file;
  }

  async createIfAbsent(object: ObjectToCreate, options: CreateOptions = {}): Promise<CreateOutcome> {
    const { signal } = options;
    const target = this.pathOf(object.key);
    // Only this user: another account on the machine could otherwise replace a revision or its metadata.
    await mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
    const temp = `${target}.${randomBytes(4).toString("hex")}.partial`;
    try {
      await pipeline(
        createReadStream(object.file, { highWaterMark: READ_CHUNK_BYTES }),
        digestVerifier(object.sha256, object.file),
        createWriteStream(temp, { flags: "wx", mode: 0o600 }),
        { signal },
      );
      // Once linked, the object is published and its metadata follows; an interrupt before it leaves none.
      if (signal?.aborted) throw interruptedBy(signal, "nothing was published");
      // link() fails with EEXIST when the name is taken: an atomic create-if-absent on one filesystem.
      await link(temp, target);
    } catch (error) {
      if (signal?.aborted) throw interruptedBy(signal, "nothing was published");
      if ((error as NodeJS.ErrnoException).code === "EEXIST") {
        const existing = await this.head(object.key);
        if (existing) return { created: false, existing };
      }
      throw error;
    } finally {
      await rm(temp, { force: true });
    }
    // The winner of link() owns the key, so its metadata is the only one written.
    await writeFile(`${temp}.meta`, `${JSON.stringify(object.metadata, null, 2)}\n`, { mode: 0o600 });
    await rename(`${temp}.meta`, `${target}.meta.json`);
    return { created: true };
  }

  async head(key: string): Promise<StoredObject | undefined> {
    const file = this.pathOf(key);
    const info = await stat(file).catch(() => undefined);
    if (!info?.isFile()) return undefined;
    return { key, size: info.size, lastModified: info.mtime, metadata: await this.readMetadata(key, file) };
  }

  /**
   * What publish recorded beside the object. Missing metadata is reported as none (so verify fails on it),
   * never made up from the object itself; a file that is not a flat object of strings is a failure.
   */
  private async readMetadata(key: string, file: string): Promise<Record<string, string>> {
    let text: string;
    try {
      text = await readFile(`${file}.meta.json`, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return {};
      throw new FailureError(`cannot read the metadata of ${key}: ${(error as NodeJS.ErrnoException).code}`);
    }
    let parsed: unknown;
    try {
      parsed = parseJson(text);
    } catch {
      parsed = undefined;
    }
    const valid =
      typeof parsed === "object" &&
      parsed !== null &&
      !Array.isArray(parsed) &&
      Object.values(parsed).every((value) => typeof value === "string");
    if (!valid) {
      throw new FailureError(
        `the metadata of ${key} (${path.basename(file)}.meta.json) is not an object of strings`,
        "do not deploy it; publish the revision again from its commit",
      );
    }
    return Object.assign(Object.create(null), parsed) as Record<string, string>;
  }

  async get(key: string): Promise<Buffer> {
    return readFile(this.pathOf(key));
  }

  /** The file's bytes, hashed: `.meta.json` is a file anyone who can write the directory can rewrite too. */
  async storedSha256(object: StoredObject): Promise<string> {
    return (await sha256File(this.pathOf(object.key))).sha256;
  }

  /** A folder served by key has no name for one set of bytes: a config can name only the path. */
  async pinning(): Promise<{ pinned: boolean; detail: string }> {
    return {
      pinned: false,
      detail: `${this.location} is served by key, so a config names only the path and an overwrite changes what OPA loads — keep the directory writable by publish alone, or sign bundles (build --signing-key, config --verification-key) so OPA refuses bytes nobody signed`,
    };
  }

  async list(prefix: string): Promise<StoredObject[]> {
    const dir = path.resolve(
      this.root,
      prefix.endsWith("/") || prefix === "" ? prefix : path.dirname(prefix),
    );
    const base = path.relative(path.resolve(this.root), dir);
    const objects: StoredObject[] = [];
    const bound = new ListingBound(this.location, this.listLimits);
    // Read entry by entry, not readdir's whole array: a folder of millions of names is refused, not loaded.
    const entries = await opendir(dir).catch(() => undefined);
    for await (const entry of entries ?? []) {
      bound.add(1);
      const name = entry.name;
      if (!name.endsWith(".tar.gz")) continue;
      const key = base ? `${base.split(path.sep).join("/")}/${name}` : name;
      if (!key.startsWith(prefix)) continue;
      const info = await stat(path.join(dir, name));
      objects.push({ key, size: info.size, lastModified: info.mtime, metadata: {} });
    }
    return objects;
  }

  async delete(key: string): Promise<void> {
    const file = this.pathOf(key);
    // The object first: a prune cut short leaves metadata without an object, which list never shows.
    await rm(file, { force: true });
    await rm(`${file}.meta.json`, { force: true });
  }

  urlOf(key: string): string {
    return this.serviceUrl ? `${this.serviceUrl.replace(/\/+$/, "")}/${key}` : this.pathOf(key);
  }
}
