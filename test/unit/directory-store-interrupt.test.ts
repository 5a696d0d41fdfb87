import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { InterruptedError } from "../../src/errors.ts";
import { DirectoryStore } from "../../src/store/directory.ts";

/** A directory store's create stopped by an interrupt leaves no object, no metadata and no partial file. */

async function bundleOf(bytes: number) {
  const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-directory-interrupt-"));
  const file = path.join(dir, "bundle.tar.gz");
  const body = randomBytes(bytes);
  await writeFile(file, body);
  const store = path.join(dir, "store");
  const object = {
    key: "bundles/rev.tar.gz",
    file,
    size: bytes,
    sha256: createHash("sha256").update(body).digest("hex"),
    contentType: "application/gzip",
    metadata: { revision: "rev" },
  };
  return { store, object };
}

describe("a directory store interrupted", () => {
  it.each([
    ["before it starts", 0],
    ["while it copies", 1],
  ])("%s: no object, no partial file", async (_when, afterMs) => {
    const { store, object } = await bundleOf(64 * 1024 * 1024);
    const interrupt = new AbortController();
    const reason = new InterruptedError("SIGINT");
    if (afterMs === 0) interrupt.abort(reason);
    else setTimeout(() => interrupt.abort(reason), afterMs);
    const created = new DirectoryStore(store).createIfAbsent(object, { signal: interrupt.signal });
    await expect(created).rejects.toMatchObject({ exitCode: 130, hint: "nothing was published" });
    expect(await readdir(path.join(store, "bundles"))).toEqual([]);
  });
});
