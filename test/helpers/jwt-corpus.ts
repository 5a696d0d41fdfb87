import { execFile } from "node:child_process";
import { constants, createHmac, generateKeyPairSync, type KeyObject, randomBytes, sign } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export type Alg =
  | "HS256"
  | "HS384"
  | "HS512"
  | "RS256"
  | "RS384"
  | "RS512"
  | "PS256"
  | "PS384"
  | "PS512"
  | "ES256"
  | "ES384"
  | "ES512"
  | "EdDSA";

export const ALGS: Alg[] = [
  "HS256",
  "HS384",
  "HS512",
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
];

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** SPKI PEM. */
  pem: string;
  /** A self-signed X.509 certificate for the key, PEM. */
  cert: string;
  jwk: Record<string, unknown>;
}

export interface Keys {
  rsa: KeyPair;
  rsaOther: KeyPair;
  p256: KeyPair;
  p384: KeyPair;
  p521: KeyPair;
  ed25519: KeyPair;
  secret: string;
}

async function certificateFor(privateKey: KeyObject, dir: string, name: string): Promise<string> {
  const keyFile = path.join(dir, `${name}.key`);
  const certFile = path.join(dir, `${name}.crt`);
  await writeFile(keyFile, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
  await run(
    "openssl",
    ["req", "-x509", "-new", "-key", keyFile, "-subj", `/CN=${name}`, "-days", "2", "-out", certFile],
    { env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } },
  );
  return readFile(certFile, "utf8");
}

async function pair(
  dir: string,
  name: string,
  generate: () => { privateKey: KeyObject; publicKey: KeyObject },
): Promise<KeyPair> {
  const { privateKey, publicKey } = generate();
  return {
    privateKey,
    publicKey,
    pem: publicKey.export({ type: "spki", format: "pem" }) as string,
    cert: await certificateFor(privateKey, dir, name),
    jwk: publicKey.export({ format: "jwk" }) as Record<string, unknown>,
  };
}

/** Fresh keys of every kind, with certificates made by openssl. */
export async function generateKeys(): Promise<Keys> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-jwt-keys-"));
  try {
    const rsa = () => generateKeyPairSync("rsa", { modulusLength: 2048 });
    const ec = (namedCurve: string) => () => generateKeyPairSync("ec", { namedCurve });
    return {
      rsa: await pair(dir, "rsa", rsa),
      rsaOther: await pair(dir, "rsa-other", rsa),
      p256: await pair(dir, "p256", ec("prime256v1")),
      p384: await pair(dir, "p384", ec("secp384r1")),
      p521: await pair(dir, "p521", ec("secp521r1")),
      ed25519: await pair(dir, "ed25519", () => generateKeyPairSync("ed25519")),
      secret: randomBytes(24).toString("base64url"),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const HASH: Record<string, string> = { "256": "sha256", "384": "sha384", "512": "sha512" };

export function b64url(value: string | Buffer | object): string {
  const bytes =
    typeof value === "string" || Buffer.isBuffer(value)
      ? Buffer.from(value)
      : Buffer.from(JSON.stringify(value));
  return bytes.toString("base64url");
}

/** A JWS signature over `data` with `alg`; the key is a KeyObject or (HS) secret bytes. */
export function signature(alg: string, key: KeyObject | string, data: string): Buffer {
  const bits = alg.slice(2);
  if (alg.startsWith("HS"))
    return createHmac(HASH[bits] as string, key as string)
      .update(data)
      .digest();
  const privateKey = key as KeyObject;
  if (alg === "EdDSA") return sign(null, Buffer.from(data), privateKey);
  if (alg.startsWith("RS")) return sign(HASH[bits] as string, Buffer.from(data), privateKey);
  if (alg.startsWith("PS")) {
    return sign(HASH[bits] as string, Buffer.from(data), {
      key: privateKey,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
    });
  }
  return sign(HASH[bits] as string, Buffer.from(data), { key: privateKey, dsaEncoding: "ieee-p1363" });
}

/** A PS* signature with this salt length (Node's default for a signer is the maximum, not the hash's length). */
export function pssSignature(bits: string, key: KeyObject, data: string, saltLength: number): Buffer {
  return sign(HASH[bits] as string, Buffer.from(data), {
    key,
    padding: constants.RSA_PKCS1_PSS_PADDING,
    saltLength,
  });
}

/** A compact JWS with these header and payload, signed with `key` under `signAlg` (default: header.alg). */
export function token(
  header: Record<string, unknown>,
  payload: object | string,
  key: KeyObject | string,
  signAlg?: string,
): string {
  const data = `${b64url(header)}.${typeof payload === "string" ? b64url(payload) : b64url(payload)}`;
  return `${data}.${signature(signAlg ?? String(header.alg), key, data).toString("base64url")}`;
}

/** The private key (or secret) that signs `alg` in this key set. */
export function signerFor(keys: Keys, alg: Alg): { key: KeyObject | string; pair?: KeyPair } {
  if (alg.startsWith("HS")) return { key: keys.secret };
  if (alg.startsWith("RS") || alg.startsWith("PS")) return { key: keys.rsa.privateKey, pair: keys.rsa };
  if (alg === "ES256") return { key: keys.p256.privateKey, pair: keys.p256 };
  if (alg === "ES384") return { key: keys.p384.privateKey, pair: keys.p384 };
  if (alg === "ES512") return { key: keys.p521.privateKey, pair: keys.p521 };
  return { key: keys.ed25519.privateKey, pair: keys.ed25519 };
}
