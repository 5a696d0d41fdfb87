import { statSync } from "node:fs";
import path from "node:path";
import { Command, CommanderError } from "commander";
import {
  addBuildOptions,
  addConfigOptions,
  addStoreOptions,
  addTestOptions,
  collect,
  toNumber,
} from "./cli-options.ts";
import { type Context, stderrLogger } from "./context.ts";
import { FailureError, formatError, isKnownError, UserError } from "./errors.ts";
import { packageRoot } from "./package-root.ts";

/**
 * The command registry: every command's flags and help live here; the command modules are imported
 * only when their command runs, so `--version` and `--help` stay fast.
 */

const VERSION = packageRoot().version;

export interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Set once a result has been printed, so that a failure after it does not print a second document. */
  printed?: boolean;
}

const defaultIo: Io = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
  cwd: process.cwd(),
};

const EXAMPLES = `
Examples:
  $ policyship build                         build dist/<HEAD sha>.tar.gz from policies/
  $ policyship test --coverage-threshold 90  test that exact bundle
  $ policyship check                         opa check --strict and opa fmt on policies/
  $ policyship release --bucket acme-policies --region eu-west-1
                                             build, check, test, publish, render the OPA config
  $ policyship rollback 3f2a9c1 --bucket acme-policies --region eu-west-1 -o opa-config.yaml
  $ policyship list --bucket acme-policies --region eu-west-1

Exit codes: 0 success, 1 the work ran and failed, 2 it could not start.
Settings: flags, then POLICYSHIP_* environment variables, then policyship.yaml, then defaults.`;

function settingsFromFlags(flags: Record<string, unknown>): Record<string, unknown> {
  const { entrypoint, path, json: _json, verbose: _verbose, cwd: _cwd, config: _config, ...rest } = flags;
  const settings: Record<string, unknown> =
    entrypoint === undefined ? rest : { ...rest, entrypoints: entrypoint };
  // impact --path names the decision path; "path" alone is no setting.
  if (path !== undefined) settings.decisionPath = path;
  return settings;
}

async function createContext(io: Io, command: Command): Promise<Context> {
  const flags = command.optsWithGlobals() as Record<string, unknown>;
  const cwd = path.resolve(io.cwd, typeof flags.cwd === "string" ? flags.cwd : ".");
  if (!statSync(cwd, { throwIfNoEntry: false })?.isDirectory()) {
    throw new UserError(`--cwd ${flags.cwd ?? cwd} is not a directory`, "pass the path of your repository");
  }
  const { resolveSettings } = await import("./settings.ts");
  const settingsFlags = settingsFromFlags(flags);
  const { settings, configFile } = await resolveSettings({
    cwd,
    env: io.env,
    flags: settingsFlags,
    configFile: typeof flags.config === "string" ? flags.config : undefined,
  });
  const verbose = flags.verbose === true;
  return {
    cwd,
    env: io.env,
    settings,
    explicit: new Set(Object.keys(settingsFlags).filter((key) => settingsFlags[key] !== undefined)),
    configFile,
    json: flags.json === true,
    verbose,
    log: stderrLogger(verbose),
    emit: (line) => (flags.json === true ? io.stderr(`${line}\n`) : io.stdout(`${line}\n`)),
  };
}

/** Prints a result: a JSON document with --json, else the command's text. */
function print(io: Io, context: Context, data: unknown, text: string) {
  io.stdout(context.json ? `${JSON.stringify(data, null, 2)}\n` : `${text}\n`);
  io.printed = true;
}

function createProgram(io: Io): Command {
  const program = new Command("policyship")
    .description("Ship OPA policy bundles with the app they protect, pinned to the git commit.")
    .version(VERSION, "-V, --version")
    .option("--json", "print a single JSON document on stdout")
    .option("--verbose", "debug output and stack traces")
    .option("--cwd <dir>", "run as if started in <dir>")
    .option("--config <file>", "settings file (default: policyship.yaml or policyship.json)")
    .option("--opa <path>", "opa binary (default: $OPA_BIN, then PATH)")
    .option("--opa-env <name>", "an environment variable opa children may see (repeatable)", collect)
    .option("--bundle-max-entries <n>", "refuse bundles with more entries (default: 10000)", toNumber)
    .option("--bundle-max-bytes <n>", "refuse bundles whose files hold more bytes (default: 1 GiB)", toNumber)
    .option("--bundle-max-file-bytes <n>", "refuse bundles with a larger file (default: 1 GiB)", toNumber)
    .option("--bundle-max-path-length <n>", "refuse bundles with a longer path (default: 1024)", toNumber)
    .showHelpAfterError(false)
    .addHelpText("after", EXAMPLES);

  addBuildOptions(program.command("build"))
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
      const { build, renderBuild } = await import("./commands/build.ts");
      const result = await build(context);
      print(
        io,
        context,
        pick(result, ["revision", "bundle", "sha256", "size", "files", "regoVersion", "opaVersion"]),
        renderBuild(result),
      );
    });

  addTestOptions(
    program
      .command("test")
      .option("--bundle <file>", "bundle to test (default: <out>/<HEAD sha>.tar.gz)")
      .option("--policies <dir>", "test a policy directory instead of a bundle")
      .option("--out <dir>", "where build wrote the bundle (default: dist)")
      .option("--revision <id>", "test the bundle built for this revision")
      .option("--allow-dirty", "test the <sha>-dirty bundle")
      .option("--v0-compatible", "policies written before OPA 1.0")
      .option("--ignore <pattern>", "file or directory names to leave out (repeatable)", collect),
  )
    .description("run opa test on the built bundle (or --bundle / --policies)")
    .addHelpText(
      "after",
      `
Examples:
  $ policyship test
  $ policyship test --coverage-threshold 90 --json
  $ policyship test --policies policies --run 'test_admin.*'`,
    )
    .action(async (_options, command: Command) => {
      const context = await createContext(io, command);
      const { test, renderTest, assertTestsPassed } = await import("./commands/test.ts");
      const result = await test(context);
      const { target: _target, coverageThreshold: _threshold, ...data } = result;
      print(io, context, data, renderTest(result));
      assertTestsPassed(result);
    });

  program
    .command("check")
    .description("opa check --strict and opa fmt --list --fail on the policies")
    .option("--policies <dir>", "policy directory (default: policies)")
    .option("--v0-compatible", "policies written before OPA 1.0")
    .option("--ignore <pattern>", "file or directory names to leave out (repeatable)", collect)
    .addHelpText("after", "\nExamples:\n  $ policyship check\n  $ policyship check --policies opa/ --json")
    .action(async (_options, command: Command) => {
      const context = await createContext(io, command);
      const { check, renderCheck, assertCheckPassed } = await import("./commands/check.ts");
      const result = await check(context);
      print(io, context, result, renderCheck(result));
      assertCheckPassed(result);
    });

  addConfigOptions(addStoreOptions(program.command("publish")))
    .description("upload <out>/<rev>.tar.gz to <prefix><rev>.tar.gz; a revision is immutable")
    .option("--out <dir>", "where build wrote the bundle (default: dist)")
    .option("--revision <id>", "revision to publish (default: full SHA of HEAD)")
    .addHelpText(
      "after",
      `
Examples:
  $ policyship publish --bucket acme-policies --region eu-west-1
  $ policyship publish --bucket policies --endpoint http://127.0.0.1:9000
  $ policyship publish --to /srv/bundles

Publishing the same revision again with the same content succeeds ("already published");
other content under a published revision exits 1 and leaves the object untouched.`,
    )
    .action(async (_options, command: Command) => {
      const context = await createContext(io, command);
      const { publish, renderPublish } = await import("./commands/publish.ts");
      const result = await publish(context);
      print(io, context, result, renderPublish(result));
    });

  addConfigOptions(addStoreOptions(program.command("config")))
    .description("render the OPA configuration pinned to a revision")
    .option("--revision <id>", "revision to pin (default: full SHA of HEAD)")
    .option("--verify", "check first that the object exists in the store")
    .addHelpText(
      "after",
      `
Examples:
  $ policyship config --bucket acme-policies --region eu-west-1 -o opa-config.yaml
  $ policyship config --bucket policies --endpoint http://127.0.0.1:9000 --format json
  $ policyship config --bucket acme-policies --region eu-west-1 --credentials web-identity --role-arn arn:aws:iam::123456789012:role/opa
  $ policyship config --to /srv/bundles --service-url https://bundles.example.com`,
    )
    .action(async (_options, command: Command) => {
      const context = await createContext(io, command);
      const { config, renderConfigResult } = await import("./commands/config.ts");
      const result = await config(context);
      const { text: _text, ...data } = result;
      print(io, context, data, renderConfigResult(result));
    });

  addConfigOptions(addStoreOptions(addTestOptions(addBuildOptions(program.command("release")))))
    .description("build → check → test → publish → config, stopping at the first failure")
    .option("--dry-run", "everything but publish")
    .addHelpText(
      "after",
      `
Examples:
  $ policyship release --bucket acme-policies --region eu-west-1
  $ policyship release --dry-run
  $ policyship release --bucket policies --endpoint http://127.0.0.1:9000 --coverage-threshold 90

In GitHub Actions (GITHUB_ACTIONS=true) it writes the outputs revision, key, url, sha256 and
config to $GITHUB_OUTPUT and a summary to $GITHUB_STEP_SUMMARY.`,
    )
    .action(async (_options, command: Command) => {
      const context = await createContext(io, command);
      const { release, renderRelease } = await import("./commands/release.ts");
      const result = await release(context);
      print(io, context, result, renderRelease(result));
    });

  addConfigOptions(addStoreOptions(program.command("rollback")))
    .argument("<revision>", "full SHA, short SHA, tag or branch")
    .description("check a published revision and render the OPA config pinned to it")
    .option("--v0-compatible", "the bundle holds policies written before OPA 1.0")
    .addHelpText(
      "after",
      `
Examples:
  $ policyship rollback 3f2a9c1 --bucket acme-policies --region eu-west-1 -o opa-config.yaml
  $ policyship rollback v1.4.2 --bucket acme-policies --region eu-west-1
  $ policyship rollback 3f2a9c1 --bucket acme-policies --verification-key pub.pem --key-id release`,
    )
    .action(async (ref: string, _options, command: Command) => {
      const context = await createContext(io, command);
      const { rollback, renderRollback } = await import("./commands/rollback.ts");
      const result = await rollback(context, ref);
      const { text: _text, ...data } = result;
      print(io, context, data, renderRollback(result));
    });

  addStoreOptions(program.command("list"))
    .description("published revisions, newest first")
    .option("--limit <n>", "how many (default: 20)", toNumber)
    .addHelpText(
      "after",
      "\nExamples:\n  $ policyship list --bucket acme-policies --region eu-west-1 --limit 5 --json",
    )
    .action(async (_options, command: Command) => {
      const context = await createContext(io, command);
      const { list, renderList } = await import("./commands/list.ts");
      const result = await list(context);
      print(io, context, result, renderList(result));
    });

  addStoreOptions(program.command("verify"))
    .argument("<revision>", "full SHA, short SHA, tag or branch")
    .description("download a published revision and check its sha256, manifest revision and signature")
    .option("--verification-key <pem>", "public key to check the bundle signature with")
    .option("--key-id <id>", "name of the verification key")
    .option("--v0-compatible", "the bundle holds policies written before OPA 1.0")
    .addHelpText(
      "after",
      "\nExamples:\n  $ policyship verify 3f2a9c1 --bucket acme-policies --region eu-west-1",
    )
    .action(async (ref: string, _options, command: Command) => {
      const context = await createContext(io, command);
      const { verify, renderVerify } = await import("./commands/verify.ts");
      const result = await verify(context, ref);
      print(io, context, result, renderVerify(result));
    });

  addStoreOptions(program.command("diff"))
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
  $ policyship diff v1.4.2 v1.5.0 --bucket acme-policies --region eu-west-1 --exit-code`,
    )
    .action(async (fromRef: string, toRef: string, _options, command: Command) => {
      const context = await createContext(io, command);
      const { diff, renderDiff, assertSame } = await import("./commands/diff.ts");
      const { result, patch } = await diff(context, fromRef, toRef);
      print(io, context, result, renderDiff(result, patch));
      assertSame(context, result);
    });

  addStoreOptions(program.command("impact"))
    .description("replay recorded decisions against their revision and a candidate; report what flips")
    .option("--decisions <source>", "recorded decisions: a file, a directory or s3://bucket/prefix")
    .option("--base <rev>", "replay every decision against this revision (default: the one each recorded)")
    .option("--candidate <rev>", "the revision to compare (default: the working tree, built as build does)")
    .option("--path <rule>", "decision path such as authz/allow (default: each decision's own)")
    .option(
      "--fail-on <flips>",
      "exit 1 on deny-to-allow, allow-to-deny, to-error or changed (comma-separated)",
      (value: string, previous: string[] = []) => [
        ...previous,
        ...value
          .split(",")
          .map((part) => part.trim())
          .filter(Boolean),
      ],
    )
    .option("--examples <n>", "changed decisions to show, inputs masked (default: 20)", toNumber)
    .option(
      "--mask <pointer>",
      "also erase this JSON Pointer (under /input) from examples (repeatable)",
      collect,
    )
    .option("--markdown <file>", "also write the report as markdown (GitHub Actions: the step summary too)")
    .option("--policies <dir>", "policy directory of the candidate (default: policies)")
    .option("--out <dir>", "where build wrote bundles, searched first for recorded revisions (default: dist)")
    .option("--bundle-name <name>", "the bundle whose recorded revision is the base (default: authz)")
    .option("--v0-compatible", "policies written before OPA 1.0")
    .option("--ignore <pattern>", "file or directory names to leave out (repeatable)", collect)
    .addHelpText(
      "after",
      `
Examples:
  $ policyship impact --decisions decisions.ndjson
  $ policyship impact --decisions logs/ --fail-on deny-to-allow --markdown impact.md
  $ policyship impact --decisions s3://acme-logs/authz/ --bucket acme-logs --region eu-west-1 --json
  $ policyship impact --decisions decisions.ndjson --base 3f2a9c1 --candidate main`,
    )
    .action(async (_options, command: Command) => {
      const context = await createContext(io, command);
      const { impact, renderImpact, assertImpactAccepted } = await import("./commands/impact.ts");
      const result = await impact(context);
      print(io, context, result, renderImpact(result));
      assertImpactAccepted(context, result);
    });

  program
    .command("init")
    .description(
      "scaffold policyship.yaml, policies/ and .github/workflows/policy-release.yml (never overwrites)",
    )
    .option("--policies <dir>", "where the example policies go (default: policies)")
    .addHelpText(
      "after",
      "\nExamples:\n  $ policyship init\n  $ policyship init --cwd path/to/repo --policies opa",
    )
    .action(async (_options, command: Command) => {
      const context = await createContext(io, command);
      const { init, renderInit } = await import("./commands/init.ts");
      const result = await init(context);
      print(io, context, result, renderInit(result));
    });

  addStoreOptions(program.command("doctor"))
    .description("check node, git, opa, the policies, the config file and the store; one ✓/✗ line each")
    .option("--policies <dir>", "policy directory (default: policies)")
    .addHelpText(
      "after",
      "\nExamples:\n  $ policyship doctor\n  $ policyship doctor --bucket acme-policies --region eu-west-1 --json",
    )
    .action(async (_options, command: Command) => {
      const context = await createContext(io, command);
      const { doctor, renderDoctor } = await import("./commands/doctor.ts");
      const result = await doctor(context);
      print(io, context, result, renderDoctor(result));
      const failed = result.checks.filter((check) => !check.ok).map((check) => check.name);
      if (failed.length > 0) {
        throw new FailureError(
          `${failed.length} check${failed.length === 1 ? "" : "s"} failed: ${failed.join(", ")}`,
        );
      }
    });

  return program;
}

function pick<T extends object, K extends keyof T>(object: T, keys: K[]): Pick<T, K> {
  return Object.fromEntries(keys.map((key) => [key, object[key]])) as Pick<T, K>;
}

function commanderToUserError(error: CommanderError): UserError {
  const message = error.message.replace(/^error:\s*/i, "").replace(/\.$/, "");
  return new UserError(message, "see policyship --help");
}

/**
 * Runs the CLI. Resolves when the command succeeded; throws UserError / FailureError (or a bug) otherwise.
 * With --json a failure still prints a JSON document on stdout before throwing.
 */
export async function run(argv: string[], baseIo: Io = defaultIo): Promise<void> {
  const io: Io = { ...baseIo, printed: false };
  const program = createProgram(io);
  program.exitOverride();
  program.configureOutput({
    writeOut: (text) => io.stdout(text),
    // Commander's own error text is replaced by our one-line error.
    writeErr: (text) => {
      if (!/^error:/i.test(text)) io.stderr(text);
    },
  });
  for (const command of program.commands) {
    command.exitOverride();
    command.configureOutput({ writeOut: (text) => io.stdout(text), writeErr: () => {} });
  }
  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.exitCode === 0) return;
      throw commanderToUserError(error);
    }
    if (argv.includes("--json") && !io.printed) {
      const details = error instanceof FailureError ? error.details : undefined;
      const document = details ?? {
        error: {
          message: isKnownError(error) ? error.message : String(error),
          hint: isKnownError(error) ? error.hint : undefined,
          exitCode: isKnownError(error) ? error.exitCode : 70,
        },
      };
      io.stdout(`${JSON.stringify(document, null, 2)}\n`);
    }
    throw error;
  }
}

export { formatError };
