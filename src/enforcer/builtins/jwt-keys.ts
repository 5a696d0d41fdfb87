/**
 * The verification keys of io.jwt.*, read as OPA's getKeysFromCertOrJWK reads them: one PEM block (a
 * CERTIFICATE or a PUBLIC KEY, nothing after it) or else a JWK or JWK set. Keys of a set with an `alg`
 * OPA does not know are skipped.
 * https://github.com/open-policy-agent/opa/blob/main/v1/topdown/tokens.go
 */
import { createPrivateKey, createPublicKey, type KeyObject, X509Certificate } from "node:crypto";
import { fail, isObject, parseJson } from "./values.ts";

export interface VerificationKey {
  /** Bytes for a symmetric JWK; undefined for a private JWK, which the verify_* built-ins refuse as a key type. */
  key: KeyObject | Uint8Array | undefined;
  /** The key io.jwt.decode_verify verifies with: jwx takes a private JWK's public half. */
  jwsKey: KeyObject | Uint8Array;
  alg: string;
  kid: string;
}

export const TOKEN_ALGORITHMS: ReadonlySet<string> = new Set([
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "HS256",
  "HS384",
  "HS512",
  "EdDSA",
]);

/** Algorithms jwx knows but OPA cannot verify with: a JWK naming one is skipped; any other name is an error. */
const OTHER_JWA_ALGORITHMS: ReadonlySet<string> = new Set([
  "ES256K",
  "none",
  "RSA1_5",
  "RSA-OAEP",
  "RSA-OAEP-256",
  "RSA-OAEP-384",
  "RSA-OAEP-512",
  "A128KW",
  "A192KW",
  "A256KW",
  "dir",
  "ECDH-ES",
  "ECDH-ES+A128KW",
  "ECDH-ES+A192KW",
  "ECDH-ES+A256KW",
  "A128GCMKW",
  "A192GCMKW",
  "A256GCMKW",
  "PBES2-HS256+A128KW",
  "PBES2-HS384+A192KW",
  "PBES2-HS512+A256KW",
]);

const PEM_BLOCK = /(?:^|\n)-----BEGIN ([^\n-]*)-----[ \t\r]*\n([^-]*?)\n?-----END \1-----[ \t\r]*(?:\n|$)/;

function readPem(text: string): { type: string; der: Buffer; rest: string } | undefined {
  const match = PEM_BLOCK.exec(text);
  if (!match) return undefined;
  const body = (match[2] as string).replace(/[ \t\r\n]/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body) || body.length % 4 !== 0) return undefined;
  return {
    type: match[1] as string,
    der: Buffer.from(body, "base64"),
    rest: text.slice(match.index + match[0].length),
  };
}

function keyFromPem(type: string, der: Buffer): KeyObject {
  if (type === "CERTIFICATE") {
    try {
      return new X509Certificate(der).publicKey;
    } catch (error) {
      fail(`failed to parse a PEM certificate: ${(error as Error).message}`);
    }
  }
  if (type === "PUBLIC KEY") {
    try {
      return createPublicKey({ key: der, format: "der", type: "spki" });
    } catch (error) {
      fail(`failed to parse a PEM public key: ${(error as Error).message}`);
    }
  }
  fail("failed to extract a Key from the PEM certificate");
}

/**
 * An oct JWK's `k` as jwx decodes it: base64 of one alphabet, padded or not, CR and LF skipped; an empty key
 * is a missing "k" field, so a key set holding one is an error, never a key everybody can sign with.
 */
function symmetricKey(k: unknown): Uint8Array {
  if (typeof k !== "string") fail("failed to parse a JWK key (set): k must be a string");
  const text = k.replace(/[\r\n]/g, "");
  const alphabet = /^[A-Za-z0-9+/]*={0,2}$/.test(text) || /^[A-Za-z0-9_-]*={0,2}$/.test(text);
  const padded = text.endsWith("=");
  if (!alphabet || (padded ? text.length % 4 !== 0 : text.length % 4 === 1)) {
    fail("failed to parse a JWK key (set): k is not base64");
  }
  const bytes = Buffer.from(text, text.includes("+") || text.includes("/") ? "base64" : "base64url");
  if (bytes.length === 0) fail('failed to parse a JWK key (set): jwk.SymmetricKey: missing "k" field');
  return bytes;
}

function keyFromJwk(jwk: Record<string, unknown>): Pick<VerificationKey, "key" | "jwsKey"> {
  const kty = jwk.kty;
  if (typeof kty !== "string") fail("failed to parse a JWK key (set): invalid key type");
  if (kty === "oct") {
    const bytes = symmetricKey(jwk.k);
    return { key: bytes, jwsKey: bytes };
  }
  if ("d" in jwk) return { key: undefined, jwsKey: publicHalf(jwk) };
  try {
    const key = createPublicKey({ key: jwk as never, format: "jwk" });
    return { key, jwsKey: key };
  } catch (error) {
    fail(`failed to parse a JWK key (set): ${(error as Error).message}`);
  }
}

/**
 * The public key of a private JWK as jwx reads one: an RSA key whole, an EC key's x and y with a `d` of the
 * curve's length, an OKP key whose `d` (the seed) derives its `x`.
 */
function publicHalf(jwk: Record<string, unknown>): KeyObject {
  let derived: KeyObject;
  try {
    derived = createPublicKey(createPrivateKey({ key: jwk as never, format: "jwk" }));
  } catch (error) {
    fail(`failed to parse a JWK key (set): ${(error as Error).message}`);
  }
  const length = (value: unknown) => Buffer.from(String(value), "base64url").length;
  if (jwk.kty !== "RSA" && length(jwk.d) !== length(jwk.x)) {
    fail("failed to parse a JWK key (set): the private key has the wrong length");
  }
  if (jwk.kty === "OKP" && (derived.export({ format: "jwk" }) as { x?: unknown }).x !== jwk.x) {
    fail("failed to parse a JWK key (set): the private key does not match its public key");
  }
  return derived;
}

/** The keys in a `cert` constraint or a verify_* key argument. */
export function readVerificationKeys(text: string): VerificationKey[] {
  const pem = readPem(text);
  if (pem) {
    if (pem.rest.length > 0) fail("extra data after a PEM certificate block");
    const key = keyFromPem(pem.type, pem.der);
    return [{ key, jwsKey: key, alg: "", kid: "" }];
  }
  const parsed = parseJson(text);
  if (!isObject(parsed)) fail("failed to parse a JWK key (set): not an object");
  const entries = "keys" in parsed ? parsed.keys : [parsed];
  if (!Array.isArray(entries)) fail("failed to parse a JWK key (set): keys must be an array");
  const keys: VerificationKey[] = [];
  for (const entry of entries) {
    if (!isObject(entry)) fail("failed to parse a JWK key (set): a key must be an object");
    const key = keyFromJwk(entry);
    const alg = typeof entry.alg === "string" ? entry.alg : "";
    if (alg !== "" && !TOKEN_ALGORITHMS.has(alg)) {
      if (OTHER_JWA_ALGORITHMS.has(alg)) continue;
      fail(`failed to parse a JWK key (set): invalid algorithm ${alg}`);
    }
    keys.push({ ...key, alg, kid: typeof entry.kid === "string" ? entry.kid : "" });
  }
  return keys;
}
