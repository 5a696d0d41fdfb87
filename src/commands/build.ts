import { randomBytes } from "node:crypto";
import { constants as fsConstants } from "node:fs";
import { access, mkdir, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Command } from "commander";
import { readBundle } from "../bundle/read.ts";
import { assertWasmBuiltins } from "../bundle/wasm-builtins.ts";
import { createContext, type Io, pick, print } from "../cli-kit.ts";
import { addBuildOptions } from "../cli-options.ts";
import type { Context } from "../context.ts";
import { FailureError, UserError } from "../errors.ts";
import type { CommitMetadata } from "../git.ts";
import { interruptedBy } from "../interrupt.ts";
import { type BuildArgs, opaBuild } from "../opa/commands.ts";
import { locateOpaFor, type OpaBinary } from "../opa/locate.ts";
import { prepareSigningKey, redactKey, type SigningKey } from "../opa/signing-key.ts";
import { type ResolvedRevision, resolveBuildRevision } from "../revision.ts";
import { bundleLimits } from "../settings-access.ts";
import { artifactFile, type Target } from "../store/store.ts";

export interface BuildResult {
  revision: string;
  bundle: string;
  metadataFile: string;
  sha256: string;
  size: number;
  files: string[];
  roots: string[];
  regoVersion: number;
  opaVersion: string;
  target: Target;
  builtAt: string;
  git?: CommitMetadata;
}

/**
 * `<out>/<rev>.tar.gz` for rego, `<out>/<rev>.wasm.tar.gz` for wasm: one commit can build both, and the
 * manifest of each names the same revision.
 */
export function bundlePath(
  context: Context,
  revision: string,
  target: Target = context.settings.target,
): string {
  return path.resolve(context.cwd, context.settings.out, artifactFile(revision, target));
}

const POLICY_FILE = /\.(rego|json|ya?ml)$/;

/** The policies directory must exist, be a directory and hold at least one policy or data file. */
export async function assertPoliciesDir(context: Context): Promise<string> {
  const dir = path.resolve(context.cwd, context.settings.policies);
  const shown = context.settings.policies;
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(dir);
  } catch {
    throw new UserError(`policies directory ${shown} does not exist`, "create it or pass --policies <dir>");
  }
  if (!info.isDirectory()) {
    throw new UserError(`policies path ${shown} is a file, not a directory`, "pass --policies <dir>");
  }
  const entries = await readdir(dir, { recursive: true });
  if (
    !entries.some((entry) => POLICY_FILE.test(entry) && !entry.split(path.sep).some((p) => p.startsWith(".")))
  ) {
    throw new UserError(`policies directory ${shown} has no .rego or data files`, "add your policies there");
  }
  return dir;
}

async function assertReadable(
  file: string | undefined,
  flag: string,
  cwd: string,
): Promise<string | undefined> {
  if (!file) return undefined;
  const absolute = path.resolve(cwd, file);
  try {
    await access(absolute);
    if (!(await stat(absolute)).isFile()) throw new Error("not a file");
  } catch {
    throw new UserError(`${flag} ${file} cannot be read`, `check the path given to ${flag}`);
  }
  return absolute;
}

function assertBuildFlags(context: Context) {
  const { settings } = context;
  if (settings.optimize > 0 && settings.entrypoints.length === 0) {
    throw new UserError(
      `--optimize ${settings.optimize} needs at least one entrypoint`,
      "pass --entrypoint <package/rule>, e.g. --entrypoint authz/allow",
    );
  }
  if (settings.target === "wasm" && settings.entrypoints.length === 0) {
    throw new UserError("--target wasm needs at least one entrypoint", "pass --entrypoint authz/allow");
  }
}

/** Turns opa's load/compile errors into one line that names the policy files by their path in the repo. */
function describeBuildFailure(output: string, policies: string): string {
  const lines = output
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => /\.(rego|json|ya?ml):\d+|rego_|error/i.test(line))
    .map((line) =>
      line
        .replace(/^error:\s*/i, "")
        .replace(/^load error: bundle \.: /, "")
        .replace(/^\d+ errors? occurred:\s*/, "")
        .replace(
          /(^|\s)\.?\/?([\w./-]+\.(?:rego|json|ya?ml))(?=:)/g,
          (_m, space, file) => `${space}${path.join(policies, file)}`,
        ),
    )
    // "2 errors occurred:" alone is a header, not an error: nothing of it remains to show.
    .filter((line) => line !== "");
  return lines.slice(0, 5).join("; ") || output.trim().split("\n")[0] || "no output from opa";
}

/** opa build, with the signing key file removed afterwards whatever happens. */
async function runBuild(opa: OpaBinary, signingKey: SigningKey | undefined, args: BuildArgs) {
  try {
    return await opaBuild(opa, args);
  } finally {
    await signingKey?.cleanup();
  }
}

/**
 * Builds `<out>/<rev>.tar.gz` (`<rev>.wasm.tar.gz` for wasm) with opa, checks its manifest revision (and
 * for wasm, that the embedded engine implements every built-in policy.wasm needs) and writes the record
 * beside it (`<rev>.json`, `<rev>.wasm.json`). Both files appear whole or not at all: opa writes to a temp
 * name that is renamed after the checks.
 */
export async function build(
  context: Context,
  prepared?: {
    opa?: Promise<OpaBinary>;
    revision?: Promise<ResolvedRevision>;
    policiesDir?: Promise<string>;
  },
): Promise<BuildResult> {
  const { settings, cwd, log } = context;
  assertBuildFlags(context);
  const [policiesDir, opa, resolved, claimsFile] = await Promise.all([
    prepared?.policiesDir ?? assertPoliciesDir(context),
    prepared?.opa ?? locateOpaFor(context),
    prepared?.revision ?? resolveBuildRevision(context, { metadata: true }),
    assertReadable(settings.claimsFile, "--claims-file", cwd),
  ]);
  const { revision } = resolved;
  const outDir = path.resolve(cwd, settings.out);
  const createdOutDir = await makeOutDir(outDir, settings.out);
  const signingKey = await prepareSigningKey(context);
  const bundle = bundlePath(context, revision);
  const metadataFile = bundle.replace(/\.tar\.gz$/, ".json");
  const temp = path.join(outDir, `.${revision}.${randomBytes(4).toString("hex")}.partial`);
  log.info(`building ${settings.policies} at revision ${revision} with opa ${opa.version}`);
  try {
    const args: BuildArgs = {
      policiesDir,
      output: `${temp}.tar.gz`,
      revision,
      optimize: settings.optimize,
      target: settings.target,
      entrypoints: settings.entrypoints,
      signingKey: signingKey?.file,
      signingAlg: settings.signingAlg,
      claimsFile,
      v0Compatible: settings.v0Compatible,
      ignore: settings.ignore,
    };
    const result = await runBuild(opa, signingKey, args);
    if (result.exitCode !== 0) {
      // opa prints load and compile errors on stdout; no line of the signing key ever reaches the user.
      const output = redactKey(`${result.stdout}\n${result.stderr}`, signingKey);
      const v0Hint = /rego_parse_error/.test(output) && !settings.v0Compatible;
      throw new FailureError(
        `opa build failed: ${describeBuildFailure(output, settings.policies)}`,
        v0Hint
          ? "fix the policy; if it was written before OPA 1.0, pass --v0-compatible"
          : "fix the policy and build again",
      );
    }
    const wasm = settings.target === "wasm";
    const contents = await readBundle(`${temp}.tar.gz`, wasm ? ["policy.wasm"] : [], bundleLimits(settings));
    if (contents.manifest.revision !== revision) {
      throw new FailureError(
        `the built bundle's .manifest names revision ${JSON.stringify(contents.manifest.revision)}, not ${revision}`,
        "a .manifest in the policies directory may pin another revision; remove its revision field",
      );
    }
    const module = contents.kept.get("policy.wasm");
    if (wasm && module) {
      await assertWasmBuiltins(module, {
        opa,
        build: args,
        policies: settings.policies,
        limits: bundleLimits(settings),
      });
    }
    const metadata: BuildResult = {
      revision,
      bundle: path.relative(cwd, bundle) || bundle,
      metadataFile: path.relative(cwd, metadataFile) || metadataFile,
      sha256: contents.sha256,
      size: contents.size,
      files: contents.files,
      roots: contents.manifest.roots ?? [""],
      regoVersion: contents.manifest.rego_version ?? (settings.v0Compatible ? 0 : 1),
      opaVersion: opa.version,
      target: settings.target,
      builtAt: new Date().toISOString(),
      git: resolved.git,
    };
    await writeFile(`${temp}.json`, `${JSON.stringify(metadata, null, 2)}\n`);
    // Past this point both files land; an interrupt before it leaves none.
    context.signal?.throwIfAborted();
    await rename(`${temp}.tar.gz`, bundle);
    await rename(`${temp}.json`, metadataFile);
    return metadata;
  } catch (error) {
    await Promise.all([rm(`${temp}.tar.gz`, { force: true }), rm(`${temp}.json`, { force: true })]);
    if (createdOutDir) await rm(outDir, { recursive: true, force: true }).catch(() => {});
    // Stopped by Ctrl-C: opa was killed or the renames not reached, and the temp files are gone.
    if (context.signal?.aborted)
      throw interruptedBy(context.signal, `nothing was written to ${settings.out}`);
    throw error;
  }
}

export function renderBuild(result: BuildResult): string {
  return [
    `built ${result.bundle}`,
    `  revision  ${result.revision}`,
    `  sha256    ${result.sha256}`,
    `  size      ${result.size} bytes, ${result.files.length} files, rego v${result.regoVersion}, opa ${result.opaVersion}`,
  ].join("\n");
}

/** Creates the out dir; true when it did not exist. A path that is a file or cannot be written is a refusal. */
async function makeOutDir(outDir: string, shown: string): Promise<boolean> {
  try {
    const created = (await mkdir(outDir, { recursive: true })) !== undefined;
    await access(outDir, fsConstants.W_OK);
    return created;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "unknown";
    const itself = await stat(outDir).catch(() => undefined);
    const why =
      itself && !itself.isDirectory()
        ? "is a file, not a directory"
        : code === "EEXIST" || code === "ENOTDIR"
          ? "is under a file, not a directory"
          : `cannot be written (${code})`;
    throw new UserError(`--out ${shown} ${why}`, "pass a directory you can write, such as dist");
  }
}

/** The `build` command: its flags, help and examples, and how its result is printed. @internal: CLI only, kept out of the .d.ts */
export function defineBuild(program: Command, io: Io): Command {
  return addBuildOptions(program.command("build"))
    .description("build <out>/<rev>.tar.gz with opa, the revision being the git SHA, and check its manifest")
    .addHelpText(
      "after",
      `
Examples:
  $ policyship build
  $ policyship build --target wasm --entrypoint authz/allow
  $ policyship build --signing-key key.pem --signing-alg RS256
  $ policyship build --revision 1.4.2 --out build`,
    )
    .action(async (_options, command: Command) => {
      const context = await createContext(io, command);
      const result = await build(context);
      print(
        io,
        context,
        pick(result, ["revision", "bundle", "sha256", "size", "files", "regoVersion", "opaVersion"]),
        renderBuild(result),
      );
    });
}
