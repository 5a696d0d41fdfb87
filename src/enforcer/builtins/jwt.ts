/**
 * io.jwt.decode, io.jwt.verify_* and io.jwt.decode_verify with OPA's semantics: a malformed token or key is
 * an error (an undefined call), a bad signature or an unmet constraint is `false` / `[false, {}, {}]`.
 * https://github.com/open-policy-agent/opa/blob/main/v1/topdown/tokens.go
 */
import { evaluationTimeNs } from "./clock.ts";
import { compareDecimalTexts, topLevelNumberTexts } from "./decimal.ts";
import { readVerificationKeys, type VerificationKey } from "./jwt-keys.ts";
import { type SignatureFamily, verifyHmac, verifyJws, verifyWithGoCrypto } from "./jwt-signature.ts";
import type { Builtin } from "./types.ts";
import {
  bytesToString,
  decodeBase64Url,
  fail,
  halt,
  isObject,
  objectOperand,
  parseJson,
  stringOperand,
} from "./values.ts";

interface Token {
  header: string;
  payload: string;
  signature: string;
}

type JsonObject = Record<string, unknown>;

function splitToken(value: unknown): Token {
  const text = stringOperand(value, 1);
  if (!text.includes(".")) fail("encoded JWT had no period separators");
  const parts = text.split(".");
  if (parts.length !== 3) fail(`encoded JWT must have 3 sections, found ${parts.length}`);
  return { header: parts[0] as string, payload: parts[1] as string, signature: parts[2] as string };
}

function jsonObject(bytes: Buffer): JsonObject {
  const value = parseJson(bytesToString(bytes));
  if (!isObject(value)) fail("decoded JSON type was not an Object");
  return value;
}

/**
 * A payload whose top-level numbers keep their JSON text, so exp and nbf compare exactly as OPA compares
 * them (1767225600.0000000001 is later than 1767225600, though both are the same double).
 */
function payloadWithNumberTexts(bytes: Buffer): { payload: JsonObject; texts: Map<string, string> } {
  const text = bytesToString(bytes);
  const payload = jsonObject(bytes);
  return { payload, texts: topLevelNumberTexts(text) };
}

/** OPA's ast.Compare of the time constraint (float64(ns) / 1e9, as a FloatNumberTerm) with a claim. */
function compareTimeWith(timeNs: number, claim: string, texts: Map<string, string>, value: number): number {
  return compareDecimalTexts(String(timeNs / 1e9), texts.get(claim) ?? String(value));
}

function decodeHeader(token: Token): JsonObject {
  const header = jsonObject(decodeBase64Url(token.header));
  if ("enc" in header) fail("JWT is a JWE object, which is not supported");
  return header;
}

function signingInput(token: Token): Buffer {
  return Buffer.from(`${token.header}.${token.payload}`, "utf8");
}

interface ParsedHeader {
  alg: string;
  kid: string;
  cty: string;
  valid: boolean;
}

/** OPA's parseTokenHeader and tokenHeader.valid. */
function parseHeader(header: JsonObject): ParsedHeader {
  const strings: Record<string, string> = { alg: "", kid: "", typ: "", cty: "" };
  let critical: Set<string> | undefined;
  const unknown: string[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name in strings) {
      if (typeof value !== "string") fail(`${name}: must be a string`);
      strings[name] = value;
    } else if (name === "crit") {
      if (!Array.isArray(value)) fail("crit: must be a list");
      critical = new Set();
      for (const entry of value) {
        if (typeof entry !== "string") break;
        critical.add(entry);
      }
      if (critical.size === 0) fail("crit: must be a nonempty list");
    } else {
      unknown.push(name);
    }
  }
  const valid = strings.alg !== "" && !unknown.some((name) => critical?.has(name));
  return { alg: strings.alg as string, kid: strings.kid as string, cty: strings.cty as string, valid };
}

function decode(jwt: unknown): unknown[] {
  const token = splitToken(jwt);
  const header = decodeHeader(token);
  const payloadBytes = decodeBase64Url(token.payload);
  if ("cty" in header) {
    if (typeof header.cty !== "string") halt("io.jwt.decode: a cty header that is not a string");
    if (header.cty === "JWT") {
      return decode(bytesToString(payloadBytes).replace(/^["']+|["']+$/g, ""));
    }
  }
  const payload = jsonObject(payloadBytes);
  const signature = decodeBase64Url(token.signature).toString("hex");
  return [header, payload, signature];
}

function firstKeyWith(kid: string, keys: VerificationKey[]): VerificationKey | undefined {
  return keys.find((key) => key.kid === kid);
}

/** OPA's builtinJWTVerify: the key of a matching kid alone, else any key whose alg (if any) matches. */
function verifyAsymmetric(family: SignatureFamily, bits: string): Builtin {
  return (jwt, keyText) => {
    const token = splitToken(jwt);
    const keys = readVerificationKeys(stringOperand(keyText, 2));
    const signature = decodeBase64Url(token.signature);
    const header = parseHeader(decodeHeader(token));
    const data = signingInput(token);
    const check = (key: VerificationKey["key"]) => verifyWithGoCrypto(family, bits, key, data, signature);
    if (header.kid !== "") {
      const key = firstKeyWith(header.kid, keys);
      if (key) return check(key.key);
    }
    return keys.some((key) => (key.alg === "" || key.alg === header.alg) && check(key.key));
  };
}

function verifyHs(bits: string): Builtin {
  return (jwt, secret) => {
    stringOperand(jwt, 1);
    const key = stringOperand(secret, 2);
    const token = splitToken(jwt);
    return verifyHmac(bits, key, signingInput(token), decodeBase64Url(token.signature));
  };
}

interface Constraints {
  secret: string;
  alg: string;
  iss: string;
  aud: string;
  keys: VerificationKey[] | undefined;
  timeNs: number;
}

function stringConstraint(name: string, value: unknown): string {
  if (typeof value !== "string") fail(`${name} constraint: must be a string`);
  return value;
}

function timeConstraint(value: unknown): number {
  if (typeof value !== "number") fail("token time constraint: must be a number");
  if (value < 0) fail("token time constraint: must not be negative");
  return value;
}

function parseConstraints(value: unknown): Constraints {
  const object = objectOperand(value, 2);
  const constraints: Constraints = { secret: "", alg: "", iss: "", aud: "", keys: undefined, timeNs: -1 };
  for (const [name, entry] of Object.entries(object)) {
    if (name === "cert") constraints.keys = readVerificationKeys(stringConstraint("cert", entry));
    else if (name === "secret" || name === "alg" || name === "iss" || name === "aud") {
      constraints[name] = stringConstraint(name, entry);
    } else if (name === "time") constraints.timeNs = timeConstraint(entry);
    else fail(`unknown token validation constraint: ${name}`);
  }
  if (constraints.timeNs === -1) constraints.timeNs = Number(evaluationTimeNs());
  const keyKinds = (constraints.keys ? 1 : 0) + (constraints.secret !== "" ? 1 : 0);
  if (keyKinds > 1) fail("duplicate key constraints");
  if (keyKinds < 1) fail("no key constraint");
  return constraints;
}

function signatureVerifies(constraints: Constraints, header: ParsedHeader, token: Token): boolean {
  const data = signingInput(token);
  const signature = decodeBase64Url(token.signature);
  if (constraints.keys) {
    if (header.kid !== "") {
      const key = firstKeyWith(header.kid, constraints.keys);
      if (key) return verifyJws(key.jwsKey, header.alg, data, signature);
    }
    return constraints.keys.some(
      (key) =>
        (key.alg === "" || key.alg === header.alg) && verifyJws(key.jwsKey, header.alg, data, signature),
    );
  }
  return verifyJws(Buffer.from(constraints.secret, "utf8"), header.alg, data, signature);
}

function validAudience(aud: unknown, wanted: string): boolean {
  if (typeof aud === "string") return aud === wanted;
  return Array.isArray(aud) && aud.some((entry) => entry === wanted);
}

const UNVERIFIED = [false, {}, {}];

function decodeVerify(jwt: unknown, constraintsValue: unknown): unknown {
  const constraints = parseConstraints(constraintsValue);
  let current: unknown = jwt;
  let header: JsonObject;
  let payloadBytes: Buffer;
  for (;;) {
    const token = splitToken(current);
    header = decodeHeader(token);
    const parsed = parseHeader(header);
    if (!parsed.valid) return UNVERIFIED;
    if (constraints.alg !== "" && constraints.alg !== parsed.alg) return UNVERIFIED;
    decodeBase64Url(token.signature);
    if (!signatureVerifies(constraints, parsed, token)) return UNVERIFIED;
    payloadBytes = decodeBase64Url(token.payload);
    if (parsed.cty.toLowerCase() !== "jwt") break;
    current = bytesToString(payloadBytes);
  }
  const { payload, texts } = payloadWithNumberTexts(payloadBytes);
  if (constraints.iss !== "") {
    if (!("iss" in payload)) return UNVERIFIED;
    if (typeof payload.iss !== "string") halt("io.jwt.decode_verify: an iss claim that is not a string");
    if (payload.iss !== constraints.iss) return UNVERIFIED;
  }
  if ("aud" in payload) {
    if (!validAudience(payload.aud, constraints.aud)) return UNVERIFIED;
  } else if (constraints.aud !== "") return UNVERIFIED;
  if ("exp" in payload) {
    if (typeof payload.exp !== "number") fail("exp value must be a number");
    if (compareTimeWith(constraints.timeNs, "exp", texts, payload.exp) !== -1) return UNVERIFIED;
  }
  if ("nbf" in payload) {
    if (typeof payload.nbf !== "number") fail("nbf value must be a number");
    if (compareTimeWith(constraints.timeNs, "nbf", texts, payload.nbf) === -1) return UNVERIFIED;
  }
  return [true, header, payload];
}

export const jwtBuiltins: Record<string, Builtin> = {
  "io.jwt.decode": decode,
  "io.jwt.decode_verify": decodeVerify,
  "io.jwt.verify_hs256": verifyHs("256"),
  "io.jwt.verify_hs384": verifyHs("384"),
  "io.jwt.verify_hs512": verifyHs("512"),
  "io.jwt.verify_rs256": verifyAsymmetric("RS", "256"),
  "io.jwt.verify_rs384": verifyAsymmetric("RS", "384"),
  "io.jwt.verify_rs512": verifyAsymmetric("RS", "512"),
  "io.jwt.verify_ps256": verifyAsymmetric("PS", "256"),
  "io.jwt.verify_ps384": verifyAsymmetric("PS", "384"),
  "io.jwt.verify_ps512": verifyAsymmetric("PS", "512"),
  "io.jwt.verify_es256": verifyAsymmetric("ES", "256"),
  "io.jwt.verify_es384": verifyAsymmetric("ES", "384"),
  "io.jwt.verify_es512": verifyAsymmetric("ES", "512"),
  "io.jwt.verify_eddsa": verifyAsymmetric("EdDSA", ""),
};
