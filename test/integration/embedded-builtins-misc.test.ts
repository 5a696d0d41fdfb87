import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Differential, startDifferential, summarize } from "../helpers/differential.ts";

const CALLS: Record<string, string> = {
  md5: "crypto.md5(c)",
  sha1: "crypto.sha1(c)",
  sha256: "crypto.sha256(c)",
  hmac_md5: "crypto.hmac.md5(c[0], c[1])",
  hmac_sha1: "crypto.hmac.sha1(c[0], c[1])",
  hmac_sha256: "crypto.hmac.sha256(c[0], c[1])",
  hmac_sha512: "crypto.hmac.sha512(c[0], c[1])",
  hmac_equal: "crypto.hmac.equal(c[0], c[1])",
  base64url_encode_no_pad: "base64url.encode_no_pad(c)",
  hex_encode: "hex.encode(c)",
  hex_decode: "hex.decode(c)",
  urlquery_encode: "urlquery.encode(c)",
  urlquery_decode: "urlquery.decode(c)",
  urlquery_encode_object: "urlquery.encode_object(c)",
  urlquery_decode_object: "urlquery.decode_object(c)",
  any_prefix_match: "strings.any_prefix_match(c[0], c[1])",
  any_suffix_match: "strings.any_suffix_match(c[0], c[1])",
  strings_count: "strings.count(c[0], c[1])",
  index_of_n: "indexof_n(c[0], c[1])",
  quote_meta: "glob.quote_meta(c)",
  range_step: "numbers.range_step(c[0], c[1], c[2])",
  units_parse: "units.parse(c)",
  units_parse_bytes: "units.parse_bytes(c)",
  semver_is_valid: "semver.is_valid(c)",
  semver_compare: "semver.compare(c[0], c[1])",
  cidr_is_valid: "net.cidr_is_valid(c)",
  uuid_rfc4122: "uuid.rfc4122(c)",
  marshal_with_options: "json.marshal_with_options(c[0], c[1])",
  marshal_as_opa: "json.marshal_with_options(c, {})",
};

let engines: Differential;

beforeAll(async () => {
  engines = await startDifferential(CALLS);
}, 120_000);

afterAll(async () => {
  await engines?.close();
});

const TEXTS: unknown[] = [
  "",
  "hello",
  "héllo wörld",
  "emoji 🚀 and tabs\t",
  "a+b c&d=e/f?g#h%i~j",
  "<script>",
  "\u0000nul",
  5,
  null,
  ["x"],
];
const PAIRS = (xs: unknown[], ys: unknown[]) => xs.flatMap((x) => ys.map((y) => [x, y]));
const SEMVERS = [
  "1.2.3",
  "v1.2.3",
  "01.2.3",
  "1.2",
  "1.2.3-alpha",
  "1.2.3-alpha.1",
  "1.2.3-01",
  "1.2.3-alpha.beta+build.5",
  "1.2.3+build",
  "1.2.3-0",
  "10.0.0",
  "=1.2.3",
  " 1.2.3",
  "1.2.3 ",
  "V1.2.3",
  "",
  3,
];

// Invalid UTF-8: Go writes U+FFFD per byte that starts no valid sequence, WHATWG one per maximal prefix.
const BROKEN_UTF8 = ["%E2%80", "%ff%fe", "%E2%80%41", "%F0%9F%98", "%C3%A9%ff", "%ED%A0%80", "%F4%90%80%80"];
BROKEN_UTF8.push(
  "%C0%80",
  "%E0%80%80",
  "%F0%80%80%80",
  "%E2%82%AC",
  "%F0%9F%98%80x",
  "%80",
  "%C2",
  "%EF%BF%BD%E2",
);

describe("crypto, encoding, strings, units, semver and net built-ins decide as OPA does", () => {
  it("agrees with opa eval on the whole corpus", async () => {
    const corpus: Record<string, unknown[]> = {
      md5: TEXTS,
      sha1: TEXTS,
      sha256: TEXTS,
      hmac_md5: PAIRS(TEXTS, ["key", "", "ключ", 1]),
      hmac_sha1: PAIRS(TEXTS, ["key", ""]),
      hmac_sha256: PAIRS(TEXTS, ["key", "", "ключ"]),
      hmac_sha512: PAIRS(TEXTS, ["key", ""]),
      hmac_equal: PAIRS(["abc", "abd", "", "héllo", 1], ["abc", "ab", "", "héllo", 1]),
      base64url_encode_no_pad: TEXTS,
      hex_encode: TEXTS,
      hex_decode: [
        "",
        "68656c6c6f",
        "68656C6C6F",
        "686",
        "zz",
        "c3a9",
        "ff",
        5,
        "e280",
        "f09f98",
        "eda080",
        "e28041",
      ],
      urlquery_encode: TEXTS,
      urlquery_decode: [
        "a+b%20c",
        "%zz",
        "%",
        "%4",
        "100%25",
        "caf%C3%A9",
        "%ff",
        "plain",
        5,
        ...BROKEN_UTF8,
      ],
      urlquery_encode_object: [
        { a: "1", b: ["2", "3"] },
        { "z k": "v w", a: "é" },
        {},
        { a: 1 },
        { a: ["1", 2] },
        { a: [] },
        "x",
      ],
      urlquery_decode_object: ["a=1&b=2&a=3", "a", "=x", "&&a=1&", "a=1;b=2", "a=%zz", "k%20=v+w", "", 5],
      any_prefix_match: PAIRS(["abc", ["abc", "xyz"], [], 5], ["a", ["x", "q"], [], "", [5], 5]),
      any_suffix_match: PAIRS(["abc", ["abc", "xyz"], []], ["c", ["z", "q"], [], ""]),
      strings_count: PAIRS(["", "aaaa", "héhé", "abcabc", 5], ["", "a", "aa", "é", "abc", 5]),
      index_of_n: PAIRS(["aaaa", "héhé", "abcabc", ""], ["a", "aa", "é", "abc", "", 5]),
      quote_meta: ["*?[]{}\\!a.b", "", "plain", "a**b", 5],
      range_step: [
        [1, 10, 3],
        [10, 1, 3],
        [1, 1, 1],
        [1, 2, 0],
        [1, 2, -1],
        [1.5, 3, 1],
        [0, 5, 1.5],
        ["1", 3, 1],
      ],
      units_parse: [
        "10",
        "10K",
        "10k",
        "10Ki",
        "10KI",
        "1.5m",
        "1.5M",
        "1.5Mi",
        "1.5mi",
        "2G",
        "2Gi",
        "1T",
        "1Ti",
        "3P",
        "3Pi",
        "1000000E",
        "4Ei",
        '"10K"',
        "10 K",
        "K",
        "",
        "-1",
        "1.2.3",
        ".5",
        "5.",
        "10X",
        "0.001m",
        "1e3",
        "1e",
        "1e3K",
        "-1.5K",
        "1-2",
        "--1",
        "+1",
        "1e-3",
        "1.5e2m",
        "2ei",
        "1e3e",
        "1ex",
        5,
      ],
      units_parse_bytes: [
        "10",
        "10KB",
        "10kb",
        "10K",
        "10KiB",
        "10Ki",
        "1.5MB",
        "1.5Mi",
        "2.75GiB",
        "1TB",
        "1EiB",
        "0.5",
        '"5MB"',
        "5 MB",
        "MB",
        "",
        "1.2.3",
        "10XB",
        "-1.5K",
        "1e-3",
        "1.5e2m",
        "1e",
        5,
      ],
      semver_is_valid: SEMVERS,
      semver_compare: PAIRS(SEMVERS, ["1.2.3", "1.2.3-alpha", "2.0.0", "v1.2.3", "bad"]),
      marshal_with_options: PAIRS(
        [
          { b: 1, a: [2, { d: null, c: "<&>" }], é: true, "😀": "x", Z: {} },
          [],
          {},
          "x\u2028\t\u0001",
          1.5,
          [1, [2]],
        ],
        [
          {},
          { pretty: true },
          { pretty: false },
          { indent: "  " },
          { prefix: "> " },
          { prefix: "#", indent: "\t", pretty: true },
          { indent: "  ", pretty: false },
          { pretty: "yes" },
          { indent: 2 },
          { other: 1 },
          5,
        ],
      ),
      marshal_as_opa: [{ b: 1, a: 2, c: { z: 1, y: "<&>" } }, { zz: 1, a: 1 }, ["b", "a"], "\u007f\b\f"],
      cidr_is_valid: [
        "10.0.0.0/8",
        "10.0.0.0/33",
        "10.0.0.0",
        "10.0.0.1/32",
        "010.0.0.0/8",
        "::1/128",
        "::1/129",
        "2001:db8::/32",
        "fe80::1%eth0/64",
        "::ffff:10.0.0.1/120",
        "10.0.0.0/08",
        "10.0.0.0/-1",
        "1.2.3.4/ 8",
        "",
        "/8",
        5,
        null,
      ],
    };
    const report = await engines.compare(corpus);
    expect(summarize(report)).toEqual({});
    const opa = engines.lastOpaResults();
    for (const name of Object.keys(corpus))
      expect(Object.keys(opa[name] ?? {}).length, name).toBeGreaterThan(0);
  }, 120_000);

  it("gives uuid.rfc4122 one random v4 UUID per key within an evaluation, and new ones in the next", async () => {
    const keys = { uuid_rfc4122: ["a", "b", "a", "b", 5] };
    const first = (await engines.evaluateBoth(keys)).embedded as { uuid_rfc4122: Record<string, string> };
    const second = (await engines.evaluateBoth(keys)).embedded as { uuid_rfc4122: Record<string, string> };
    const v4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    expect(Object.keys(first.uuid_rfc4122)).toEqual(["0", "1", "2", "3"]);
    for (const uuid of Object.values(first.uuid_rfc4122)) expect(uuid).toMatch(v4);
    expect(first.uuid_rfc4122["0"]).toBe(first.uuid_rfc4122["2"]);
    expect(first.uuid_rfc4122["1"]).toBe(first.uuid_rfc4122["3"]);
    expect(first.uuid_rfc4122["0"]).not.toBe(first.uuid_rfc4122["1"]);
    expect(second.uuid_rfc4122["0"]).not.toBe(first.uuid_rfc4122["0"]);
  });
});
