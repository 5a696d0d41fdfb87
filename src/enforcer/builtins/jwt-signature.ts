/**
 * JWS signature checks with node:crypto, in the two flavours OPA has: the io.jwt.verify_* built-ins call Go's
 * crypto directly (ECDSA's r and s are the two halves of whatever length the signature has; PSS salt length
 * is automatic), and io.jwt.decode_verify goes through jwx's jwsbb.Verify (the alg picks the hash and the
 * key type; a PSS salt is exactly as long as the hash).
 */
import { constants, createHmac, type KeyObject, timingSafeEqual, verify } from "node:crypto";

export type SignatureFamily = "RS" | "PS" | "ES" | "EdDSA";

const HASHES: Record<string, string> = { "256": "sha256", "384": "sha384", "512": "sha512" };

/** A DER INTEGER of an unsigned big-endian value. */
function derInteger(bytes: Uint8Array): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  let body = Buffer.from(bytes.subarray(start));
  if (body.length === 0) body = Buffer.from([0]);
  if ((body[0] as number) & 0x80) body = Buffer.concat([Buffer.from([0]), body]);
  return Buffer.concat([Buffer.from([0x02]), derLength(body.length), body]);
}

function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  if (length < 0x100) return Buffer.from([0x81, length]);
  return Buffer.from([0x82, length >> 8, length & 0xff]);
}

/** Go's verifyES: r is the first half of the signature, s the second, whatever their length. */
function ecdsaSignatureAsDer(signature: Uint8Array): Buffer {
  const half = Math.floor(signature.length / 2);
  const body = Buffer.concat([derInteger(signature.subarray(0, half)), derInteger(signature.subarray(half))]);
  return Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]);
}

function safely(check: () => boolean): boolean {
  try {
    return check();
  } catch {
    return false;
  }
}

/** Go crypto as the verify_* built-ins use it; false for a key of the wrong type, as OPA. */
export function verifyWithGoCrypto(
  family: SignatureFamily,
  bits: string,
  key: KeyObject | Uint8Array | undefined,
  data: Buffer,
  signature: Buffer,
  pssSaltLength: number = constants.RSA_PSS_SALTLEN_AUTO,
): boolean {
  if (!key || key instanceof Uint8Array) return false;
  const hash = HASHES[bits];
  const type = key.asymmetricKeyType;
  return safely(() => {
    switch (family) {
      case "RS":
        return type === "rsa" && verify(hash, data, { key, padding: constants.RSA_PKCS1_PADDING }, signature);
      case "PS":
        return (
          type === "rsa" &&
          verify(
            hash,
            data,
            { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: pssSaltLength },
            signature,
          )
        );
      case "ES":
        return (
          type === "ec" && verify(hash, data, { key, dsaEncoding: "der" }, ecdsaSignatureAsDer(signature))
        );
      case "EdDSA":
        return type === "ed25519" && verify(null, data, key, signature);
    }
  });
}

const EC_CURVE_BY_ALG: Record<string, string> = {
  ES256: "prime256v1",
  ES384: "secp384r1",
  ES512: "secp521r1",
};

/** jwsbb.Verify: the token's alg decides the scheme; a key of another type, or an unknown alg, fails. */
export function verifyJws(
  key: KeyObject | Uint8Array | undefined,
  alg: string,
  data: Buffer,
  signature: Buffer,
): boolean {
  if (!key) return false;
  const bits = alg.slice(2);
  const hash = HASHES[bits];
  if (alg.startsWith("HS") && hash && key instanceof Uint8Array) {
    const expected = createHmac(hash, key).update(data).digest();
    return expected.length === signature.length && timingSafeEqual(expected, signature);
  }
  if (key instanceof Uint8Array) return false;
  const type = key.asymmetricKeyType;
  return safely(() => {
    if (alg === "EdDSA") return type === "ed25519" && verify(null, data, key, signature);
    if (!hash) return false;
    if (alg.startsWith("RS")) return verifyWithGoCrypto("RS", bits, key, data, signature);
    if (alg.startsWith("PS")) {
      return verifyWithGoCrypto("PS", bits, key, data, signature, constants.RSA_PSS_SALTLEN_DIGEST);
    }
    if (alg.startsWith("ES")) {
      if (type !== "ec" || key.asymmetricKeyDetails?.namedCurve !== EC_CURVE_BY_ALG[alg]) return false;
      return verify(hash, data, { key, dsaEncoding: "ieee-p1363" }, signature);
    }
    return false;
  });
}

/** The HMAC check of io.jwt.verify_hs*: the secret's bytes, compared in constant time. */
export function verifyHmac(bits: string, secret: string, data: Buffer, signature: Buffer): boolean {
  const expected = createHmac(HASHES[bits] as string, Buffer.from(secret, "utf8"))
    .update(data)
    .digest();
  return expected.length === signature.length && timingSafeEqual(expected, signature);
}
