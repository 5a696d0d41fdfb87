import { UserError } from "../errors.ts";
import { readJson } from "../http-body.ts";
import { printable } from "../printable.ts";
import { isLoopback } from "../store/oci/reference.ts";

/**
 * Reading OPA instances' bundle status over OPA's REST API, for status and prune. Everything an instance
 * answers is shown, never obeyed.
 */

export interface InstanceStatus {
  url: string;
  /** The active revision of the bundle; null when none is active or OPA cannot say. */
  revision: string | null;
  lastDownload: string | null;
  lastActivation: string | null;
  /** The last bundle error OPA reports, or why the instance could not be read. */
  error: string | null;
  /** With --expect: this instance runs that revision. */
  ok?: boolean;
}

const REQUEST_TIMEOUT_MS = 5_000;
/** /v1/status of an OPA with many bundles is a few kilobytes; this is far above and still bounded. */
const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

/** One bundle in OPA's /v1/status, as it might arrive: nothing in it is trusted to have its type. */
interface BundleStatus {
  active_revision?: unknown;
  last_successful_download?: unknown;
  last_successful_activation?: unknown;
  code?: unknown;
  message?: unknown;
  errors?: { message?: unknown }[];
}

class TooLarge extends Error {}

async function getJson(url: string, token: string | undefined): Promise<{ status: number; body: unknown }> {
  const response = await fetch(url, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
    // OPA does not redirect; a redirect is reported as its status rather than followed with the token.
    redirect: "manual",
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const body = await readJson(
    response,
    MAX_RESPONSE_BYTES,
    () => new TooLarge(`answered more than ${MAX_RESPONSE_BYTES} bytes`),
  );
  return { status: response.status, body };
}

/** What OPA says is shown, never obeyed: a string made printable, anything else nothing. */
const text = (value: unknown, max = 2_000) =>
  typeof value === "string" && value !== "" ? printable(value, max) : null;
const real = (time: unknown) => {
  const shown = text(time, 100);
  return shown && !shown.startsWith("0001-") ? shown : null;
};

function bundleError(state: BundleStatus): string | null {
  const code = text(state.code);
  if (!code) return null;
  const details = Array.isArray(state.errors)
    ? state.errors.map((entry) => text(entry?.message)).filter(Boolean)
    : [];
  return [`${code}: ${text(state.message) ?? ""}`.trim(), details.length ? `(${details.join("; ")})` : ""]
    .filter(Boolean)
    .join(" ");
}

const isJsonObject = (body: unknown) => typeof body === "object" && body !== null && !Array.isArray(body);

const notOpa = (path: string, status: number) =>
  `not OPA: GET ${path} answered HTTP ${status} without OPA's JSON (check the URL and port)`;

/**
 * The active revision of every bundle an instance's /v1/status reports (bundle name → revision), for prune:
 * an instance may run a second bundle from the same store. Empty when it reports none or cannot be read.
 */
export async function readActiveRevisions(url: string, token?: string): Promise<Map<string, string>> {
  const revisions = new Map<string, string>();
  try {
    const status = await getJson(`${url.replace(/\/+$/, "")}/v1/status`, token);
    const bundles = (status.body as { result?: { bundles?: unknown } } | null)?.result?.bundles;
    if (status.status !== 200 || !isJsonObject(bundles)) return revisions;
    for (const [name, state] of Object.entries(bundles as Record<string, BundleStatus>)) {
      const revision = isJsonObject(state) ? text(state.active_revision, 300) : null;
      if (revision) revisions.set(name, revision);
    }
  } catch {}
  return revisions;
}

/** One instance: /v1/status, or /health?bundles=true where the status plugin is off. */
export async function readInstance(url: string, bundle: string, token?: string): Promise<InstanceStatus> {
  const base = url.replace(/\/+$/, "");
  const blank: InstanceStatus = {
    url,
    revision: null,
    lastDownload: null,
    lastActivation: null,
    error: null,
  };
  try {
    const status = await getJson(`${base}/v1/status`, token);
    if (status.status === 401 || status.status === 403) {
      return {
        ...blank,
        error: token
          ? `OPA refused POLICYSHIP_OPA_TOKEN (HTTP ${status.status})`
          : `OPA asks for a token (HTTP ${status.status}): set POLICYSHIP_OPA_TOKEN`,
      };
    }
    // OPA answers both endpoints with a JSON object, errors included; anything else came from another server.
    if (!isJsonObject(status.body)) return { ...blank, error: notOpa("/v1/status", status.status) };
    const bundles = (status.body as { result?: { bundles?: Record<string, BundleStatus> } })?.result?.bundles;
    if (status.status === 200 && bundles) {
      const state = Object.hasOwn(bundles, bundle) ? bundles[bundle] : undefined;
      if (!state || typeof state !== "object")
        return {
          ...blank,
          error: `no bundle named ${bundle} (it has: ${printable(Object.keys(bundles).join(", "), 300) || "none"})`,
        };
      return {
        url,
        revision: text(state.active_revision, 300),
        lastDownload: real(state.last_successful_download),
        lastActivation: real(state.last_successful_activation),
        error: bundleError(state),
      };
    }
    // The status plugin is off: health says whether every bundle is active, though not which revision.
    const health = await getJson(`${base}/health?bundles=true`, token);
    if (!isJsonObject(health.body)) return { ...blank, error: notOpa("/health", health.status) };
    return {
      ...blank,
      error:
        health.status === 200
          ? "status plugin off: bundles are active, revision unknown (enable status in the OPA config)"
          : `status plugin off and bundles not active (GET /health?bundles=true answered ${health.status})`,
    };
  } catch (error) {
    if (error instanceof TooLarge) return { ...blank, error: error.message };
    const { cause, name } = error as { cause?: { code?: string; message?: string }; name?: string };
    const why = name === "TimeoutError" ? "timed out" : (cause?.code ?? cause?.message ?? name);
    return { ...blank, error: `unreachable (${printable(why, 100)})` };
  }
}

/**
 * Each --opa is an http(s) URL without user:password, which would be printed with every line and sent
 * nowhere (fetch refuses it); the refusal does not repeat the password. The token comes from
 * POLICYSHIP_OPA_TOKEN only (never a flag or a config file), and is sent over HTTPS or to this machine.
 * Returns the token OPA's `--authentication=token` asks for, if one is set.
 */
export function checkOpaTargets(urls: readonly string[], env: NodeJS.ProcessEnv): { token?: string } {
  const token = env.POLICYSHIP_OPA_TOKEN || undefined;
  if (token !== undefined && !/^[\x21-\x7e]+$/.test(token)) {
    throw new UserError(
      "POLICYSHIP_OPA_TOKEN holds spaces or characters a bearer token cannot",
      "set it to the token alone, without 'Bearer ' or a line break",
    );
  }
  for (const url of urls) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {}
    if (parsed && (parsed.username || parsed.password)) {
      throw new UserError(
        `--opa ${parsed.protocol}//***@${parsed.host} carries credentials in the URL`,
        "leave them out; an OPA that asks for a token gets it from POLICYSHIP_OPA_TOKEN",
      );
    }
    if (!parsed || !/^https?:$/.test(parsed.protocol) || !parsed.host)
      throw new UserError(
        `--opa ${printable(url, 200)} is not an http(s) URL`,
        "pass OPA's address, e.g. http://10.0.0.5:8181",
      );
    if (token && parsed.protocol === "http:" && !isLoopback(parsed.host)) {
      throw new UserError(
        `POLICYSHIP_OPA_TOKEN would cross the network in plain text to ${parsed.host}`,
        "serve OPA over HTTPS (--tls-cert-file) and pass https://, or unset the token",
      );
    }
  }
  return { token };
}
