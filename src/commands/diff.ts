import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Command } from "commander";
import { createContext, type Io, print } from "../cli-kit.ts";
import { addStoreOptions } from "../cli-options.ts";
import type { Context } from "../context.ts";
import type { BundleView, Changes } from "../diff/compare.ts";
import { FailureError } from "../errors.ts";
import { diffFiles, gitErrorLine } from "../git.ts";
import { locateOpaFor } from "../opa/locate.ts";
import { bundleLimits } from "../settings-access.ts";
import { resolveRevisionArgument } from "./verify.ts";

export interface DiffResult {
  from: { revision: string };
  to: { revision: string };
  /** Changed manifest fields (revision, roots, rego_version, wasm entrypoints, signing key ids): {from, to}. */
  manifest: Record<string, { from: unknown; to: unknown }>;
  files: Changes;
  rules: Changes;
  data: Changes;
}

const MANIFEST_FIELDS = ["revision", "roots", "rego_version", "wasm"] as const;

/**
 * A manifest field as diff reports it. readBundle has checked its type; of a wasm entry only the
 * entrypoint and module are kept, as its annotations may nest as deep as OPA reads, deeper than
 * stringify or JSON.stringify recurse.
 */
function reportedField(manifest: Record<string, unknown>, field: (typeof MANIFEST_FIELDS)[number]): unknown {
  const value = manifest[field];
  if (field !== "wasm" || !Array.isArray(value)) return value;
  return (value as Record<string, unknown>[]).map((entry) => ({
    entrypoint: entry.entrypoint ?? null,
    module: entry.module ?? null,
  }));
}

/**
 * Compares two bundles: published revisions, local bundle files, or git refs built on the fly. Rules are
 * compared as opa parses them (`package.rule`, every definition), data as JSON Pointers to leaves.
 */
export async function diff(
  context: Context,
  fromRef: string,
  toRef: string,
): Promise<{ result: DiffResult; patch?: string }> {
  const { settings, cwd } = context;
  const [{ BundleResolver }, { viewOf, compareKeys, compareData }, { stringify }, opa] = await Promise.all([
    import("../impact/bundles.ts"),
    import("../diff/compare.ts"),
    import("safe-stable-stringify"),
    locateOpaFor(context),
  ]);
  const resolver = new BundleResolver(context, opa);
  const bundleOf = async (ref: string) => {
    const file = path.resolve(cwd, ref);
    if (/\.tar\.gz$/.test(ref) && (await stat(file).catch(() => undefined))?.isFile()) return file;
    return resolver.bundleOf(await resolveRevisionArgument(context, ref));
  };
  const limits = bundleLimits(settings);
  // The views hold everything compared below, so what was downloaded or built can go at once. Both sides
  // settle first: one failing (an interrupt stops both opa builds) must not remove the dir the other still
  // writes to, which its next write would create again and leave behind.
  const settled = await Promise.allSettled([
    bundleOf(fromRef).then((bundle) => viewOf(opa, bundle, limits, fromRef)),
    bundleOf(toRef).then((bundle) => viewOf(opa, bundle, limits, toRef)),
  ]);
  await resolver.dispose();
  const [from, to] = settled.map((side) => {
    if (side.status === "rejected") throw side.reason;
    return side.value;
  }) as [BundleView, BundleView];
  const manifest: DiffResult["manifest"] = {};
  for (const field of MANIFEST_FIELDS) {
    const [a, b] = [reportedField(from.manifest, field), reportedField(to.manifest, field)];
    if (stringify(a) !== stringify(b)) manifest[field] = { from: a ?? null, to: b ?? null };
  }
  if (stringify(from.keyIds) !== stringify(to.keyIds)) manifest.keyids = { from: from.keyIds, to: to.keyIds };
  const result: DiffResult = {
    from: { revision: from.revision },
    to: { revision: to.revision },
    manifest,
    files: compareKeys(
      new Map([...from.files].filter(([name]) => name !== ".manifest")),
      new Map([...to.files].filter(([name]) => name !== ".manifest")),
      (a, b) => a.equals(b),
    ),
    rules: compareKeys(from.rules, to.rules, (a, b) => stringify(a) === stringify(b)),
    data: compareData(from.data, to.data),
  };
  if (!settings.patch) return { result };
  return { result, patch: await regoPatch(result.files, from.files, to.files) };
}

/** A unified diff of the Rego files that differ, through `git diff --no-index`. */
async function regoPatch(
  files: Changes,
  from: Map<string, Buffer>,
  to: Map<string, Buffer>,
): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-patch-"));
  try {
    const parts: string[] = [];
    for (const name of [...files.changed, ...files.added, ...files.removed]
      .filter((file) => file.endsWith(".rego"))
      .sort()) {
      const a = path.join(dir, "a.rego");
      const b = path.join(dir, "b.rego");
      await writeFile(a, from.get(name) ?? "");
      await writeFile(b, to.get(name) ?? "");
      // The files' contents come from the bundles: see diffFiles for what this git may not do with them.
      const text = await diffFiles(dir, a, b).catch((error: unknown) => {
        throw new FailureError(
          `cannot run git diff for --patch: ${gitErrorLine(error)}`,
          "install git, or leave out --patch",
        );
      });
      parts.push(
        text
          .replaceAll(`a${a}`, `a/${name}`)
          .replaceAll(`b${b}`, `b/${name}`)
          .replace(/^diff --git .*\n(index .*\n)?/, `diff ${name}\n`),
      );
    }
    return parts.join("");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function differs(result: DiffResult): boolean {
  const changed = (changes: Changes) =>
    changes.added.length + changes.removed.length + changes.changed.length > 0;
  return (
    changed(result.files) ||
    changed(result.rules) ||
    changed(result.data) ||
    Object.keys(result.manifest).some((field) => field !== "revision")
  );
}

/** --exit-code: 1 when the bundles differ, like git diff --exit-code. */
export function assertSame(context: Context, result: DiffResult) {
  if (context.settings.exitCode && differs(result)) {
    throw new FailureError(`${result.from.revision} and ${result.to.revision} differ`, undefined, result);
  }
}

export function renderDiff(result: DiffResult, patch?: string): string {
  const lines = [`diff ${result.from.revision} → ${result.to.revision}`];
  for (const [field, change] of Object.entries(result.manifest)) {
    lines.push(`  manifest ${field}: ${JSON.stringify(change.from)} → ${JSON.stringify(change.to)}`);
  }
  for (const [label, changes] of [
    ["file", result.files],
    ["rule", result.rules],
    ["data", result.data],
  ] as const) {
    for (const name of changes.added) lines.push(`  + ${label} ${name}`);
    for (const name of changes.removed) lines.push(`  - ${label} ${name}`);
    for (const name of changes.changed) lines.push(`  ~ ${label} ${name}`);
  }
  if (!differs(result)) lines.push("  no difference in files, rules or data");
  if (patch) lines.push("", patch.trimEnd());
  return lines.join("\n");
}

/** The `diff` command: its flags, help and examples, and how its result is printed. @internal: CLI only, kept out of the .d.ts */
export function defineDiff(program: Command, io: Io): Command {
  return addStoreOptions(program.command("diff"))
    .argument("<from>", "a published revision, a bundle file, or a git ref (built on the fly)")
    .argument("<to>", "the same kinds")
    .description("compare two bundles: manifest, files, rules per package, data paths, signing keys")
    .option("--patch", "add a unified diff of the Rego files")
    .option("--exit-code", "exit 1 when the bundles differ, like git diff --exit-code")
    .option("--out <dir>", "where build wrote bundles, searched first (default: dist)")
    .option("--policies <dir>", "policy directory, for refs built from git (default: policies)")
    .addHelpText(
      "after",
      `
Examples:
  $ policyship diff 3f2a9c1 HEAD
  $ policyship diff main my-branch --patch
  $ policyship diff dist/old.tar.gz dist/new.tar.gz --json
  $ policyship diff v1.4.2 v1.5.0 --bucket acme-policies --region eu-west-1 --exit-code
  $ policyship diff 3f2a9c1 HEAD --store oci://ghcr.io/acme/policies`,
    )
    .action(async (fromRef: string, toRef: string, _options, command: Command) => {
      const context = await createContext(io, command);
      const { result, patch } = await diff(context, fromRef, toRef);
      print(io, context, result, renderDiff(result, patch));
      assertSame(context, result);
    });
}
