import { describe, expect, it } from "vitest";
import { FailureError, formatError, UserError } from "../../src/errors.ts";
import { errorAnnotation, markdownTable } from "../../src/github.ts";

describe("error lines", () => {
  it("formats what went wrong and how to fix it on one line", () => {
    expect(formatError(new UserError("opa not found", "install it"))).toBe(
      "policyship: opa not found — install it",
    );
    expect(formatError(new FailureError("2 tests failed\nsee above"))).toBe(
      "policyship: 2 tests failed; see above",
    );
  });

  it("asks for a bug report on anything unexpected", () => {
    expect(formatError(new TypeError("x is undefined"))).toBe(
      "policyship: internal error: x is undefined — please report it with the output of --verbose",
    );
  });

  it("carries the contract's exit codes", () => {
    expect(new UserError("x").exitCode).toBe(2);
    expect(new FailureError("x").exitCode).toBe(1);
  });
});

describe("GitHub workflow commands", () => {
  it("escapes properties and data of an ::error annotation", () => {
    expect(
      errorAnnotation({ file: "policies/a,b.rego", line: 7, title: "pkg: x", message: "50%\nfailed" }),
    ).toBe("::error file=policies/a%2Cb.rego,line=7,title=pkg%3A x::50%25%0Afailed");
  });

  it("renders a markdown table with pipes escaped", () => {
    expect(markdownTable(["a", "b"], [["x|y", "z"]])).toBe("| a | b |\n| --- | --- |\n| x\\|y | z |");
  });
});
