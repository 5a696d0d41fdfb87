import { createPrivateKey } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Context } from "../context.ts";
import { UserError } from "../errors.ts";

export interface SigningKey {
  /** A file opa reads the key from: never the key itself on opa's argv. */
  file: string;
  /** The key material, so that any output can be scrubbed of it. */
  material: string;
  cleanup: () => Promise<void>;
}

/** A --signing-key value fit to print: a plausible path, never key material or a secret. */
function shownValue(value: string): string {
  const looksLikePath = !/\s|-----BEGIN/.test(value) && (value.includes("/") || /\.(pem|key)$/i.test(value));
  return looksLikePath ? value : "(the value, not shown)";
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
  if (info?.isFile() && candidate) {
    const material = await readFile(candidate, "utf8").catch(() => {
      throw new UserError(
        `--signing-key ${shownValue(value)} cannot be read`,
        "check the file's permissions",
      );
    });
    if (!hmac) assertPrivateKey(material, shownValue(value), settings.signingAlg);
    return { file: candidate, material, cleanup: async () => {} };
  }
  if (!hmac && !value.includes("-----BEGIN")) {
    throw new UserError(
      `--signing-key ${shownValue(value)} cannot be read`,
      "pass the path of the PEM private key, or its PEM text in POLICYSHIP_SIGNING_KEY",
    );
  }
  if (!hmac) assertPrivateKey(value, "(PEM text)", settings.signingAlg);
  if (context.explicit.has("signingKey")) {
    context.log.warn(
      "the signing key was given on the command line, where other processes can read it; pass a file, or POLICYSHIP_SIGNING_KEY",
    );
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-key-"));
  const file = path.join(dir, "signing-key");
  await writeFile(file, value, { mode: 0o600 });
  return { file, material: value, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

function assertPrivateKey(material: string, shown: string, algorithm: string) {
  try {
    createPrivateKey(material);
  } catch {
    throw new UserError(
      `--signing-key ${shown} is not a PEM private key for ${algorithm}`,
      "pass the private half of the signing key pair, PEM-encoded",
    );
  }
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
