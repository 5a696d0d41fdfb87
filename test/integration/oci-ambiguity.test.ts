import { createHash } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectOneLineError, runCli } from "../helpers/cli.ts";
import { createRepo, type TempRepo } from "../helpers/git-repo.ts";
import { startOpaServer } from "../helpers/opa-server.ts";
import { type RunningRegistry, startRegistry } from "../helpers/registry.ts";

/**
 * OPA, oras and the registry read manifests with Go's encoding/json: keys match fields case-insensitively
 * (ſ and K fold onto s and k) and the last match wins. Two bundles A and B share one revision; each crafted
 * manifest below names both. Each goes through `policyship verify` and through a real OPA pinned to that
 * manifest's digest: either both take the same bundle, or policyship refuses the manifest.
 */

const MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const INDEX = "application/vnd.oci.image.index.v1+json";
const GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";

interface Blob {
  bytes: Buffer;
  digest: string;
  size: number;
}

let registry: RunningRegistry;
let repo: TempRepo;
let revision: string;
let a: Blob;
let b: Blob;
/** The manifest publish pushed for A, parsed. */
let published: { config: unknown; annotations: unknown; layers: unknown[] };
let publishedBytes: Buffer;

const blobOf = (bytes: Buffer): Blob => ({
  bytes,
  digest: `sha256:${createHash("sha256").update(bytes).digest("hex")}`,
  size: bytes.length,
});
const layer = (blob: Blob) => JSON.stringify({ mediaType: GZIP, digest: blob.digest, size: blob.size });

async function pushBlob(repository: string, blob: Blob) {
  const start = await fetch(`http://${registry.host}/v2/${repository}/blobs/uploads/`, { method: "POST" });
  const location = new URL(start.headers.get("location") as string, `http://${registry.host}`);
  location.searchParams.set("digest", blob.digest);
  const put = await fetch(location, { method: "PUT", body: blob.bytes });
  expect(put.status).toBe(201);
}

async function putManifest(repository: string, reference: string, text: string, contentType: string) {
  const put = await fetch(`http://${registry.host}/v2/${repository}/manifests/${reference}`, {
    method: "PUT",
    headers: { "content-type": contentType },
    body: text,
  });
  expect(put.status, await put.text()).toBe(201);
}

/** The bundle a real OPA activates from `<repository>@<digest>`: "A", "B", or its download error. */
async function whatOpaRuns(repository: string, digest: string): Promise<string> {
  const file = path.join(repo.dir, `${repository.replaceAll("/", "-")}.json`);
  await writeFile(
    file,
    JSON.stringify({
      services: { registry: { url: `http://${registry.host}`, type: "oci" } },
      bundles: {
        authz: {
          service: "registry",
          resource: `${registry.host}/${repository}@${digest}`,
          polling: { min_delay_seconds: 1, max_delay_seconds: 2 },
        },
      },
      status: { prometheus: true },
    }),
  );
  const opa = await startOpaServer(["--config-file", file]);
  try {
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      const data = (await (await fetch(`${opa.url}/v1/data/marker/which`)).json()) as { result?: string };
      if (data.result) return data.result;
      const status = (await (await fetch(`${opa.url}/v1/status`)).json()) as {
        result?: { bundles?: { authz?: { code?: string; message?: string } } };
      };
      const bundle = status.result?.bundles?.authz;
      if (bundle?.code) return `error: ${bundle.message ?? bundle.code}`;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    return "nothing within 15 s";
  } finally {
    await opa.stop();
  }
}

beforeAll(async () => {
  registry = await startRegistry();
  repo = await createRepo({ examplePolicies: true });
  await repo.write("policies/marker.rego", 'package marker\n\nwhich := "A"\n');
  revision = repo.commit("marker A");
  expect((await runCli(["build"], { cwd: repo.dir })).exitCode).toBe(0);
  const publishedA = await runCli(["publish", "--store", `oci://${registry.host}/acme/policies`], {
    cwd: repo.dir,
    env: { DOCKER_CONFIG: path.join(repo.dir, "no-docker") },
  });
  expect(publishedA.exitCode, publishedA.stderr).toBe(0);
  a = blobOf(await readFile(path.join(repo.dir, `dist/${revision}.tar.gz`)));

  // B: other policies built under the same revision.
  const other = await createRepo({ examplePolicies: true });
  await other.write("policies/marker.rego", 'package marker\n\nwhich := "B"\n');
  other.commit("marker B");
  expect((await runCli(["build", "--revision", revision], { cwd: other.dir })).exitCode).toBe(0);
  b = blobOf(await readFile(path.join(other.dir, `dist/${revision}.tar.gz`)));

  const response = await fetch(`http://${registry.host}/v2/acme/policies/manifests/${revision}`, {
    headers: { accept: MANIFEST },
  });
  publishedBytes = Buffer.from(await response.arrayBuffer());
  published = JSON.parse(publishedBytes.toString("utf8"));
}, 120_000);

afterAll(async () => {
  await registry?.stop();
});

/** A manifest like publish's, with `layers` written as raw JSON text. */
const manifestWith = (layers: string) =>
  `{"schemaVersion":2,"mediaType":"${MANIFEST}","config":${JSON.stringify(published.config)},${layers},"annotations":${JSON.stringify(published.annotations)}}`;

interface Case {
  name: string;
  text: () => string;
  contentType?: string;
  /** What a real OPA runs from it (Go's reading). */
  opa: RegExp;
  /** policyship's answer: the bundle verify accepts, or the refusal. */
  policyship: "A" | "B" | RegExp;
}

const CASES: Case[] = [
  {
    name: '"layers" then "Layers"',
    text: () => manifestWith(`"layers":[${layer(a)}],"Layers":[${layer(b)}]`),
    opa: /^B$/,
    policyship: /the keys "layers" and "Layers" differ only in case/,
  },
  {
    name: '"Layers" only',
    text: () => manifestWith(`"Layers":[${layer(b)}]`),
    opa: /^B$/,
    policyship: /the key "Layers" is not spelled "layers"/,
  },
  {
    name: 'exact duplicate "layers"',
    text: () => manifestWith(`"layers":[${layer(a)}],"layers":[${layer(b)}]`),
    opa: /^B$/,
    policyship: /the key "layers" appears twice/,
  },
  {
    name: 'duplicate "mediaType" in a layer',
    text: () =>
      manifestWith(
        `"layers":[{"mediaType":"${GZIP}","mediaType":"text/plain","digest":"${a.digest}","size":${a.size}},${layer(b)}]`,
      ),
    opa: /^B$/,
    policyship: /the key "mediaType" appears twice/,
  },
  {
    name: '"MediaType" beside "mediaType" in a layer',
    text: () =>
      manifestWith(
        `"layers":[{"mediaType":"${GZIP}","MediaType":"text/plain","digest":"${a.digest}","size":${a.size}},${layer(b)}]`,
      ),
    opa: /^B$/,
    policyship: /the keys "mediaType" and "MediaType" differ only in case/,
  },
  {
    name: '"Digest" and "Size" beside "digest" and "size"',
    text: () =>
      manifestWith(
        `"layers":[{"mediaType":"${GZIP}","digest":"${a.digest}","size":${a.size},"Digest":"${b.digest}","Size":${b.size}}]`,
      ),
    opa: /^B$/,
    policyship: /the keys "digest" and "Digest" differ only in case/,
  },
  {
    name: '"layerſ" (U+017F folds onto s in Go)',
    text: () => manifestWith(`"layers":[${layer(a)}],"layerſ":[${layer(b)}]`),
    opa: /^B$/,
    policyship: /the keys "layers" and "layerſ" differ only in case/,
  },
  {
    name: '"ʟayers" (U+029F has no fold: another key to Go too)',
    text: () => manifestWith(`"layers":[${layer(a)}],"ʟayers":[${layer(b)}]`),
    opa: /^A$/,
    policyship: "A",
  },
  {
    name: "a second gzip layer (OPA and policyship both take the first)",
    text: () => manifestWith(`"layers":[${layer(a)},${layer(b)}]`),
    opa: /^A$/,
    policyship: "A",
  },
  {
    name: "an index naming the published manifest",
    text: () =>
      JSON.stringify({
        schemaVersion: 2,
        mediaType: INDEX,
        manifests: [
          {
            mediaType: MANIFEST,
            digest: blobOf(publishedBytes).digest,
            size: publishedBytes.length,
          },
        ],
      }),
    contentType: INDEX,
    // OPA 1.22.2 follows the index to a manifest; publish never writes one, so policyship refuses it rather
    // than keep a second way of choosing a manifest in step with OPA's.
    opa: /^A$/,
    policyship: /it is "application\/vnd\.oci\.image\.index\.v1\+json", not an image manifest/,
  },
];

describe("a manifest that Go and JavaScript read differently", () => {
  CASES.forEach((entry, index) => {
    it(`${entry.name}: ${typeof entry.policyship === "string" ? `verify and OPA both take ${entry.policyship}` : "policyship refuses it"}`, async () => {
      const repository = `acme/case-${index}`;
      const config = blobOf(Buffer.from("{}"));
      for (const blob of [config, a, b]) await pushBlob(repository, blob);
      await putManifest(repository, blobOf(publishedBytes).digest, publishedBytes.toString("utf8"), MANIFEST);
      const text = entry.text();
      await putManifest(repository, revision, text, entry.contentType ?? MANIFEST);

      const ran = await whatOpaRuns(repository, blobOf(Buffer.from(text)).digest);
      expect(ran).toMatch(entry.opa);

      const verified = await runCli(
        ["verify", revision, "--store", `oci://${registry.host}/${repository}`, "--json"],
        { cwd: repo.dir, env: { DOCKER_CONFIG: path.join(repo.dir, "no-docker") } },
      );
      if (typeof entry.policyship === "string") {
        expect(verified.exitCode, verified.stderr).toBe(0);
        const sha256 = JSON.parse(verified.stdout).sha256;
        expect(`sha256:${sha256}`).toBe(entry.policyship === "A" ? a.digest : b.digest);
        expect(ran).toBe(entry.policyship);
      } else {
        expect(verified.exitCode).toBe(1);
        expect(expectOneLineError(verified)).toMatch(
          new RegExp(`^policyship: the manifest of \\S+ is refused: ${entry.policyship.source}`),
        );
      }
      // config refuses to pin what verify refuses.
      const rendered = await runCli(
        ["config", "--revision", revision, "--store", `oci://${registry.host}/${repository}`],
        { cwd: repo.dir, env: { DOCKER_CONFIG: path.join(repo.dir, "no-docker") } },
      );
      expect(rendered.exitCode).toBe(typeof entry.policyship === "string" ? 0 : 1);
    });
  });
});
