import { createPrivateKey, createPublicKey } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Context } from "../context.ts";
import { FailureError, isKnownError, UserError } from "../errors.ts";
import { envName, flagName } from "../settings-access.ts";

export interface SigningKey {
  /** A file opa reads the key from: never the key itself on opa's argv. */
  file: string;
  /** The key material, so that any output can be scrubbed of it. */
  material: string;
  cleanup: () => Promise<void>;
}

/**
 * A --signing-key or --verification-key value fit to print: the path of a file that exists, and nothing else.
 * Whatever names no file may be key material or a secret (base64 DER holds '/' and looks like a path).
 */
export function shownValue(value: string, isFile: boolean): string {
  return isFile ? value : "(the value, not shown)";
}

/** Where a key setting came from, for its messages: the flag, the POLICYSHIP_* variable, or the config file. */
export function keySource(context: Context, key: "signingKey" | "verificationKey"): string {
  if (context.explicit.has(key)) return flagName(key);
  if (context.env[envName(key)]) return envName(key);
  if (context.configFile) return `${key} in ${path.basename(context.configFile)}`;
  return flagName(key);
}

/**
 * The key opa signs with, as a file. A path is used as is; key material (an HMAC secret, or PEM text from
 * POLICYSHIP_SIGNING_KEY) goes to a file only the user can read, removed after the build, so it never sits
 * on a process's argv where any user of the runner can read it.
 */
export async function prepareSigningKey(context: Context): Promise<SigningKey | undefined> {
  const { settings, cwd } = context;
  const value = settings.signingKey;
  if (!value) return undefined;
  const hmac = settings.signingAlg.startsWith("HS");
  const candidate = value.includes("-----BEGIN") ? undefined : path.resolve(cwd, value);
  const info = candidate ? await stat(candidate).catch(() => undefined) : undefined;
  const source = keySource(context, "signingKey");
  if (info?.isFile() && candidate) {
    const material = await readFile(candidate, "utf8").catch(() => {
      throw new UserError(
        `${source} ${shownValue(value, true)} cannot be read`,
        "check the file's permissions",
      );
    });
    if (!hmac) assertPrivateKey(material, `${source} ${shownValue(value, true)}`, settings.signingAlg);
    return { file: candidate, material, cleanup: async () => {} };
  }
  if (!hmac && !value.includes("-----BEGIN")) {
    throw new UserError(
      `${source} ${shownValue(value, false)} cannot be read: it names no file and is not PEM text`,
      "pass the path of the PEM private key, or its PEM text in POLICYSHIP_SIGNING_KEY",
    );
  }
  if (!hmac) assertPrivateKey(value, `${source} (PEM text)`, settings.signingAlg);
  if (context.explicit.has("signingKey")) {
    context.log.warn(
      "the signing key was given on the command line, where other processes can read it; pass a file, or POLICYSHIP_SIGNING_KEY",
    );
  }
  return privateFile("signing-key", value);
}

function assertPrivateKey(material: string, shown: string, algorithm: string) {
  try {
    createPrivateKey(material);
  } catch {
    throw new UserError(
      `${shown} is not a PEM private key for ${algorithm}`,
      "pass the private half of the signing key pair, PEM-encoded",
    );
  }
}

/** A key file written for opa, in a directory only the user can read, removed by cleanup(). */
async function privateFile(name: string, material: string): Promise<SigningKey> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-key-"));
  const file = path.join(dir, name);
  await writeFile(file, material, { mode: 0o600 });
  return { file, material, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Settings already warned about a key on the command line: rollback reads the key twice, for opa and the config. */
const warned = new WeakSet<object>();

/**
 * The key a bundle signature is checked with (--verification-key, POLICYSHIP_VERIFICATION_KEY): a file's
 * contents, or the value itself when it is an HMAC secret or PEM text. With an asymmetric algorithm it must be
 * a PEM public key. The value is never echoed in an error unless it names an existing file.
 */
export async function readVerificationKey(
  context: Context,
): Promise<{ material: string; file?: string } | undefined> {
  const { settings, cwd } = context;
  const value = settings.verificationKey;
  if (!value) return undefined;
  const hmac = settings.signingAlg.startsWith("HS");
  const candidate = value.includes("-----BEGIN") ? undefined : path.resolve(cwd, value);
  const info = candidate ? await stat(candidate).catch(() => undefined) : undefined;
  const file = info?.isFile() && candidate ? candidate : undefined;
  const shown = `${keySource(context, "verificationKey")} ${shownValue(value, file !== undefined)}`;
  if (!file && !hmac && !value.includes("-----BEGIN")) {
    throw new UserError(
      `${shown} cannot be read: it names no file and is not PEM text`,
      "check the path of the public key (PEM), or pass its PEM text in POLICYSHIP_VERIFICATION_KEY",
    );
  }
  const material = file
    ? await readFile(file, "utf8").catch(() => {
        throw new UserError(`${shown} cannot be read`, "check the file's permissions");
      })
    : value;
  if (!hmac) {
    try {
      createPublicKey(material);
    } catch {
      throw new UserError(
        `${file ? shown : `${keySource(context, "verificationKey")} (PEM text)`} is not a PEM public key`,
        "pass the public half of the signing key",
      );
    }
  }
  if (!file && hmac && context.explicit.has("verificationKey") && !warned.has(context.settings)) {
    warned.add(context.settings);
    context.log.warn(
      "the verification key was given on the command line, where other processes can read it; pass a file, or POLICYSHIP_VERIFICATION_KEY",
    );
  }
  return { material, file };
}

/**
 * The verification key as a file for opa, given the signing key's treatment: a path is used as is; an HMAC
 * secret or PEM text goes to a 0600 file removed by cleanup(), so it never sits on opa's argv.
 */
export async function prepareVerificationKey(context: Context): Promise<SigningKey | undefined> {
  const key = await readVerificationKey(context);
  if (!key) return undefined;
  if (key.file) return { file: key.file, material: key.material, cleanup: async () => {} };
  return privateFile("verification-key", key.material);
}

/** Removes every line of key material (8 characters or more) from text that may be printed. */
export function redactKey(text: string, key: SigningKey | undefined): string {
  if (!key) return text;
  let redacted = text;
  for (const line of key.material.split(/\r?\n/).map((part) => part.trim())) {
    if (line.length >= 8) redacted = redacted.replaceAll(line, "[redacted]");
  }
  return redacted;
}

/** The same error with no line of key material in its message or hint (opa may quote what it read). */
export function redactError(error: unknown, key: SigningKey | undefined): unknown {
  if (!key || !isKnownError(error)) return error;
  const message = redactKey(error.message, key);
  const hint = error.hint === undefined ? undefined : redactKey(error.hint, key);
  if (message === error.message && hint === error.hint) return error;
  return error instanceof UserError
    ? new UserError(message, hint)
    : new FailureError(message, hint, error.details);
}
