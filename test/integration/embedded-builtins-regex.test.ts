import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Differential, startDifferential, summarize } from "../helpers/differential.ts";

let engines: Differential;

beforeAll(async () => {
  engines = await startDifferential({
    find_n: "regex.find_n(c[0], c[1], c[2])",
    replace: "regex.replace(c[0], c[1], c[2])",
    template_match: "regex.template_match(c[0], c[1], c[2], c[3])",
  });
}, 120_000);

afterAll(async () => {
  await engines?.close();
});

const PATTERNS = [
  "a*",
  "a+",
  "[0-9]+",
  "^/api/v[0-9]+/",
  "(?i)bearer\\s+(\\S+)",
  "(\\w+)@(\\w+)\\.com",
  "(?P<user>[a-z]+):(?P<pass>[a-z]*)",
  "\\Aabc",
  "c\\z",
  "[[:alpha:]]+",
  "[[:digit:]]{2,3}",
  "\\Q.*\\E",
  "x*",
  "",
  ".",
  "é|ü",
  "\\-",
  "(",
  "[z-a]",
  "a{2}",
  "a{,2}",
  "x{",
  "}",
  "[a\\-z]+",
  "[]a]",
  // Read in one pass: an escaped backslash or a \Q…\E literal is never syntax again.
  "\\Q\\A\\E",
  "\\Qa-b\\E",
  "\\Q…\\E",
  "\\\\Qab",
  "\\Qa\\E+",
  "\\Q[:alpha:]\\E",
  "[[:alpha:]\\-]+",
  // Go's repeat limit: a count above 1000, or nested counts whose product is.
  "a{1001}",
  "a{1000}",
  "a{2,1001}",
  "x{1001,}",
  "(a{100}){11}",
  "(a{100}){10}",
  "(?:a{10}|b){101}",
  // (?U) swaps greedy and lazy.
  "(?U)a+",
  "(?U)a+?",
  "(?U)(a|b)*?c",
  "(?Ui)A{1,2}",
];
const SUBJECTS = [
  "",
  "baaab",
  "aaa",
  "/api/v12/users/42",
  "Bearer abc.def  bearer xyz",
  "alice@example.com, bob@test.com",
  "alice:secret bob: carol:x",
  "abcabc",
  "héllo wörld 🚀 émoji",
  "a.*b.*c",
  "123 4567 89",
  "\\A \\Qab a-b … [:alpha:] abc aaaa",
];

describe("regex.* in the embedded engine decide as OPA does", () => {
  it("agrees with opa eval on patterns, subjects, limits, templates and bad input", async () => {
    const findN: unknown[] = [];
    for (const pattern of PATTERNS) {
      for (const subject of SUBJECTS) for (const n of [-1, 0, 1, 2]) findN.push([pattern, subject, n]);
    }
    findN.push(["a", "aaa", 1.5], ["a", 5, -1], [5, "a", -1]);
    const replace: unknown[] = [];
    for (const pattern of PATTERNS) {
      for (const subject of SUBJECTS) {
        for (const template of ["<$0>", "[$1]", "$" + "{1}x", "$1x", "$$", "$", "$" + "{user}", "-$!-", ""]) {
          replace.push([subject, pattern, template]);
        }
      }
    }
    const templateMatch: unknown[] = [];
    for (const [template, open, close] of [
      ["urn:foo:{.*}", "{", "}"],
      ["urn:foo:<[a-z]+>:<[0-9]+>", "<", ">"],
      ["/api/{v[0-9]+}/users/{[0-9]+}", "{", "}"],
      ["a.b{x*}", "{", "}"],
      ["{a{b}c}", "{", "}"],
      ["unbalanced{", "{", "}"],
      ["unbalanced}", "{", "}"],
      ["{(}", "{", "}"],
      ["x{.*}", "{{", "}"],
      ["x{.*}", "{", ""],
    ]) {
      for (const subject of [
        "urn:foo:bar:baz",
        "urn:foo:abc:123",
        "/api/v2/users/7",
        "a.bxx",
        "aXbxx",
        "abc",
        "x",
        "",
      ]) {
        templateMatch.push([template, subject, open, close]);
      }
    }
    templateMatch.push([1, "a", "{", "}"]);
    const report = await engines.compare({ find_n: findN, replace, template_match: templateMatch });
    expect(summarize(report)).toEqual({});
    const opa = engines.lastOpaResults();
    expect(Object.values(opa.template_match ?? {})).toContain(true);
    expect(Object.values(opa.template_match ?? {})).toContain(false);
  }, 120_000);
});
