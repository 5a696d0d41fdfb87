import { constants, createHmac } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Differential, startDifferential, summarize } from "../helpers/differential.ts";
import {
  ALGS,
  type Alg,
  b64url,
  generateKeys,
  type Keys,
  pssSignature,
  signerFor,
  token,
} from "../helpers/jwt-corpus.ts";

const VERIFY = ALGS.map((alg) => `verify_${alg.toLowerCase()}`);

const CALLS: Record<string, string> = {
  decode: "io.jwt.decode(c)",
  decode_verify: "io.jwt.decode_verify(c[0], c[1])",
  ...Object.fromEntries(VERIFY.map((name) => [name, `io.jwt.${name}(c[0], c[1])`])),
};

// 2027-01-15T08:00:00Z, in seconds and nanoseconds (exact in a double, as OPA reads it).
const T = 1_800_000_000;
const T_NS = T * 1e9;
const FAR = 4_000_000_000;

let keys: Keys;
let engines: Differential;

beforeAll(async () => {
  keys = await generateKeys();
  engines = await startDifferential(CALLS);
}, 120_000);

afterAll(async () => {
  await engines?.close();
});

/** Tokens of every algorithm (or of `only`): valid, tampered, wrongly keyed; then unsigned and confused ones. */
function tokens(only?: Alg): unknown[] {
  const out: unknown[] = [];
  const claims = { sub: "alice", iss: "https://issuer.example", exp: FAR };
  for (const alg of ALGS) {
    const { key } = signerFor(keys, alg);
    const good = token({ alg, typ: "JWT" }, claims, key);
    out.push(good);
    if (only && only !== alg) continue;
    const [h, , s] = good.split(".");
    out.push(`${h}.${b64url({ ...claims, sub: "mallory" })}.${s}`);
    out.push(`${h}.${b64url(claims)}.`);
    out.push(token({ alg, typ: "JWT", kid: "k1" }, claims, key));
    out.push(token({ alg, kid: "other" }, claims, key));
    if (alg.startsWith("RS") || alg.startsWith("PS"))
      out.push(token({ alg }, claims, keys.rsaOther.privateKey));
    if (alg.startsWith("HS")) out.push(token({ alg }, claims, "wrong-secret"));
  }
  out.push(token({ alg: "ES256" }, {}, keys.p384.privateKey, "ES256"));
  out.push(token({ alg: "ES384" }, {}, keys.p256.privateKey, "ES384"));
  out.push(`${b64url({ alg: "none", typ: "JWT" })}.${b64url(claims)}.`);
  out.push(`${b64url({ alg: "none" })}.${b64url(claims)}.${b64url("sig")}`);
  // Algorithm confusion: an HS256 token keyed with the RSA public key's PEM as the HMAC secret.
  out.push(token({ alg: "HS256" }, claims, keys.rsa.pem));
  out.push(token({ alg: "HS256", crit: ["exp"] }, claims, keys.secret));
  out.push(token({ alg: "HS256", crit: ["b64"], b64: false }, claims, keys.secret));
  out.push(token({ alg: "HS256", crit: [] }, claims, keys.secret));
  out.push(token({ typ: "JWT" }, claims, keys.secret, "HS256"));
  out.push(token({ alg: 256 }, claims, keys.secret, "HS256"));
  out.push(token({ alg: "HS256", enc: "A128GCM" }, claims, keys.secret));
  return out;
}

function malformed(): unknown[] {
  return [
    "",
    "abc",
    "a.b",
    "a.b.c.d",
    "!!.b.c",
    `${b64url("not json")}.${b64url({})}.`,
    `${b64url([1])}.${b64url({})}.`,
    `${b64url({ alg: "HS256" })}.${b64url("[1,2]")}.`,
    `${b64url({ alg: "HS256" })}.${b64url({ a: 1 })}x.`,
    `${b64url({ alg: "HS256" })}.${b64url({ a: 1 })}.a`,
    `${b64url({ alg: "HS256" })}==.${b64url({ a: 1 })}.`,
    `${Buffer.from(JSON.stringify({ alg: "HS256" })).toString("base64")}.${b64url({ a: 1 })}.`,
    `${b64url({ alg: "HS256" })}.${b64url('{"a":1} trailing')}.`,
    `${b64url({ alg: "HS256" })}.${b64url('{"a":1,"a":2}')}.`,
    `${b64url({ alg: "HS256" })}.${b64url('{"__proto__":{"admin":true}}')}.`,
    `${b64url({ alg: "HS256", cty: "JWT" })}.${b64url(`"${token({ alg: "HS256" }, { inner: true }, keys.secret)}"`)}.`,
    42,
    null,
    ["a.b.c"],
  ];
}

/** Every way a policy hands over a key for `alg`: PEM, certificate, JWK, JWKS with and without alg/kid, junk. */
function keyArguments(alg: Alg): unknown[] {
  const out: unknown[] = [keys.secret, "wrong-secret", keys.rsa.pem, "", 5, "not a key", "{}", '{"keys": 1}'];
  if (alg.startsWith("HS")) return out;
  const own = signerFor(keys, alg).pair ?? keys.rsa;
  const other = own === keys.rsa ? keys.p256 : keys.rsaOther;
  for (const pair of [own, other]) {
    out.push(pair.pem, pair.cert, JSON.stringify(pair.jwk));
    out.push(JSON.stringify({ keys: [{ ...pair.jwk, kid: "k1" }] }));
  }
  out.push(
    `${own.pem}trailing`,
    `preamble\n${own.pem}`,
    `${own.pem}\n`,
    own.pem.replace("PUBLIC KEY", "RSA PUBLIC KEY"),
  );
  out.push(
    JSON.stringify({
      keys: [
        { ...other.jwk, kid: "k1" },
        { ...own.jwk, kid: "k2" },
      ],
    }),
  );
  out.push(JSON.stringify({ keys: [{ ...other.jwk }, { ...own.jwk }] }));
  out.push(
    JSON.stringify({ keys: [{ ...own.jwk, alg }] }),
    JSON.stringify({ keys: [{ ...own.jwk, alg: "HS256" }] }),
  );
  out.push(JSON.stringify({ keys: [{ ...own.jwk, alg: "XX999" }] }));
  out.push(JSON.stringify({ keys: [{ ...own.jwk, alg: "RSA-OAEP" }, own.jwk] }));
  out.push(JSON.stringify({ keys: [{ kty: "oct", k: Buffer.from(keys.secret).toString("base64url") }] }));
  out.push(JSON.stringify({ keys: [own.privateKey.export({ format: "jwk" })] }));
  return out;
}

function decodeVerifyCases(): unknown[] {
  const now = { alg: "RS256", typ: "JWT" };
  const rs = keys.rsa.privateKey;
  const cert = keys.rsa.cert;
  const claims = [
    { sub: "a" },
    { sub: "a", exp: FAR },
    { sub: "a", exp: 1000 },
    { exp: T },
    { exp: T + 1 },
    { exp: T + 0.5 },
    { nbf: T },
    { nbf: T + 1 },
    { nbf: T - 0.5 },
    { exp: "soon" },
    { nbf: null },
    { iss: "https://issuer.example" },
    { iss: "https://other.example" },
    { aud: "api" },
    { aud: ["web", "api"] },
    { aud: ["web"] },
    { aud: 3 },
  ];
  const constraints: unknown[] = [
    { cert },
    { cert: keys.rsa.pem },
    { cert: JSON.stringify({ keys: [keys.rsa.jwk] }) },
    { cert: JSON.stringify({ keys: [{ ...keys.rsa.jwk, kid: "k1", alg: "RS256" }] }) },
    { cert, time: T_NS },
    { cert, time: T_NS, iss: "https://issuer.example" },
    { cert, time: T_NS, aud: "api" },
    { cert, alg: "RS256" },
    { cert, alg: "ES256" },
    { cert: keys.rsaOther.cert },
    { secret: keys.secret },
    { secret: keys.secret, cert },
    {},
    { cert, time: -1 },
    { cert, time: "now" },
    { cert, iss: 1 },
    { cert, unknown: true },
    { cert: 7 },
    "not an object",
  ];
  const out: unknown[] = [];
  for (const payload of claims) {
    const signed = token(now, payload, rs);
    for (const c of constraints) out.push([signed, c]);
  }
  for (const alg of ALGS) {
    const { key, pair } = signerFor(keys, alg);
    const signed = token({ alg }, { sub: "b", exp: FAR }, key);
    out.push([signed, pair ? { cert: pair.cert } : { secret: keys.secret }]);
    out.push([signed, pair ? { cert: pair.pem } : { secret: "wrong" }]);
    out.push([signed, pair ? { cert: JSON.stringify({ keys: [pair.jwk] }) } : { cert }]);
    out.push([signed, { cert: keys.p256.cert }]);
    out.push([signed, { secret: keys.secret, alg }]);
  }
  for (const signed of tokens()) out.push([signed, { secret: keys.secret }], [signed, { cert }]);
  for (const bad of malformed()) out.push([bad, { secret: keys.secret }]);
  const inner = token({ alg: "HS256" }, { sub: "inner", exp: FAR }, keys.secret);
  out.push([token({ alg: "HS256", cty: "JWT" }, inner, keys.secret), { secret: keys.secret }]);
  out.push([token({ alg: "HS256", cty: "jwt" }, inner, keys.secret), { secret: keys.secret }]);
  out.push([token({ alg: "HS256", kid: "k1" }, { a: 1 }, keys.secret), { secret: keys.secret }]);
  return out;
}

describe("io.jwt.* in the embedded engine decide as OPA does", () => {
  it("agrees with opa eval on every token, key and constraint of the corpus", async () => {
    const corpus: Record<string, unknown[]> = {
      decode: [...tokens(), ...malformed()],
      decode_verify: decodeVerifyCases(),
    };
    ALGS.forEach((alg, i) => {
      const cases: unknown[] = [];
      for (const t of [...tokens(alg), ...malformed().slice(0, 10)])
        for (const k of keyArguments(alg)) cases.push([t, k]);
      corpus[VERIFY[i] as string] = cases;
    });
    const report = await engines.compare(corpus);
    expect(summarize(report)).toEqual({});
    // The corpus is not vacuous: each verifier accepts some pairs and refuses others, decode_verify too.
    const opa = engines.lastOpaResults();
    for (const family of VERIFY) {
      const values = Object.values(opa[family] ?? {});
      expect(values, family).toContain(true);
      expect(values, family).toContain(false);
    }
    const decided = Object.values(opa.decode_verify ?? {}) as [boolean][];
    expect(decided.some(([valid]) => valid)).toBe(true);
    expect(decided.some(([valid]) => !valid)).toBe(true);
    expect(Object.keys(opa.decode_verify ?? {}).length).toBeLessThan(corpus.decode_verify?.length ?? 0);
  }, 120_000);

  it("agrees with opa eval on empty and private JWKs, PSS salt lengths and sub-double claim instants", async () => {
    const claims = { sub: "a", exp: FAR };
    const data = `${b64url({ alg: "HS256" })}.${b64url(claims)}`;
    const emptyKeyed = `${data}.${createHmac("sha256", Buffer.alloc(0)).update(data).digest("base64url")}`;
    const rsa = keys.rsa.jwk;
    const octs = ["", "=", "A", "!!!!", "AQ=", "AQ", "AQ==", "_w", "/w=="].map((k) => ({ kty: "oct", k }));
    const decodeVerify: unknown[] = [];
    for (const oct of octs) {
      decodeVerify.push([emptyKeyed, { cert: JSON.stringify(oct) }]);
      decodeVerify.push([emptyKeyed, { cert: JSON.stringify({ keys: [oct, rsa] }) }]);
      decodeVerify.push([
        token({ alg: "RS256" }, claims, keys.rsa.privateKey),
        { cert: JSON.stringify({ keys: [oct, rsa] }) },
      ]);
    }
    const ps: unknown[] = [];
    for (const bits of ["256", "384", "512"]) {
      const head = `${b64url({ alg: `PS${bits}` })}.${b64url(claims)}`;
      for (const salt of [constants.RSA_PSS_SALTLEN_MAX_SIGN, constants.RSA_PSS_SALTLEN_DIGEST, 0, 20]) {
        const signed = `${head}.${pssSignature(bits, keys.rsa.privateKey, head, salt).toString("base64url")}`;
        decodeVerify.push([signed, { cert: keys.rsa.pem }], [signed, { cert: JSON.stringify(rsa) }]);
        if (bits === "256") ps.push([signed, keys.rsa.pem]);
      }
    }
    for (const alg of ["RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA"] as Alg[]) {
      const { key, pair } = signerFor(keys, alg);
      const priv = (pair ?? keys.rsa).privateKey.export({ format: "jwk" });
      const signed = token({ alg }, claims, key);
      decodeVerify.push(
        [signed, { cert: JSON.stringify(priv) }],
        [signed, { cert: JSON.stringify({ keys: [priv] }) }],
      );
      // Another key's d, one too short, all zeros, one zero too long.
      const scalar = Buffer.from(String(priv.d), "base64url");
      const foreign = pair === keys.ed25519 ? keys.rsa : pair === keys.p256 ? keys.p384 : keys.p256;
      const otherD = String(foreign.privateKey.export({ format: "jwk" }).d);
      const sameLength = Buffer.concat([Buffer.from(otherD, "base64url"), scalar]).subarray(0, scalar.length);
      for (const d of [
        sameLength,
        Buffer.from([1]),
        Buffer.alloc(scalar.length),
        Buffer.concat([Buffer.alloc(1), scalar]),
      ])
        decodeVerify.push([signed, { cert: JSON.stringify({ ...priv, d: d.toString("base64url") }) }]);
    }
    const instants = [
      "1767225600.0000000001",
      "1767225600.000000000000000000000000001",
      "17672256000000000001e-10",
    ];
    instants.push(
      "1767225600",
      "1767225599.9999999999999999999999",
      "1.7672256e9",
      "1767225600.5",
      "1e400",
      "-0",
    );
    // The claim among nested objects, strings with braces and quotes, and repeated keys (the last one wins).
    const payloads = [
      (c: string, v: string) => `{"${c}": ${v}, "x": {"${c}": 1}}`,
      (c: string, v: string) => ` { "s": "}\\"{", "x" : [{"${c}": 1}], "${c}" :${v} } `,
      (c: string, v: string) => `{"${c}": 1, "${c}": ${v}}`,
      (c: string, v: string) => `{"${c}": ${v}, "${c}": 1}`,
      (c: string, v: string) => `{"\u0065xp": 7, "${c}": ${v}}`,
    ];
    for (const claim of ["exp", "nbf"])
      for (const instant of instants)
        for (const payload of payloads)
          for (const time of [1_767_225_600e9, 1_767_225_600.5e9]) {
            const signed = token({ alg: "HS256" }, payload(claim, instant), keys.secret);
            decodeVerify.push([signed, { secret: keys.secret, time }]);
          }
    const corpus = { decode_verify: decodeVerify, verify_ps256: ps };
    const report = await engines.compare(corpus);
    expect(summarize(report)).toEqual({});
    const opa = engines.lastOpaResults();
    // OPA refuses the empty key (an undefined call) and accepts a private JWK and an exact-but-later exp.
    expect(opa.decode_verify?.["0"]).toBeUndefined();
    expect(Object.values(opa.decode_verify ?? {}).filter((r) => (r as [boolean])[0]).length).toBeGreaterThan(
      20,
    );
    expect(Object.values(opa.verify_ps256 ?? {})).toContain(true);
  }, 120_000);

  it("fails the evaluation where OPA itself panics (a non-string cty or iss), never deciding", async () => {
    const cases: Record<string, unknown[]>[] = [
      { decode: [`${b64url({ alg: "HS256", cty: 7 })}.${b64url({})}.`] },
      {
        decode_verify: [
          [
            token({ alg: "HS256" }, { iss: 7 }, keys.secret),
            { secret: keys.secret, iss: "https://issuer.example" },
          ],
        ],
      },
    ];
    for (const corpus of cases) {
      const { opa, embedded } = await engines.evaluateBoth(corpus);
      expect(opa, JSON.stringify(corpus)).toBeInstanceOf(Error);
      expect(embedded, JSON.stringify(corpus)).toBeInstanceOf(Error);
    }
  });
});
