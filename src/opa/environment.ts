/**
 * The environment every opa child gets: what opa needs to run, and nothing else. A policy can read its
 * process environment (`opa.runtime().env`), so a test policy under review could otherwise print
 * AWS_SECRET_ACCESS_KEY, GITHUB_TOKEN or ACTIONS_ID_TOKEN_REQUEST_TOKEN into a failure message.
 * `opaEnv` (POLICYSHIP_OPA_ENV, --opa-env) adds names to the list.
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
  "HTTP_PROXY",
  "HTTPS_PROXY",
  "NO_PROXY",
  "http_proxy",
  "https_proxy",
  "no_proxy",
  "SSL_CERT_FILE",
  "SSL_CERT_DIR",
  "GOMAXPROCS",
  "GOMEMLIMIT",
] as const;

const LOCALE = /^LC_[A-Z_]+$/;

export function opaEnvironment(env: NodeJS.ProcessEnv, extra: readonly string[] = []): NodeJS.ProcessEnv {
  const allowed = new Set<string>([...OPA_ENV_ALLOWED, ...extra]);
  const scrubbed: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && (allowed.has(name) || LOCALE.test(name))) scrubbed[name] = value;
  }
  return scrubbed;
}
