import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { beforeAll, describe, expect, it } from "vitest";
import { LOG_LIMITS } from "../../src/impact/log-lines.ts";
import { readDecisions } from "../../src/impact/read-decisions.ts";

/** What --decisions may name, and how much of it is read before a refusal. */

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "policyship-decision-sources-"));
});

async function readAll(source: string, limits = LOG_LIMITS) {
  let count = 0;
  for await (const _ of readDecisions(source, { cwd: dir, limits })) count++;
  return count;
}

const line = (id: string) =>
  `${JSON.stringify({ decision_id: id, path: "authz/allow", input: {}, result: true, bundles: { authz: { revision: "a".repeat(40) } } })}\n`;

describe("--decisions sources", () => {
  it("refuses a FIFO at once instead of waiting for a writer that never comes", async () => {
    const fifo = path.join(dir, "decisions.fifo");
    execFileSync("mkfifo", [fifo]);
    const started = Date.now();
    await expect(readAll("decisions.fifo")).rejects.toThrow(
      /--decisions decisions\.fifo is not a regular file or a directory/,
    );
    expect(Date.now() - started).toBeLessThan(2_000);
  }, 10_000);

  it("refuses a gzip of newlines after its blank-line bound, long before the byte cap", async () => {
    const newlines = gzipSync(Buffer.alloc(64 * 1024 * 1024, 0x0a));
    expect(newlines.length).toBeLessThan(128 * 1024);
    await writeFile(path.join(dir, "newlines.ndjson.gz"), newlines);
    const started = Date.now();
    await expect(readAll("newlines.ndjson.gz")).rejects.toThrow(
      /newlines\.ndjson\.gz is refused: it has more than 100000 blank lines/,
    );
    expect(Date.now() - started).toBeLessThan(5_000);
  }, 60_000);

  it("still reads a log with a few blank lines, whitespace-only ones too", async () => {
    await writeFile(path.join(dir, "sparse.ndjson"), `\n\n${line("s1")}   \n\n${line("s2")}\n`);
    expect(await readAll("sparse.ndjson")).toBe(2);
  });

  it("bounds the bytes read across every file of a directory, beside each file's own cap", async () => {
    const logs = path.join(dir, "logs");
    await mkdir(logs);
    for (const name of ["a.ndjson", "b.ndjson", "c.ndjson"]) {
      await writeFile(path.join(logs, name), `${line(name)}${line(`${name}-2`)}`);
    }
    const perFile = Buffer.byteLength(`${line("a.ndjson")}${line("a.ndjson-2")}`);
    const limits = { ...LOG_LIMITS, maxTotalBytes: perFile * 2 + 10 };
    expect(await readAll("logs", { ...LOG_LIMITS, maxTotalBytes: perFile * 3 + 10 })).toBe(6);
    await expect(readAll("logs", limits)).rejects.toThrow(
      /--decisions is refused at logs\/c\.ndjson: its files hold more than \d+ bytes in all/,
    );
  });
});
