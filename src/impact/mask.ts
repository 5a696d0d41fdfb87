import { redact, secretsOf } from "../enforcer/credential-values.ts";
import { DEFAULT_MASK } from "../enforcer/decision-log.ts";

// The derivation is shared with the enforcer's decision log, which masks the same values as it writes.
export { MASKED, redact } from "../enforcer/credential-values.ts";

export interface MaskedInput {
  /** The input with every masked pointer erased, and the erased values masked wherever else they appear. */
  input: unknown;
  /** The values erased, as text, and their fragments (a bearer token without "Bearer ", a cookie's value). */
  secrets: string[];
}

/**
 * What impact and explain erase from what they show beyond the enforcer's DEFAULT_MASK: the common API-key
 * header. Only shown inputs lose it; the replay still evaluates the input as it was logged (an enforcer that
 * erased x-api-key from its log would leave nothing for a policy keyed on it to replay).
 */
export const SHOWN_MASK = [...DEFAULT_MASK, "/input/request/http/headers/x-api-key"];

/**
 * A recorded input, masked: the credential headers (SHOWN_MASK: authorization, cookie, proxy-authorization,
 * x-api-key) and each `--mask` pointer are erased, whatever the source. OPA's console decision logs have no
 * mask of their own, and other producers may send `Authorization`, so keys are matched without regard to case.
 */
export class InputMask {
  private readonly paths: string[][];

  constructor(pointers: readonly string[] = []) {
    this.paths = [...SHOWN_MASK, ...pointers].map((pointer) =>
      pointer
        .split("/")
        .slice(2)
        .map((segment) => segment.replaceAll("~1", "/").replaceAll("~0", "~").toLowerCase()),
    );
  }

  apply(input: unknown): MaskedInput {
    const erased: unknown[] = [];
    let current = input;
    for (const path of this.paths) current = eraseAt(current, path, erased);
    // A masked value may also sit elsewhere in the input (a token in the path or the query string).
    const secrets = secretsOf(erased);
    return { input: redact(current, secrets), secrets };
  }
}

/** A copy of `node` without what `path` names (keys compared lower-cased); the erased values go to `erased`. */
function eraseAt(node: unknown, path: string[], erased: unknown[]): unknown {
  if (path.length === 0 || typeof node !== "object" || node === null) return node;
  const [head, ...rest] = path as [string, ...string[]];
  const entries = Object.entries(node);
  if (!entries.some(([key]) => key.toLowerCase() === head)) return node;
  const copy: Record<string, unknown> = Array.isArray(node) ? ([] as never) : Object.create(null);
  for (const [key, value] of entries) {
    if (key.toLowerCase() !== head) copy[key] = value;
    else if (rest.length === 0) erased.push(value);
    else copy[key] = eraseAt(value, rest, erased);
  }
  return copy;
}
