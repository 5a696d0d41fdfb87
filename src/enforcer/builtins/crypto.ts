/**
 * crypto.md5/sha1/sha256 and crypto.hmac.* as OPA's v1/topdown/crypto.go: hex digests of the string's
 * bytes; hmac.equal compares in constant time.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { Builtin } from "./types.ts";
import { stringOperand } from "./values.ts";

const digest =
  (algorithm: string): Builtin =>
  (value) =>
    createHash(algorithm).update(stringOperand(value, 1), "utf8").digest("hex");

const hmac =
  (algorithm: string): Builtin =>
  (value, key) =>
    createHmac(algorithm, Buffer.from(stringOperand(key, 2), "utf8"))
      .update(stringOperand(value, 1), "utf8")
      .digest("hex");

function hmacEqual(a: unknown, b: unknown): boolean {
  const left = Buffer.from(stringOperand(a, 1), "utf8");
  const right = Buffer.from(stringOperand(b, 2), "utf8");
  return left.length === right.length && timingSafeEqual(left, right);
}

export const cryptoBuiltins: Record<string, Builtin> = {
  "crypto.md5": digest("md5"),
  "crypto.sha1": digest("sha1"),
  "crypto.sha256": digest("sha256"),
  "crypto.hmac.md5": hmac("md5"),
  "crypto.hmac.sha1": hmac("sha1"),
  "crypto.hmac.sha256": hmac("sha256"),
  "crypto.hmac.sha512": hmac("sha512"),
  "crypto.hmac.equal": hmacEqual,
};
