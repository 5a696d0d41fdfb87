import { createSign, generateKeyPairSync, randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { freePort } from "./ports.ts";
import { startProcess } from "./processes.ts";
import { toolPath } from "./tools.ts";

export interface RunningRegistry {
  /** host:port on 127.0.0.1, as a registry is named in oci://<host>/<repository>. */
  host: string;
  /** Requests the registry served, by method and path (from its access log). */
  output: () => string;
  /** With auth: a token for the scope, signed by the token service the registry trusts. */
  mintToken: (scope: string, lifetimeSeconds?: number) => string;
  /** With auth: how many tokens the token service issued, and to whom. */
  issued: { user: string; scope: string }[];
  stop: () => Promise<void>;
}

const SERVICE = "policyship-test";
const ISSUER = "policyship-test-issuer";

/**
 * Starts CNCF Distribution's `registry` (built by make setup) on a free loopback port, with a temp storage
 * dir. With `users`, the registry requires bearer tokens from a token service on loopback that issues them
 * (ES256, trusted through a JWKS) to those users' basic credentials: the registry's real challenge flow.
 */
export async function startRegistry(
  options: {
    users?: Record<string, string>;
    /** OAuth2 refresh tokens the token service exchanges, and the user each stands for. */
    refreshTokens?: Record<string, string>;
    deletes?: boolean;
  } = {},
): Promise<RunningRegistry> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-registry-"));
  const port = await freePort();
  const issued: { user: string; scope: string }[] = [];
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const kid = randomBytes(8).toString("hex");
  const mintToken = (scope: string, lifetimeSeconds = 600) => {
    const now = Math.floor(Date.now() / 1000);
    const access = scope
      .split(" ")
      .filter(Boolean)
      .map((entry) => {
        const [type, ...rest] = entry.split(":");
        const actions = (rest.pop() ?? "").split(",").filter(Boolean);
        return { type, name: rest.join(":"), actions };
      });
    const header = { alg: "ES256", typ: "JWT", kid };
    const claims = {
      iss: ISSUER,
      sub: "test",
      aud: SERVICE,
      exp: now + lifetimeSeconds,
      nbf: now - 10,
      iat: now,
      jti: randomUUID(),
      access,
    };
    const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const signingInput = `${encode(header)}.${encode(claims)}`;
    const signature = createSign("SHA256")
      .update(signingInput)
      .sign({ key: privateKey, dsaEncoding: "ieee-p1363" })
      .toString("base64url");
    return `${signingInput}.${signature}`;
  };

  let tokenServer: http.Server | undefined;
  let auth = "";
  if (options.users) {
    const users = options.users;
    const refreshTokens = options.refreshTokens ?? {};
    const issue = (
      response: http.ServerResponse,
      user: string,
      scope: string,
      field: "token" | "access_token",
    ) => {
      issued.push({ user, scope });
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ [field]: mintToken(scope) }));
    };
    tokenServer = http.createServer((request, response) => {
      const url = new URL(request.url ?? "/", "http://localhost");
      if (request.method === "POST") {
        // OAuth2 refresh-token grant, as docker uses for an identity token.
        let body = "";
        request.setEncoding("utf8");
        request.on("data", (chunk: string) => {
          body += chunk;
        });
        request.on("end", () => {
          const form = new URLSearchParams(body);
          const user = refreshTokens[form.get("refresh_token") ?? ""];
          if (form.get("grant_type") !== "refresh_token" || !user) response.writeHead(401).end();
          else issue(response, user, form.getAll("scope").join(" "), "access_token");
        });
        return;
      }
      const [scheme, encoded] = (request.headers.authorization ?? "").split(" ");
      const [user = "", password] = Buffer.from(encoded ?? "", "base64")
        .toString("utf8")
        .split(/:(.*)/s);
      if (scheme !== "Basic" || users[user] === undefined || users[user] !== password) {
        response.writeHead(401).end();
        return;
      }
      issue(response, user, url.searchParams.getAll("scope").join(" "), "token");
    });
    await new Promise<void>((resolve) => tokenServer?.listen(0, "127.0.0.1", resolve));
    const tokenPort = (tokenServer.address() as AddressInfo).port;
    const jwks = path.join(dir, "jwks.json");
    await writeFile(
      jwks,
      JSON.stringify({ keys: [{ ...publicKey.export({ format: "jwk" }), kid, alg: "ES256", use: "sig" }] }),
    );
    auth = `auth:
  token:
    realm: http://127.0.0.1:${tokenPort}/token
    service: ${SERVICE}
    issuer: ${ISSUER}
    jwks: ${jwks}
`;
  }
  const config = path.join(dir, "config.yml");
  await writeFile(
    config,
    `version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: ${path.join(dir, "data")}
  delete:
    enabled: ${options.deletes ?? true}
http:
  addr: 127.0.0.1:${port}
  secret: ${randomBytes(16).toString("hex")}
${auth}`,
  );
  const server = startProcess(toolPath("registry"), ["serve", config], { PATH: process.env.PATH, HOME: dir });
  const stop = async () => {
    await server.stop();
    await new Promise<void>((resolve) => (tokenServer ? tokenServer.close(() => resolve()) : resolve()));
    await rm(dir, { recursive: true, force: true });
  };
  const host = `127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const status = await fetch(`http://${host}/v2/`, { signal: AbortSignal.timeout(1000) })
      .then((response) => response.status)
      .catch(() => 0);
    // /v2/ answers 200 when open and 401 when it wants a token: either way it is serving.
    if (status === 200 || status === 401) break;
    if (!server.alive() || Date.now() > deadline) {
      await stop();
      throw new Error(`registry did not start\n${server.output()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { host, output: server.output, mintToken, issued, stop };
}
