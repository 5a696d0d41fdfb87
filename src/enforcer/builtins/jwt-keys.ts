/**
 * The verification keys of io.jwt.*, read as OPA's getKeysFromCertOrJWK reads them: one PEM block (a
 * CERTIFICATE or a PUBLIC KEY, nothing after it) or else a JWK or JWK set. Keys of a set with an `alg`
 * OPA does not know are skipped.
 * https://github.com/open-policy-agent/opa/blob/main/v1/topdown/tokens.go
 */
import { createPublicKey, type KeyObject, X509Certificate } from "node:crypto";
import { fail, isObject, parseJson } from "./values.ts";

export interface VerificationKey {
  /** Bytes for a symmetric JWK; undefined for a private JWK, which OPA's verifiers refuse as a key type. */
  key: KeyObject | Uint8Array | undefined;
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

function keyFromJwk(jwk: Record<string, unknown>): KeyObject | Uint8Array | undefined {
  const kty = jwk.kty;
  if (typeof kty !== "string") fail("failed to parse a JWK key (set): invalid key type");
  try {
    if (kty === "oct") {
      if (typeof jwk.k !== "string") fail("failed to parse a JWK key (set): k must be a string");
      return Buffer.from(jwk.k, "base64url");
    }
    const key = createPublicKey({ key: jwk as never, format: "jwk" });
    return "d" in jwk ? undefined : key;
  } catch (error) {
    fail(`failed to parse a JWK key (set): ${(error as Error).message}`);
  }
}

/** The keys in a `cert` constraint or a verify_* key argument. */
export function readVerificationKeys(text: string): VerificationKey[] {
  const pem = readPem(text);
  if (pem) {
    if (pem.rest.length > 0) fail("extra data after a PEM certificate block");
    return [{ key: keyFromPem(pem.type, pem.der), alg: "", kid: "" }];
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
    keys.push({ key, alg, kid: typeof entry.kid === "string" ? entry.kid : "" });
  }
  return keys;
}
