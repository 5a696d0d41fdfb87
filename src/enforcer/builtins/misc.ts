/**
 * semver.*, uuid.rfc4122 and net.cidr_is_valid as OPA's v1/topdown/semver.go, uuid.go and cidr.go.
 */
import { randomUUID } from "node:crypto";
import { isIP } from "node:net";
import semver from "semver";
import type { Builtin } from "./types.ts";
import { fail, stringOperand } from "./values.ts";

/** semver.org 2.0.0 (no leading zeros), with the optional "v" OPA's parser accepts. */
const SEMVER =
  /^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$/;

function version(value: unknown, position: number): string {
  const text = stringOperand(value, position);
  if (!SEMVER.test(text)) fail(`operand ${position}: string ${JSON.stringify(text)} is not a valid SemVer`);
  return text.replace(/^v/, "");
}

/** uuid.rfc4122 is random, but one key gives one UUID within an evaluation, as OPA caches it per query. */
let uuids = new Map<string, string>();

export function resetUuids(): void {
  uuids = new Map();
}

function uuidFor(key: unknown): string {
  const name = stringOperand(key, 1);
  let uuid = uuids.get(name);
  if (!uuid) {
    uuid = randomUUID();
    uuids.set(name, uuid);
  }
  return uuid;
}

/** Go's net.ParseCIDR: an IPv4 or IPv6 address, a slash, a prefix length in range; no zones. */
function isCidr(value: unknown): boolean {
  if (typeof value !== "string") return false;
  const slash = value.lastIndexOf("/");
  if (slash < 0) return false;
  const address = value.slice(0, slash);
  const bits = value.slice(slash + 1);
  const family = isIP(address);
  if (family === 0 || address.includes("%") || !/^\d{1,3}$/.test(bits)) return false;
  if (family === 4 && address.split(".").some((part) => part.length > 1 && part.startsWith("0")))
    return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

export const miscBuiltins: Record<string, Builtin> = {
  "semver.is_valid": (value) => typeof value === "string" && SEMVER.test(value),
  "semver.compare": (a, b) => semver.compare(version(a, 1), version(b, 2)),
  "uuid.rfc4122": uuidFor,
  "net.cidr_is_valid": isCidr,
};
