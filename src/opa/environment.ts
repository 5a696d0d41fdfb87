/**
 * The environment every opa child gets: what opa needs to run, and nothing else. A policy can read its
 * process environment (`opa.runtime().env`), so a test policy under review could otherwise print
 * AWS_SECRET_ACCESS_KEY, GITHUB_TOKEN or ACTIONS_ID_TOKEN_REQUEST_TOKEN into a failure message.
 * `opaEnv` (POLICYSHIP_OPA_ENV, --opa-env) adds names to the list. No proxy variable is on it: a proxy URL
 * often carries a password (`http://user:password@proxy`), and policyship's opa calls never use the network
 * (opa/capabilities.ts).
 */
export const OPA_ENV_ALLOWED = [
  "PATH",
  "HOME",
  "TMPDIR",
  "TMP",
  "TEMP",
  "LANG",
  "LANGUAGE",
  "TZ",
  "SSL_CERT_FILE",
  "SSL_CERT_DIR",
  "GOMAXPROCS",
  "GOMEMLIMIT",
] as const;

/** The proxy settings: for the docker credential helpers, which do reach the network; never for opa. */
export const PROXY_ENV = [
  "HTTP_PROXY",
  "HTTPS_PROXY",
  "NO_PROXY",
  "ALL_PROXY",
  "http_proxy",
  "https_proxy",
  "no_proxy",
  "all_proxy",
] as const;

/** Any spelling of a proxy variable (Go reads either case): dropped from opa's environment even if named. */
export const PROXY_NAME = /^(https?|no|all|ftp)_proxy$/i;

const LOCALE = /^LC_[A-Z_]+$/;

/**
 * The variables of `env` that are named in `allowed` or match one of `patterns`; nothing else. Only `env`'s
 * own string values are read, and the result has a null prototype: Node copies every key a `for…in` finds
 * into a child's environment, inherited ones included, so an ordinary object would hand a child whatever
 * had been planted on Object.prototype (that is how `GIT_EXTERNAL_DIFF` once reached git).
 */
export function allowListed(
  env: NodeJS.ProcessEnv,
  allowed: Iterable<string>,
  patterns: readonly RegExp[] = [],
): NodeJS.ProcessEnv {
  const names = new Set(allowed);
  const picked: NodeJS.ProcessEnv = Object.create(null);
  for (const [name, value] of Object.entries(env)) {
    if (typeof value === "string" && (names.has(name) || patterns.some((pattern) => pattern.test(name)))) {
      picked[name] = value;
    }
  }
  return picked;
}

/**
 * What a child is handed: `env`'s own string values in a null-prototype object. Every spawn passes its
 * environment through this, so even an environment built elsewhere as an ordinary object brings nothing
 * inherited along.
 */
export function childEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const copy: NodeJS.ProcessEnv = Object.create(null);
  for (const [name, value] of Object.entries(env)) if (typeof value === "string") copy[name] = value;
  return copy;
}

export function opaEnvironment(env: NodeJS.ProcessEnv, extra: readonly string[] = []): NodeJS.ProcessEnv {
  return allowListed(env, [...OPA_ENV_ALLOWED, ...extra.filter((name) => !PROXY_NAME.test(name))], [LOCALE]);
}

/**
 * What a docker credential helper sees: what opa may see, the user's identity and session, docker's own
 * settings, and the cloud credentials the ECR, GCR and ACR helpers read. Never GITHUB_TOKEN, POLICYSHIP_*
 * or the runner's tokens.
 */
export function credentialHelperEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return allowListed(
    env,
    [...OPA_ENV_ALLOWED, ...PROXY_ENV, "USER", "LOGNAME", "SHELL", "DBUS_SESSION_BUS_ADDRESS"],
    [LOCALE, /^(XDG|DOCKER|AWS|GOOGLE|CLOUDSDK|AZURE)_\w+$/],
  );
}
