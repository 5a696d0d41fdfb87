import { createHash } from "node:crypto";
import { mkdtemp, writeFile } from "node:fs/promises";
import type http from "node:http";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { FailureError, UserError } from "../../src/errors.ts";
import { renderOpaConfig } from "../../src/opa-config/render.ts";
import { DEFAULTS, type Settings } from "../../src/settings-schema.ts";
import { RegistryClient } from "../../src/store/oci/client.ts";
import { findCredential } from "../../src/store/oci/credentials.ts";
import { parseManifest } from "../../src/store/oci/manifest.ts";
import { OciStore } from "../../src/store/oci/oci.ts";
import { parseRegistry, tagOf } from "../../src/store/oci/reference.ts";
import { parseChallenge } from "../../src/store/oci/wire.ts";
import { endlessJson, serversClosedAfterEach } from "../helpers/serve.ts";

const settings = (overrides: Partial<Settings> = {}): Settings =>
  ({ ...DEFAULTS, entrypoints: [], ignore: [], ...overrides }) as Settings;
const sha = "b".repeat(40);

const server = serversClosedAfterEach();
/** A loopback server; returns its host:port. */
const serve = async (handler: http.RequestListener) => new URL(await server(handler)).host;

describe("registry references", () => {
  it("parses oci://registry/repository, with plain HTTP only for loopback and named hosts", () => {
    expect(parseRegistry("oci://ghcr.io/acme/policies")).toEqual({
      registry: "ghcr.io",
      apiHost: "ghcr.io",
      repository: "acme/policies",
      scheme: "https",
    });
    expect(parseRegistry("127.0.0.1:5000/acme/p").scheme).toBe("http");
    expect(parseRegistry("localhost:5000/p").scheme).toBe("http");
    expect(parseRegistry("[::1]:5000/p").scheme).toBe("http");
    expect(parseRegistry("registry.lan:5000/p").scheme).toBe("https");
    expect(parseRegistry("registry.lan:5000/p", ["registry.lan:5000"]).scheme).toBe("http");
    // A name that only starts like a loopback address is not one.
    expect(parseRegistry("127.0.0.1.attacker.example/p").scheme).toBe("https");
    expect(parseRegistry("localhost.attacker.example/p").scheme).toBe("https");
  });

  it("maps Docker Hub to its API host and official images to library/", () => {
    expect(parseRegistry("docker.io/policies")).toMatchObject({
      registry: "docker.io",
      apiHost: "registry-1.docker.io",
      repository: "library/policies",
    });
  });

  it("refuses tags, digests, upper case and hosts that are not hosts", () => {
    for (const bad of [
      "oci://ghcr.io",
      "oci://ghcr.io/acme/p:latest",
      "oci://ghcr.io/acme/p@sha256:00",
      "ghcr.io/Acme/p",
      "acme/policies",
      "oci://ghcr.io/acme//p",
      "oci://ghcr.io/acme/../p",
      "oci://user:pass@ghcr.io/p",
    ]) {
      expect(() => parseRegistry(bad), bad).toThrow(UserError);
    }
  });

  it("takes revisions that can be tags and refuses the others", () => {
    expect(tagOf(sha)).toBe(sha);
    expect(tagOf("v1.2.3_rc")).toBe("v1.2.3_rc");
    expect(() => tagOf("-rev")).toThrow(/cannot be an OCI tag/);
    expect(() => tagOf(".rev")).toThrow(/cannot be an OCI tag/);
  });
});

describe("the rendered OCI config", () => {
  const pin = `sha256:${"c".repeat(64)}`;

  it("names a type: oci service and pins <registry>/<repository>@<manifest digest>, not the tag", () => {
    const config = renderOpaConfig({
      revision: sha,
      settings: settings({ registry: "ghcr.io/acme/policies" }),
      pin,
    });
    expect(config).toMatchObject({
      services: { bundles: { url: "https://ghcr.io", type: "oci" } },
      bundles: { authz: { service: "bundles", resource: `ghcr.io/acme/policies@${pin}` } },
      labels: { "policyship-revision": sha },
    });
    expect(JSON.stringify(config)).not.toContain("s3_signing");
  });

  it("refuses to render without a manifest digest, or with something else in its place", () => {
    for (const given of [undefined, `sha256:${"C".repeat(64)}`, "latest", `${pin}\nx`]) {
      expect(() =>
        renderOpaConfig({
          revision: sha,
          settings: settings({ registry: "ghcr.io/acme/policies" }),
          pin: given,
        }),
      ).toThrow(/no manifest digest to pin revision b{40} to/);
    }
  });

  it("takes OPA's token from a file or from OPA's environment, never inline", () => {
    const fromFile = renderOpaConfig({
      revision: sha,
      settings: settings({ registry: "ghcr.io/acme/policies", registryTokenPath: "/run/secrets/ghcr" }),
      pin,
    });
    expect(fromFile).toMatchObject({
      services: {
        bundles: { credentials: { bearer: { scheme: "Bearer", token_path: "/run/secrets/ghcr" } } },
      },
    });
    const fromEnv = renderOpaConfig({
      revision: sha,
      settings: settings({ registry: "ghcr.io/acme/policies", registryTokenEnv: "GHCR_TOKEN" }),
      pin,
    });
    expect(fromEnv).toMatchObject({
      services: { bundles: { credentials: { bearer: { scheme: "Bearer", token: `\${GHCR_TOKEN}` } } } },
    });
  });

  it("refuses ${ in a token path, which OPA would replace with one of its variables", () => {
    expect(() =>
      renderOpaConfig({
        revision: sha,
        settings: settings({
          registry: "ghcr.io/acme/policies",
          registryTokenPath: `/run/\${AWS_SECRET_ACCESS_KEY}`,
        }),
        pin,
      }),
    ).toThrow(/--registry-token-path contains "\$\{"/);
  });
});

describe("registry credentials", () => {
  const dockerConfig = async (config: unknown) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-docker-"));
    await writeFile(path.join(dir, "config.json"), JSON.stringify(config));
    return dir;
  };

  it("GITHUB_TOKEN for ghcr.io only", async () => {
    const env = { DOCKER_CONFIG: "/nonexistent", GITHUB_TOKEN: "ghs_x", GITHUB_ACTOR: "octo" };
    expect(await findCredential("ghcr.io", env)).toEqual({
      kind: "basic",
      username: "octo",
      password: "ghs_x",
      source: "GITHUB_TOKEN",
    });
    expect(await findCredential("registry.example.com", env)).toBeUndefined();
  });

  it("docker's config.json: auths by host (with or without a scheme), and identity tokens", async () => {
    const auth = Buffer.from("me:pw:with:colons").toString("base64");
    const dir = await dockerConfig({
      auths: {
        "https://registry.example.com": { auth },
        "other.example.com": { identitytoken: "refresh" },
        "https://index.docker.io/v1/": { auth },
      },
    });
    expect(await findCredential("registry.example.com", { DOCKER_CONFIG: dir })).toMatchObject({
      kind: "basic",
      username: "me",
      password: "pw:with:colons",
    });
    expect(await findCredential("other.example.com", { DOCKER_CONFIG: dir })).toMatchObject({
      kind: "identity",
      token: "refresh",
    });
    expect(await findCredential("docker.io", { DOCKER_CONFIG: dir })).toMatchObject({ username: "me" });
    expect(await findCredential("unknown.example.com", { DOCKER_CONFIG: dir })).toBeUndefined();
  });

  it("a broken config.json or helper name is one clear error", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-docker-"));
    await writeFile(path.join(dir, "config.json"), "{ not json");
    await expect(findCredential("ghcr.io", { DOCKER_CONFIG: dir })).rejects.toThrow(/is not valid JSON/);
    const helper = await dockerConfig({ credHelpers: { "ghcr.io": "../../bin/sh" } });
    await expect(findCredential("ghcr.io", { DOCKER_CONFIG: helper })).rejects.toThrow(/is not a plain name/);
    const missing = await dockerConfig({ credsStore: "policyship-missing-helper" });
    await expect(findCredential("ghcr.io", { DOCKER_CONFIG: missing, PATH: "/nonexistent" })).rejects.toThrow(
      /docker-credential-policyship-missing-helper is not on PATH/,
    );
  });
});

describe("the bearer challenge", () => {
  it("parses quoted and bare parameters", () => {
    expect(
      parseChallenge(
        'Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull,push"',
      ),
    ).toEqual({
      scheme: "bearer",
      params: { realm: "https://auth.example/token", service: "reg", scope: "repository:a/b:pull,push" },
    });
    expect(parseChallenge('Basic realm="x"')?.scheme).toBe("basic");
  });

  it("never sends credentials to a realm that is not HTTPS and not on this machine", async () => {
    let authorizations = 0;
    const host = await serve((request, response) => {
      if (request.headers.authorization) authorizations++;
      response.writeHead(401, {
        "www-authenticate": 'Bearer realm="http://token.attacker.example/token",service="x"',
      });
      response.end();
    });
    const client = new RegistryClient(parseRegistry(`${host}/acme/p`), {
      kind: "basic",
      username: "u",
      password: "p",
      source: "test",
    });
    const failure = await client
      .send("GET", client.url("tags/list"), "pull")
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(FailureError);
    expect((failure as Error).message).toMatch(
      /asked for credentials at http:\/\/token\.attacker\.example, which is not HTTPS; refused/,
    );
    expect(authorizations).toBe(0);
  });
});

describe("blobs behind a redirect", () => {
  /** A registry that wants basic credentials and sends blobs to a CDN on another origin. */
  async function setup(served: Buffer, declared: Buffer) {
    const cdnAuthorizations: (string | undefined)[] = [];
    const cdn = await serve((request, response) => {
      cdnAuthorizations.push(request.headers.authorization);
      response.end(served);
    });
    const digest = `sha256:${createHash("sha256").update(declared).digest("hex")}`;
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest, size: declared.length }],
    });
    const host = await serve((request, response) => {
      if (request.headers.authorization !== `Basic ${Buffer.from("u:p").toString("base64")}`) {
        response.writeHead(401, { "www-authenticate": 'Basic realm="registry"' }).end();
      } else if (request.url?.includes("/manifests/")) {
        response
          .writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json" })
          .end(manifest);
      } else {
        response.writeHead(307, { location: `http://${cdn}/blob` }).end();
      }
    });
    const store = new OciStore(
      parseRegistry(`${host}/acme/p`),
      { kind: "basic", username: "u", password: "p", source: "test" },
      "",
    );
    return { store, cdnAuthorizations };
  }

  it("follows the redirect without the registry's credentials, and checks the digest", async () => {
    const bundle = Buffer.from("the bundle bytes");
    const { store, cdnAuthorizations } = await setup(bundle, bundle);
    expect((await store.get(`${sha}.tar.gz`)).equals(bundle)).toBe(true);
    expect(cdnAuthorizations).toEqual([undefined]);
  });

  it("refuses other bytes than the digest names, and more bytes than the manifest declares", async () => {
    const other = await setup(Buffer.from("other bundle bytes"), Buffer.from("the bundle bytes!!"));
    await expect(other.store.get(`${sha}.tar.gz`)).rejects.toThrow(/served sha256:[0-9a-f]{64} for the blob/);
    const longer = await setup(Buffer.alloc(100_000, 1), Buffer.from("short"));
    await expect(longer.store.get(`${sha}.tar.gz`)).rejects.toThrow(/sent more than the 5 bytes/);
  });
});

describe("URLs the registry hands back", () => {
  const credential = { kind: "basic", username: "u", password: "p", source: "test" } as const;

  /** A registry with basic auth whose upload locations and tag pages point wherever `elsewhere` says. */
  async function setup(elsewhere: string) {
    const foreign: (string | undefined)[] = [];
    const other = await serve((request, response) => {
      foreign.push(request.headers.authorization);
      response.writeHead(201).end(JSON.stringify({ tags: [] }));
    });
    const host = await serve((request, response) => {
      if (!request.headers.authorization) {
        response.writeHead(401, { "www-authenticate": 'Basic realm="registry"' }).end();
      } else if (request.method === "HEAD" || request.url?.includes("/manifests/")) {
        response.writeHead(404).end();
      } else if (request.method === "POST") {
        response.writeHead(202, { location: elsewhere.replace("OTHER", other) }).end();
      } else if (request.url?.includes("/tags/list")) {
        response
          .writeHead(200, { link: `<${elsewhere.replace("OTHER", other)}>; rel="next"` })
          .end(JSON.stringify({ tags: [] }));
      } else {
        response.writeHead(500).end();
      }
    });
    const store = new OciStore(parseRegistry(`${host}/acme/p`), credential, "");
    return { store, foreign };
  }

  async function publish(store: OciStore) {
    const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-oci-"));
    const file = path.join(dir, "bundle.tar.gz");
    const bytes = Buffer.from("bundle");
    await writeFile(file, bytes);
    return store.createIfAbsent({
      key: `${sha}.tar.gz`,
      file,
      size: bytes.length,
      sha256: createHash("sha256").update(bytes).digest("hex"),
      contentType: "application/gzip",
      metadata: {},
    });
  }

  it("never sends the registry's credentials to an upload location on another host", async () => {
    const { store, foreign } = await setup("http://OTHER/v2/acme/p/blobs/uploads/1");
    await expect(publish(store)).rejects.toThrow(
      /sent the upload to another host \(127\.0\.0\.1:\d+\); refused/,
    );
    expect(foreign).toEqual([]);
  });

  it("never follows a page of tags on another host", async () => {
    const { store, foreign } = await setup("http://OTHER/v2/acme/p/tags/list?last=x");
    await expect(store.list("")).rejects.toThrow(/sent the next page of tags to another host/);
    expect(foreign).toEqual([]);
  });

  it("an unparseable location is one clear refusal", async () => {
    const { store } = await setup("http://[oops/");
    await expect(publish(store)).rejects.toThrow(/sent the upload to an invalid URL; refused/);
    await expect(store.list("")).rejects.toThrow(/sent the next page of tags to an invalid URL/);
  });
});

describe("the bundle layer of a manifest", () => {
  const gzip = "application/vnd.oci.image.layer.v1.tar+gzip";
  const manifest = (layers: unknown[]) =>
    Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", layers }),
    );
  const good = { mediaType: gzip, digest: `sha256:${"a".repeat(64)}`, size: 10 };

  it("is the first gzip layer, the one OPA deploys", () => {
    const other = { ...good, digest: `sha256:${"b".repeat(64)}` };
    const found = parseManifest(
      manifest([{ mediaType: "text/plain", digest: good.digest, size: 1 }, good, other]),
      "m",
    );
    expect(found.layer).toEqual(good);
  });

  it("is none when OPA's first gzip layer cannot be checked, even if a later one could", () => {
    for (const first of [
      { ...good, digest: `sha512:${"c".repeat(128)}` },
      { ...good, size: -1 },
      { mediaType: gzip },
    ]) {
      expect(parseManifest(manifest([first, good]), "m").layer, JSON.stringify(first)).toBeUndefined();
    }
  });
});

describe("answers from a registry are read under a cap", () => {
  it("an endless or broken tag list is one clear failure, not an empty list", async () => {
    const endlessHost = await serve(endlessJson);
    const store = new OciStore(parseRegistry(`${endlessHost}/acme/p`), undefined, "");
    await expect(store.list("")).rejects.toThrow(
      /answered the tag list of acme\/p with something that is not JSON of at most 16777216 bytes/,
    );
    const brokenHost = await serve((_request, response) => {
      response.writeHead(200, { "content-type": "application/json" }).end("<html>");
    });
    const broken = new OciStore(parseRegistry(`${brokenHost}/acme/p`), undefined, "");
    await expect(broken.list("")).rejects.toThrow(FailureError);
  });

  it("an endless token answer is no token", async () => {
    const host = await serve((request, response) => {
      if (request.url?.startsWith("/token")) return endlessJson(request, response);
      response
        .writeHead(401, {
          "www-authenticate": `Bearer realm="http://${request.headers.host}/token",service="x"`,
        })
        .end();
    });
    const client = new RegistryClient(parseRegistry(`${host}/acme/p`), undefined);
    await expect(client.send("GET", client.url("tags/list"), "pull")).rejects.toThrow(
      /the token service of 127\.0\.0\.1:\d+ answered 200 without a token/,
    );
  });
});

describe("list on a long history", () => {
  it("reports each batch of manifests read, up to the total", async () => {
    const tags = Array.from({ length: 20 }, (_, i) => i.toString(16).padStart(40, "0"));
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      layers: [],
    });
    const host = await serve((request, response) => {
      if (request.url?.includes("/tags/list")) {
        response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ tags }));
      } else {
        response
          .writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json" })
          .end(manifest);
      }
    });
    const seen: [number, number][] = [];
    const store = new OciStore(parseRegistry(`${host}/acme/p`), undefined, "", {
      onListed: (read, total) => seen.push([read, total]),
    });
    expect(await store.list("")).toHaveLength(20);
    expect(seen).toEqual([
      [8, 20],
      [16, 20],
      [20, 20],
    ]);
  });
});
