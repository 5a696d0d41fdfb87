import { randomUUID } from "node:crypto";
import { mkdtemp, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { beforeAll, describe, expect, it } from "vitest";
import type { RecordedDecision } from "../../src/impact/decisions.ts";
import { type DecisionSourceStats, readDecisions } from "../../src/impact/read-decisions.ts";
import { ImpactReport } from "../../src/impact/report.ts";
import { SeenDecisions } from "../../src/impact/seen-decisions.ts";

const SHA = "a".repeat(40);
const noneSkipped = () => ({
  unparseable: 0,
  not_a_decision: 0,
  no_input: 0,
  no_path: 0,
  no_revision: 0,
  duplicate: 0,
});
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "policyship-decisions-"));
});

function event(id: string, extra: Record<string, unknown> = {}) {
  return {
    decision_id: id,
    path: "authz/allow",
    input: { request: { http: { method: "GET", path: "/orders" } } },
    result: true,
    bundles: { authz: { revision: SHA } },
    ...extra,
  };
}

async function read(
  name: string,
  content: string | Buffer,
  limits?: Parameters<typeof readDecisions>[1]["limits"],
  skipNoInput?: boolean,
) {
  await writeFile(path.join(dir, name), content);
  const stats: DecisionSourceStats = { files: 0, skipped: noneSkipped() };
  const records: RecordedDecision[] = [];
  for await (const record of readDecisions(name, { cwd: dir, stats, limits, skipNoInput }))
    records.push(record);
  return { records, stats };
}

describe("reading decision logs", () => {
  it("parses into null-prototype objects: a hostile log adds nothing to Object.prototype", async () => {
    const hostile = [
      '{"decision_id":"p1","path":"authz/allow","input":{"__proto__":{"polluted":"input"},"constructor":{"prototype":{"polluted":"constructor"}}},"bundles":{"__proto__":{"revision":"' +
        SHA +
        '"}},"result":{"__proto__":{"polluted":"result"}}}',
      '{"__proto__":{"polluted":"event"},"decision_id":"p2","path":"authz/allow","input":{"request":{"http":{"method":"GET","path":"/","headers":{"__proto__":{"polluted":"header"}}}}}}',
    ].join("\n");
    const { records } = await read("hostile.ndjson", hostile);
    expect(records).toHaveLength(2);
    const [first] = records as [RecordedDecision];
    // The keys stay plain data: a bundle may be called __proto__, and its revision is kept.
    expect(Object.getPrototypeOf(first.input)).toBeNull();
    expect(Object.getPrototypeOf(first.revisions)).toBeNull();
    expect(Object.entries(first.revisions)).toEqual([["__proto__", SHA]]);
    expect(Object.keys(first.input as object)).toEqual(["__proto__", "constructor"]);
    // Through the report too: masking copies every input on the way to an example.
    const report = new ImpactReport(10, ["/input/__proto__/polluted"]);
    for (const record of records) {
      report.add(record, SHA, { defined: true, result: true }, { defined: true, result: false });
    }
    report.finish();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty("polluted");
  });

  it("recognises gzip by its magic bytes: OPA's uploads saved as .json, gzipped or not, are replayed", async () => {
    const batch = JSON.stringify([event("u1"), event("u2")]);
    const gzipped = await read("upload-1.json", gzipSync(batch));
    expect(gzipped.records.map((r) => r.decisionId)).toEqual(["u1", "u2"]);
    const plain = await read("upload-2.json", `${batch}\n`);
    expect(plain.records.map((r) => r.decisionId)).toEqual(["u1", "u2"]);
    // And an NDJSON log gzipped under a name that says nothing.
    const lines = await read("decisions.log", gzipSync(`${JSON.stringify(event("n1"))}\n`));
    expect(lines.records.map((r) => r.decisionId)).toEqual(["n1"]);
  });

  it("replays a decision_id seen twice once (OPA retries unacknowledged uploads) and counts each skip by reason", async () => {
    const text = [
      JSON.stringify(event("d1")),
      "not json",
      JSON.stringify({ level: "info", msg: "Starting server" }),
      JSON.stringify([event("d1"), event("d2")]),
      "",
    ].join("\n");
    const { records, stats } = await read("mixed.ndjson", text);
    expect(records.map((r) => r.decisionId)).toEqual(["d1", "d2"]);
    expect(stats.skipped).toEqual({ ...noneSkipped(), unparseable: 1, not_a_decision: 1, duplicate: 1 });
  });

  it("skips a decision logged with no input field as no_input; an input of null is replayed as null", async () => {
    const { input: _input, ...noInput } = event("i1");
    const text = [JSON.stringify(noInput), JSON.stringify(event("i2", { input: null })), ""].join("\n");
    const { records, stats } = await read("no-input.ndjson", text, undefined, true);
    expect(records.map((r) => [r.decisionId, r.input])).toEqual([["i2", null]]);
    expect(stats.skipped).toEqual({ ...noneSkipped(), no_input: 1 });
  });

  it("refuses a line nested 200,000 deep with one line, before parsing it", async () => {
    const deep = `{"decision_id":"x","input":${"[".repeat(200_000)}${"]".repeat(200_000)}}\n`;
    await expect(read("deep.ndjson", deep)).rejects.toThrow(/line 1 nests deeper than 1000 levels/);
    // 1000 levels of event are fine, and so is an uploaded array of them.
    const edge = `{"decision_id":"e","input":${"[".repeat(999)}${"]".repeat(999)}}`;
    expect((await read("edge.ndjson", `${edge}\n[${edge}]\n`)).records).toHaveLength(1);
  });

  it("refuses a line over the cap and a gzip that inflates past its cap, each with one line", async () => {
    const limits = {
      maxLineBytes: 1024,
      maxDecompressedBytes: 64 * 1024,
      maxDepth: 1000,
      maxObjectBytes: 1024,
    };
    await expect(
      read("long.ndjson", `${JSON.stringify(event("ok"))}\n${"x".repeat(5000)}\n`, limits),
    ).rejects.toThrow(/long\.ndjson is refused: line 2 is longer than 1024 bytes/);
    const bomb = gzipSync(`${" ".repeat(500)}\n`.repeat(1000));
    expect(bomb.length).toBeLessThan(4096);
    await expect(read("bomb.gz", bomb, limits)).rejects.toThrow(
      /bomb\.gz is refused: it inflates past 65536 bytes/,
    );
    await expect(read("broken.gz", gzipSync("{}\n").subarray(0, 12), limits)).rejects.toThrow(
      /broken\.gz is not valid gzip/,
    );
  });

  it("a directory without files, or with a broken link, is an error; a link to a log is read", async () => {
    const empty = await mkdtemp(path.join(dir, "empty-"));
    await expect(readDecisions(empty, { cwd: dir }).next()).rejects.toThrow(/holds no files/);
    const linked = await mkdtemp(path.join(dir, "linked-"));
    await writeFile(path.join(dir, "target.ndjson"), `${JSON.stringify(event("l1"))}\n`);
    await symlink(path.join(dir, "target.ndjson"), path.join(linked, "app.log"));
    const records: RecordedDecision[] = [];
    for await (const record of readDecisions(linked, { cwd: dir })) records.push(record);
    expect(records.map((r) => r.decisionId)).toEqual(["l1"]);
    await symlink(path.join(dir, "gone.ndjson"), path.join(linked, "rotated.log"));
    await expect(readDecisions(linked, { cwd: dir }).next()).rejects.toThrow(
      /rotated\.log: it is a broken link/,
    );
  });

  it("keeps every decision it has seen through its growth; the same id saying something else is not a copy", () => {
    const seen = new SeenDecisions();
    const decision = (id: string, path = "/orders"): RecordedDecision => ({
      decisionId: id,
      path: "authz/allow",
      input: { request: { http: { method: "GET", path } } },
      result: true,
      hasResult: true,
      revisions: Object.assign(Object.create(null), { authz: "a".repeat(40) }),
    });
    const ids = [...Array.from({ length: 20_000 }, () => randomUUID()), ""];
    expect(ids.every((id) => seen.add(decision(id)))).toBe(true);
    expect(ids.some((id) => seen.add(decision(id)))).toBe(false);
    const first = ids[0] as string;
    // Another spelling is another id; another input, result or revision under the same id is another event.
    expect(seen.add(decision(first.toUpperCase()))).toBe(true);
    expect(seen.add(decision(first, "/admin"))).toBe(true);
    expect(seen.add({ ...decision(first), result: false })).toBe(true);
    expect(seen.add({ ...decision(first), hasResult: false, result: undefined })).toBe(true);
    expect(seen.add({ ...decision(first), input: undefined })).toBe(true);
  }, 30_000);
});
