import { describe, expect, it } from "vitest";
import { errorDecision, interpretResult } from "../../src/enforcer/decision.ts";
import { classifyDecision, flipOf } from "../../src/enforcer/decision-compare.ts";

const of = (result: unknown) => classifyDecision(interpretResult(result, true));

describe("comparing two decisions for one input, as impact and the shadow do", () => {
  it("names each flip", () => {
    expect(flipOf(of(true), of(true))).toBe("none");
    expect(flipOf(of(true), of(false))).toBe("allow_to_deny");
    expect(flipOf(of(false), of(true))).toBe("deny_to_allow");
    expect(flipOf(of(true), classifyDecision(errorDecision("down", "unreachable")))).toBe("to_error");
    expect(flipOf(classifyDecision(errorDecision("down", "unreachable")), of(false))).toBe("from_error");
    expect(flipOf(of(false), of({ allow: false, status: 401 }))).toBe("other");
  });

  it("compares headers whatever their order, and the message", () => {
    const headers = (first: string, second: string) => ({
      allow: true,
      headers: { [first]: "1", [second]: "2" },
    });
    expect(flipOf(of({ allow: true, headers: { a: "1", b: "2" } }), of(headers("b", "a")))).toBe("other");
    expect(
      flipOf(
        of({ allow: true, headers: { a: "1", b: "2" } }),
        of({ allow: true, headers: { b: "2", a: "1" } }),
      ),
    ).toBe("none");
    expect(flipOf(of({ allow: false, message: "x" }), of({ allow: false, message: "y" }))).toBe("other");
  });
});
