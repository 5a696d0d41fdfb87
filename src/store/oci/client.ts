import { setTimeout as sleep } from "node:timers/promises";
import { FailureError, isKnownError, UserError } from "../../errors.ts";
import { parseJson } from "../../safe-json.ts";
import type { Credential } from "./credentials.ts";
import { baseUrl, isLoopback, type RegistryReference } from "./reference.ts";
import { type Challenge, parseChallenge, readBounded, readRegistryJson } from "./wire.ts";

/**
 * The few calls of the OCI distribution API that a store needs, with docker's authentication: anonymous
 * first, then the registry's challenge (a bearer token from its realm, or basic credentials).
 * https://github.com/opencontainers/distribution-spec/blob/main/spec.md
 * https://distribution.github.io/distribution/spec/auth/token/
 *
 * Written here because no Node client fits: @snyk/docker-registry-v2-client only pulls, and
 * docker-registry-client pushes through restify-clients and bunyan, far more than the few calls here need. It is
 * tested against CNCF Distribution with and without token auth (test/integration/oci*.test.ts).
 */

export type Access = "pull" | "push" | "delete";

interface SendInit {
  headers?: Record<string, string>;
  body?: Buffer | string | ReadableStream;
  timeoutMs?: number;
  /** Stops the request (and its retries) at once: an interrupt. */
  signal?: AbortSignal;
}

const REQUEST_TIMEOUT_MS = 60_000;
const MAX_ATTEMPTS = 4;
/** A token answer is a few kilobytes of JWT; a larger one is not read. */
const MAX_TOKEN_RESPONSE = 1024 * 1024;

export class RegistryClient {
  private readonly tokens = new Map<string, string>();
  private useBasic = false;
  readonly base: string;

  constructor(
    readonly reference: RegistryReference,
    private readonly credential: Credential | undefined,
    private readonly insecureHosts: readonly string[] = [],
  ) {
    this.base = baseUrl(reference);
  }

  /** Where the credentials came from (an environment variable, a file, a helper), never the secret. */
  get credentialSource(): string | undefined {
    return this.credential?.source;
  }

  /** `/v2/<repository>/<rest>` */
  url(rest: string): string {
    return `${this.base}/v2/${this.reference.repository}/${rest}`;
  }

  /**
   * A URL the registry hands back (an upload location, the next page of tags), resolved against it. The
   * call to it carries the registry's credentials, so it must be the registry itself.
   */
  ownUrl(location: string, what: string): URL {
    let url: URL;
    try {
      url = new URL(location, this.base);
    } catch {
      throw new FailureError(`${this.reference.registry} sent ${what} to an invalid URL; refused`);
    }
    if (url.origin !== new URL(this.base).origin) {
      throw new FailureError(
        `${this.reference.registry} sent ${what} to another host (${url.host}); refused`,
      );
    }
    return url;
  }

  /**
   * One API call, authenticated as the registry asks. Network errors, 429 and 5xx are retried with backoff
   * when the body can be sent again; a stream body is sent once (the caller retries the whole upload).
   */
  async send(method: string, target: string, access: Access, init: SendInit = {}): Promise<Response> {
    const replayable = !(init.body instanceof ReadableStream);
    for (let attempt = 1; ; attempt++) {
      let response: Response;
      try {
        response = await this.authorized(method, target, access, init, replayable);
      } catch (error) {
        if (init.signal?.aborted) throw init.signal.reason;
        if (isKnownError(error)) throw error;
        // A request body that failed on its own (the bundle's digest check) is that failure, not the network's.
        const cause = (error as { cause?: unknown })?.cause;
        if (isKnownError(cause)) throw cause;
        if (!replayable || attempt >= MAX_ATTEMPTS) throw this.unreachable(error, method, attempt);
        await sleep(backoff(attempt), undefined, { signal: init.signal });
        continue;
      }
      if ((response.status === 429 || response.status >= 500) && replayable && attempt < MAX_ATTEMPTS) {
        await response.body?.cancel();
        await sleep(backoff(attempt), undefined, { signal: init.signal });
        continue;
      }
      return response;
    }
  }

  private async authorized(
    method: string,
    target: string,
    access: Access,
    init: SendInit,
    replayable: boolean,
  ): Promise<Response> {
    const scope = `repository:${this.reference.repository}:${access === "push" ? "pull,push" : access}`;
    const attempt = () =>
      fetch(target, {
        method,
        headers: { ...init.headers, ...this.authorization(scope) },
        body: init.body,
        redirect: "manual",
        signal: withTimeout(init.signal, init.timeoutMs ?? REQUEST_TIMEOUT_MS),
        ...(replayable ? {} : { duplex: "half" }),
      } as RequestInit);
    let response = await attempt();
    if (response.status !== 401) return response;
    const challenge = parseChallenge(response.headers.get("www-authenticate") ?? "");
    await response.body?.cancel();
    if (challenge?.scheme === "bearer") {
      this.tokens.set(scope, await this.fetchToken(challenge, scope));
    } else if (challenge?.scheme === "basic" && this.credential?.kind === "basic") {
      this.useBasic = true;
    } else {
      throw this.needsCredentials();
    }
    if (!replayable)
      throw new FailureError(
        `${this.reference.registry} asked for credentials in the middle of an upload`,
        "run again",
      );
    response = await attempt();
    if (response.status === 401) {
      await response.body?.cancel();
      throw this.rejected();
    }
    return response;
  }

  private authorization(scope: string): Record<string, string> {
    if (this.useBasic && this.credential?.kind === "basic") {
      return { authorization: `Basic ${basic(this.credential.username, this.credential.password)}` };
    }
    const token = this.tokens.get(scope);
    return token ? { authorization: `Bearer ${token}` } : {};
  }

  /** GET the realm (basic credentials) or POST it (an identity token), as docker does. */
  private async fetchToken(challenge: Challenge, scope: string): Promise<string> {
    const realm = this.realmOf(challenge);
    const service = challenge.params.service;
    let response: Response;
    try {
      if (this.credential?.kind === "identity") {
        const form = new URLSearchParams({
          grant_type: "refresh_token",
          refresh_token: this.credential.token,
          client_id: "policyship",
          scope,
          ...(service ? { service } : {}),
        });
        response = await fetch(realm, {
          method: "POST",
          body: form,
          redirect: "error",
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
      } else {
        realm.searchParams.set("scope", scope);
        if (service) realm.searchParams.set("service", service);
        const headers: Record<string, string> =
          this.credential?.kind === "basic"
            ? { authorization: `Basic ${basic(this.credential.username, this.credential.password)}` }
            : {};
        response = await fetch(realm, {
          headers,
          redirect: "error",
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
      }
    } catch (error) {
      throw new FailureError(
        `cannot reach the token service of ${this.reference.registry} (${realm.host}): ${causeOf(error)}`,
        "check the network, then run again",
      );
    }
    if (response.status === 401 || response.status === 403) {
      await response.body?.cancel();
      throw this.credential ? this.rejected() : this.needsCredentials();
    }
    const body = (await readRegistryJson(response, MAX_TOKEN_RESPONSE)) as
      | { token?: unknown; access_token?: unknown }
      | undefined;
    const token = body?.token ?? body?.access_token;
    if (!response.ok || typeof token !== "string" || token === "") {
      throw new FailureError(
        `the token service of ${this.reference.registry} answered ${response.status} without a token`,
        "run again; if it persists check the registry",
      );
    }
    return token;
  }

  /** The realm receives the credentials, so it must be HTTPS unless it stays on this machine (or is allowed). */
  private realmOf(challenge: Challenge): URL {
    let realm: URL;
    try {
      realm = new URL(challenge.params.realm ?? "");
    } catch {
      throw new FailureError(
        `${this.reference.registry} sent a bearer challenge without a valid realm`,
        "check the registry URL",
      );
    }
    const plainAllowed = isLoopback(realm.host) || this.insecureHosts.includes(realm.host);
    if (realm.protocol !== "https:" && !(realm.protocol === "http:" && plainAllowed)) {
      throw new FailureError(
        `${this.reference.registry} asked for credentials at ${realm.origin}, which is not HTTPS; refused`,
        "name the host with --insecure-registry only if you trust the network",
      );
    }
    return realm;
  }

  private needsCredentials(): UserError {
    return new UserError(
      `${this.reference.registry} requires credentials for ${this.reference.repository}`,
      this.reference.registry === "ghcr.io"
        ? "set GITHUB_TOKEN (with packages: write to publish), or docker login ghcr.io"
        : `docker login ${this.reference.registry}, or set POLICYSHIP_REGISTRY_USERNAME and POLICYSHIP_REGISTRY_PASSWORD`,
    );
  }

  private rejected(): UserError {
    return new UserError(
      `${this.reference.registry} rejected the credentials from ${this.credential?.source ?? "nowhere"}`,
      "check them (and that they may push to the repository), or docker login again",
    );
  }

  private unreachable(error: unknown, method: string, attempts: number): FailureError {
    return new FailureError(
      `cannot reach ${this.base} (${method}) after ${attempts} attempt${attempts === 1 ? "" : "s"}: ${causeOf(error)}`,
      `check the registry address and the network${this.reference.scheme === "https" ? " (plain HTTP needs --insecure-registry)" : ""}`,
    );
  }

  /** One line for a refused call: the status and the registry's error codes, never a header. */
  async refused(response: Response, what: string): Promise<FailureError | UserError> {
    const text = await readBounded(response);
    let detail = `HTTP ${response.status}`;
    try {
      const errors = (parseJson(text) as { errors?: { code?: string; message?: string }[] }).errors ?? [];
      if (errors.length) {
        detail = errors
          .slice(0, 3)
          .map((entry) => [entry.code, entry.message].filter(Boolean).join(": "))
          .join("; ");
      }
    } catch {}
    if (response.status === 403) {
      return new UserError(
        `${this.reference.registry} denied ${what} (${detail.slice(0, 300)})`,
        this.reference.registry === "ghcr.io"
          ? "give the workflow `permissions: packages: write`, and the package access to the repository"
          : "grant the credentials push (and delete, for prune) on the repository",
      );
    }
    return new FailureError(
      `${this.reference.registry} refused ${what}: ${detail.slice(0, 300)}`,
      "run again; if it persists check the registry",
    );
  }
}

function basic(username: string, password: string): string {
  return Buffer.from(`${username}:${password}`).toString("base64");
}

function backoff(attempt: number): number {
  return Math.min(2_000, 100 * 2 ** attempt) * (0.5 + Math.random() / 2);
}

function causeOf(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } })?.cause;
  if ((error as Error)?.name === "TimeoutError") return "timed out";
  return cause?.code ?? cause?.message ?? (error as Error)?.message ?? String(error);
}

/** The request's own timeout, and the caller's signal when there is one. */
function withTimeout(signal: AbortSignal | undefined, timeoutMs: number): AbortSignal {
  const timeout = AbortSignal.timeout(timeoutMs);
  return signal ? AbortSignal.any([signal, timeout]) : timeout;
}
