import { describe, expect, it } from "vitest";
import { FailureError, formatError, UserError } from "../../src/errors.ts";
import {
  errorAnnotation,
  markdownBlock,
  markdownCode,
  markdownTable,
  markdownText,
} from "../../src/github.ts";
import { printable } from "../../src/printable.ts";

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

  it("shows a quoted input's control characters instead of sending them to the terminal", () => {
    expect(formatError(new FailureError("opa said \u001b[2J\u001b[32mall good\rfailed"))).toBe(
      "policyship: opa said \\u001b[2J\\u001b[32mall good\\u000dfailed",
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

describe("text from outside", () => {
  it("printable shows escapes, carriage returns and bidi overrides as \\u escapes, and caps the length", () => {
    expect(printable("a\u001b[31mb\rc\u202ed\u0085e")).toBe("a\\u001b[31mb\\u000dc\\u202ed\\u0085e");
    expect(printable("/users/42 ünïcode ok")).toBe("/users/42 ünïcode ok");
    expect(printable("x".repeat(20), 5)).toBe("xxxxx…");
    expect(printable(undefined)).toBe("");
  });

  it("markdownText cannot open a link, an image, an HTML tag or a code span, or end a table cell", () => {
    const hostile =
      "![x](https://attacker.example/p.png) [approve](https://attacker.example) <img src=x> `code` a|b";
    const shown = markdownText(hostile);
    expect(shown).toBe(
      "!\\[x\\](https:\u2060//attacker.example/p.png) \\[approve\\](https:\u2060//attacker.example) \\<img src=x\\> \\`code\\` a\\|b",
    );
    expect(markdownText("line one\nline two")).toBe("line one line two");
    expect(markdownTable(["path"], [["/x\n| injected | row |"]])).toBe(
      "| path |\n| --- |\n| /x \\| injected \\| row \\| |",
    );
  });

  it("markdownBlock's fence outlasts any fence inside the text", () => {
    expect(markdownBlock("a: 1", "yaml")).toBe("```yaml\na: 1\n```");
    expect(markdownBlock("url: https://x/```\n[link](https://attacker.example)", "yaml")).toBe(
      "````yaml\nurl: https://x/```\n[link](https://attacker.example)\n````",
    );
  });

  it("markdownCode fences past every run of backticks inside", () => {
    expect(markdownCode("GET /a")).toBe("`GET /a`");
    expect(markdownCode("GET /a` <b>")).toBe("`` GET /a` <b> ``");
    expect(markdownCode("x```y")).toBe("```` x```y ````");
    expect(markdownCode("a\nb")).toBe("`a b`");
  });
});
