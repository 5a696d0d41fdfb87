import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { DigestTable } from "../../src/impact/digest-table.ts";

function keyOf(text: string): Uint32Array {
  const bytes = createHash("sha256").update(text).digest();
  return new Uint32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + 16));
}

describe("DigestTable", () => {
  it("keeps each key's first value through its growth, the zero key too", () => {
    const table = new DigestTable();
    // 64 shards of 16 slots to start: 20,000 keys double each shard several times.
    const keys = Array.from({ length: 20_000 }, (_, i) => keyOf(`k${i}`));
    expect(keys.filter((key, i) => !table.add(key, i))).toEqual([]);
    expect(table.add(new Uint32Array(4), 7)).toBe(true);
    // A value is never replaced.
    expect(table.add(keyOf("k5"), 99)).toBe(false);
    expect(table.add(new Uint32Array(4), 8)).toBe(false);
    expect(keys.filter((key, i) => table.get(key) !== i)).toEqual([]);
    expect(table.get(new Uint32Array(4))).toBe(7);
    expect(table.get(keyOf("absent"))).toBeUndefined();
    expect(table.size).toBe(keys.length + 1);
  }, 30_000);

  it("as a set keeps no values and answers 0 for a key it holds", () => {
    const table = new DigestTable({ set: true });
    for (let i = 0; i < 5_000; i++) table.add(keyOf(`k${i}`), 12);
    expect(table.get(keyOf("k4999"))).toBe(0);
    expect(table.get(keyOf("k5000"))).toBeUndefined();
  });
});
