import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { UserError } from "../../errors.ts";
import { credentialHelperEnvironment } from "../../opa/environment.ts";
import { parseJson } from "../../safe-json.ts";

/**
 * Registry credentials for the CLI, found the way docker finds them. They are only ever sent to the
 * registry and the token realm it names; never printed, never on a child's argv.
 */
export type Credential =
  | { kind: "basic"; username: string; password: string; source: string }
  /** An OAuth2 refresh token (docker config `identitytoken`), exchanged at the realm. */
  | { kind: "identity"; token: string; source: string };

const HELPER_TIMEOUT_MS = 30_000;
const HELPER_MAX_OUTPUT = 64 * 1024;

/**
 * In order: POLICYSHIP_REGISTRY_USERNAME/PASSWORD, docker's config.json (a credential helper for the host,
 * then `credsStore`, then `auths`), GITHUB_TOKEN for ghcr.io. Undefined means anonymous.
 */
export async function findCredential(
  registry: string,
  env: NodeJS.ProcessEnv,
): Promise<Credential | undefined> {
  if (env.POLICYSHIP_REGISTRY_PASSWORD) {
    return {
      kind: "basic",
      username: env.POLICYSHIP_REGISTRY_USERNAME || "policyship",
      password: env.POLICYSHIP_REGISTRY_PASSWORD,
      source: "POLICYSHIP_REGISTRY_PASSWORD",
    };
  }
  const fromDocker = await fromDockerConfig(registry, env);
  if (fromDocker) return fromDocker;
  if (registry === "ghcr.io" && env.GITHUB_TOKEN) {
    // ghcr.io takes any user name with a token; the actor is what docker/login-action sends.
    return {
      kind: "basic",
      username: env.GITHUB_ACTOR || "github-actions",
      password: env.GITHUB_TOKEN,
      source: "GITHUB_TOKEN",
    };
  }
  return undefined;
}

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

function dockerConfigFile(env: NodeJS.ProcessEnv): string {
  return path.join(env.DOCKER_CONFIG || path.join(env.HOME || os.homedir(), ".docker"), "config.json");
}

/** docker keys Docker Hub as its v1 index URL, and other registries by host (sometimes with a scheme). */
function keysFor(registry: string): string[] {
  return registry === "docker.io"
    ? ["https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io"]
    : [registry];
}

function hostOfKey(key: string): string {
  return key.replace(/^https?:\/\//, "").replace(/\/.*$/, "");
}

async function fromDockerConfig(registry: string, env: NodeJS.ProcessEnv): Promise<Credential | undefined> {
  const file = dockerConfigFile(env);
  let config: DockerConfig;
  try {
    config = parseJson(await readFile(file, "utf8")) as DockerConfig;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new UserError(
      `cannot read ${file}: it is not valid JSON`,
      "fix it, or point DOCKER_CONFIG elsewhere",
    );
  }
  if (typeof config !== "object" || config === null) return undefined;
  const keys = keysFor(registry);
  const helper =
    keys.map((key) => config.credHelpers?.[key]).find((name) => typeof name === "string") ??
    config.credsStore;
  if (typeof helper === "string" && helper !== "") {
    const found = await runHelper(
      helper,
      registry === "docker.io" ? "https://index.docker.io/v1/" : registry,
      env,
    );
    if (found) return found;
  }
  const entry = Object.entries(config.auths ?? {}).find(
    ([key]) => keys.includes(key) || keys.includes(hostOfKey(key)),
  )?.[1];
  if (!entry || typeof entry !== "object") return undefined;
  const source = `${file} (auths.${registry})`;
  if (typeof entry.identitytoken === "string" && entry.identitytoken) {
    return { kind: "identity", token: entry.identitytoken, source };
  }
  if (typeof entry.auth === "string" && entry.auth) {
    const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0)
      throw new UserError(
        `${source} holds an auth value that is not base64 of user:password`,
        "run docker login again",
      );
    return { kind: "basic", username: decoded.slice(0, colon), password: decoded.slice(colon + 1), source };
  }
  if (typeof entry.username === "string" && typeof entry.password === "string") {
    return { kind: "basic", username: entry.username, password: entry.password, source };
  }
  return undefined;
}

/**
 * `docker-credential-<helper> get` with the server on stdin, as docker runs it
 * (https://github.com/docker/docker-credential-helpers). "Not found" is no credential; any other failure
 * stops the command, without the helper's output (it may echo secrets).
 */
async function runHelper(
  helper: string,
  server: string,
  env: NodeJS.ProcessEnv,
): Promise<Credential | undefined> {
  if (!/^[A-Za-z0-9_.-]+$/.test(helper)) {
    throw new UserError(
      `docker credential helper ${JSON.stringify(helper)} is not a plain name`,
      "fix credHelpers/credsStore in docker's config.json",
    );
  }
  const program = `docker-credential-${helper}`;
  const { code, stdout, error } = await new Promise<{
    code: number | null;
    stdout: string;
    error?: NodeJS.ErrnoException;
  }>((resolve) => {
    const child = spawn(program, ["get"], {
      env: credentialHelperEnvironment(env),
      stdio: ["pipe", "pipe", "ignore"],
      timeout: HELPER_TIMEOUT_MS,
    });
    let out = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      out += chunk;
      if (out.length > HELPER_MAX_OUTPUT) child.kill();
    });
    child.on("error", (spawnError: NodeJS.ErrnoException) =>
      resolve({ code: null, stdout: "", error: spawnError }),
    );
    child.on("close", (exitCode) => resolve({ code: exitCode, stdout: out }));
    child.stdin.on("error", () => {});
    child.stdin.end(server);
  });
  if (error?.code === "ENOENT") {
    throw new UserError(
      `docker credential helper ${program} is not on PATH`,
      "install it, or remove it from docker's config.json",
    );
  }
  if (code !== 0) {
    if (/credentials not found/i.test(stdout)) return undefined;
    throw new UserError(
      `${program} get failed for ${server} (exit ${code ?? "signal"})`,
      `run: echo ${server} | ${program} get`,
    );
  }
  let parsed: { Username?: unknown; Secret?: unknown };
  try {
    parsed = parseJson(stdout) as typeof parsed;
  } catch {
    throw new UserError(`${program} get printed something that is not JSON`, "check the helper");
  }
  if (typeof parsed.Secret !== "string" || parsed.Secret === "") return undefined;
  const source = program;
  // docker-credential-helpers: the user name <token> marks an identity (refresh) token.
  if (parsed.Username === "<token>") return { kind: "identity", token: parsed.Secret, source };
  return {
    kind: "basic",
    username: typeof parsed.Username === "string" ? parsed.Username : "",
    password: parsed.Secret,
    source,
  };
}
