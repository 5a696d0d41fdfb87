import { describe, expect, it } from "vitest";
import {
  allocateBatch,
  QUEUED,
  readAnswer,
  viewOf,
  WRITTEN,
  writeAnswer,
} from "../../src/enforcer/batch-protocol.ts";

describe("the shared memory of a worker batch", () => {
  it("an answer written for one input is read back whole, and marks that input WRITTEN", () => {
    const view = viewOf(allocateBatch(3), 3);
    const answer = {
      ok: true as const,
      defined: true,
      result: { allow: true, headers: { "x-user": "ålice" } },
    };
    const next = writeAnswer(view, 1, 0, answer);
    expect(next).toBeGreaterThan(0);
    expect(Atomics.load(view.slots, 0)).toBe(QUEUED);
    expect(Atomics.load(view.slots, 1)).toBe(WRITTEN);
    expect(readAnswer(view, 1)).toEqual(answer);
    const second = { ok: false as const, message: "boom" };
    writeAnswer(view, 2, next, second);
    expect(readAnswer(view, 2)).toEqual(second);
    expect(readAnswer(view, 1)).toEqual(answer);
  });

  it("an answer that does not fit is refused (-1) and leaves the input unmarked, to travel with the return", () => {
    const view = viewOf(allocateBatch(1), 1);
    const huge = { ok: true as const, defined: true, result: "é".repeat(view.bytes.length) };
    expect(writeAnswer(view, 0, 0, huge)).toBe(-1);
    expect(Atomics.load(view.slots, 0)).toBe(QUEUED);
  });
});
