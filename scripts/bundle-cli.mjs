// Bundles the CLI (src/cli.ts and everything it lazily imports) and the library entry (src/index.ts) into
// dist/cli-bundle/ with code splitting. Start-up is dominated by resolving and reading hundreds of small
// modules (the AWS SDK alone is ~160 ms unbundled); one file per lazily loaded command keeps `--version`
// and `config` light. The bundle carries the CLI's own dependencies (the AWS SDK, commander, zod, yaml),
// so the package's runtime dependencies are only what "policyship/enforcer" needs: an app that only
// enforces installs no AWS SDK. The enforcer (dist/enforcer/) stays as tsc emits it.
import { cp, mkdir, rm } from "node:fs/promises";
import { build } from "esbuild";

// Chunk names carry a content hash: without this, every rebuild would leave the last build's chunks for
// `npm pack` to ship.
await rm("dist/cli-bundle", { recursive: true, force: true });
await build({
  entryPoints: { cli: "src/cli.ts", index: "src/index.ts" },
  outdir: "dist/cli-bundle",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node22",
  sourcemap: "linked",
  legalComments: "linked",
  logLevel: "warning",
  // CommonJS dependencies call require() for node builtins; an ESM bundle needs one.
  banner: {
    js: "import { createRequire as __policyshipRequire } from 'node:module'; const require = __policyshipRequire(import.meta.url);",
  },
  chunkNames: "chunks/[name]-[hash]",
});

// What `policyship init` scaffolds: the repository's own release workflow and example policies.
await rm("dist/templates", { recursive: true, force: true });
await mkdir("dist/templates/policies", { recursive: true });
await cp(".github/workflows/policy-release.yml", "dist/templates/policy-release.yml");
await cp(".github/workflows/policy-impact.yml", "dist/templates/policy-impact.yml");
await cp("examples/github/policy-release-oci.yml", "dist/templates/policy-release-oci.yml");
await cp(".github/workflows/policy-rollback.yml", "dist/templates/policy-rollback.yml");
await cp("examples/github/policy-rollback-oci.yml", "dist/templates/policy-rollback-oci.yml");
for (const file of ["authz.rego", "authz_test.rego", "data.json"])
  await cp(`policies/${file}`, `dist/templates/policies/${file}`);

await import("./commonjs-types.mjs");
