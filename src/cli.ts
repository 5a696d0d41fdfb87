import { Command, CommanderError } from "commander";
import type { Io } from "./cli-kit.ts";

export type { Io } from "./cli-kit.ts";

import { collect, toNumber } from "./cli-options.ts";
import { FailureError, formatError, InterruptedError, isKnownError, UserError } from "./errors.ts";
import { installInterrupts } from "./interrupt.ts";
import { packageRoot } from "./package-root.ts";

/**
 * The command registry: the global flags, and each command as defined beside its implementation in
 * src/commands/<name>.ts. To add a command, write its module with a define<Name>(program, io) and list it.
 */

type Define = (program: Command, io: Io) => Command;

/**
 * Every command in --help order, its module imported only when argv names it: start-up is mostly loading
 * code, and `--version` or `config` need none of the other commands' (docs/perf/P2.md). What needs every
 * command (help, no command, a misspelt one) imports them at once through src/commands/all.ts.
 */
const COMMANDS = new Map<string, () => Promise<Define>>([
  ["build", async () => (await import("./commands/build.ts")).defineBuild],
  ["test", async () => (await import("./commands/test.ts")).defineTest],
  ["check", async () => (await import("./commands/check.ts")).defineCheck],
  ["publish", async () => (await import("./commands/publish.ts")).definePublish],
  ["config", async () => (await import("./commands/config.ts")).defineConfig],
  ["release", async () => (await import("./commands/release.ts")).defineRelease],
  ["rollback", async () => (await import("./commands/rollback.ts")).defineRollback],
  ["list", async () => (await import("./commands/list.ts")).defineList],
  ["verify", async () => (await import("./commands/verify.ts")).defineVerify],
  ["diff", async () => (await import("./commands/diff.ts")).defineDiff],
  ["impact", async () => (await import("./commands/impact.ts")).defineImpact],
  ["explain", async () => (await import("./commands/explain.ts")).defineExplain],
  ["status", async () => (await import("./commands/status.ts")).defineStatus],
  ["prune", async () => (await import("./commands/prune.ts")).definePrune],
  ["init", async () => (await import("./commands/init.ts")).defineInit],
  ["doctor", async () => (await import("./commands/doctor.ts")).defineDoctor],
]);

const VERSION = packageRoot().version;

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

Exit codes: 0 success, 1 the work ran and failed, 2 it could not start, 130/143 interrupted (SIGINT/SIGTERM).
Settings: flags, then POLICYSHIP_* environment variables, then policyship.yaml, then defaults.`;

async function createProgram(io: Io, argv: string[]): Promise<Command> {
  const program = new Command("policyship")
    .description("Ship OPA policy bundles with the app they protect, pinned to the git commit.")
    .version(VERSION, "-V, --version")
    .option("--json", "print a single JSON document on stdout")
    .option("--verbose", "debug output and stack traces")
    .option("--cwd <dir>", "run as if started in <dir>")
    .option("--config <file>", "settings file (default: policyship.yaml or policyship.json)")
    // Repeatable, the last one counts: status and prune still take OPA URLs from it (deprecated for --instance).
    .option("--opa <path>", "opa binary (default: $OPA_BIN, then PATH)", collect)
    .option("--opa-env <name>", "an environment variable opa children may see (repeatable)", collect)
    .option("--bundle-max-entries <n>", "refuse bundles with more entries (default: 10000)", toNumber)
    .option("--bundle-max-bytes <n>", "refuse bundles whose files hold more bytes (default: 1 GiB)", toNumber)
    .option("--bundle-max-file-bytes <n>", "refuse bundles with a larger file (default: 1 GiB)", toNumber)
    .option("--bundle-max-path-length <n>", "refuse bundles with a longer path (default: 1024)", toNumber)
    .showHelpAfterError(false)
    .addHelpText("after", EXAMPLES);

  const reachable = reachableCommands(program, argv);
  if (reachable.length === 1) {
    const define = await COMMANDS.get(reachable[0] as string)?.();
    define?.(program, io);
  } else if (reachable.length > 1) {
    const { DEFINITIONS } = await import("./commands/all.ts");
    const definitions: Record<string, Define | undefined> = DEFINITIONS;
    if (Object.keys(definitions).length !== COMMANDS.size) {
      throw new Error("src/commands/all.ts and the registry in src/cli.ts list different commands");
    }
    for (const name of COMMANDS.keys()) {
      const define = Object.hasOwn(definitions, name) ? definitions[name] : undefined;
      if (!define) throw new Error(`command ${name} is missing from src/commands/all.ts`);
      define(program, io);
    }
  }
  return program;
}

/**
 * The commands argv can reach, read the way commander reads the global flags: none when `--version` comes
 * before any command (commander prints it and stops there), the one named first, and every command for
 * anything else (help, no command, an unknown name or option) so that help lists them all and commander's
 * errors and suggestions are the ones it always gave.
 */
function reachableCommands(program: Command, argv: readonly string[]): string[] {
  const all = [...COMMANDS.keys()];
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index] as string;
    if (COMMANDS.has(arg)) return [arg];
    // `--cwd=dir` is one token: commander splits it at the first "=" for a flag that takes a value.
    const joined = /^--[^=]+=/.test(arg);
    const flag = joined ? arg.slice(0, arg.indexOf("=")) : arg;
    const option = program.options.find((known) => known.long === flag || known.short === flag);
    if (!option || option.optional || (joined && !option.required)) return all;
    if (option.long === "--version") return [];
    if (option.required && !joined) index++;
  }
  return all;
}

function commanderToUserError(error: CommanderError): UserError {
  const message = error.message.replace(/^error:\s*/i, "").replace(/\.$/, "");
  return new UserError(message, "see policyship --help");
}

/** Under --json, a failure is a JSON document on stdout too (unless a result was printed already). */
function printJsonError(argv: string[], io: Io, error: unknown) {
  if (!argv.includes("--json") || io.printed) return;
  const details = error instanceof FailureError ? error.details : undefined;
  const known = isKnownError(error) || error instanceof InterruptedError ? error : undefined;
  const document = details ?? {
    error: {
      message: known ? known.message : String(error),
      hint: known?.hint,
      exitCode: known ? known.exitCode : 70,
    },
  };
  io.stdout(`${JSON.stringify(document, null, 2)}\n`);
  io.printed = true;
}

/**
 * Runs the CLI. Resolves when the command succeeded; throws UserError / FailureError / InterruptedError (or a
 * bug) otherwise. With --json a failure still prints a JSON document on stdout before throwing. In the CLI's
 * own process (the default Io), Ctrl-C and SIGTERM abort the command's Context.signal (src/interrupt.ts).
 */
export async function run(argv: string[], baseIo: Io = defaultIo): Promise<void> {
  const io: Io = { ...baseIo, printed: false };
  const interrupts =
    baseIo === defaultIo
      ? installInterrupts({
          // The command did not unwind in time, or a second Ctrl-C: report and leave now.
          exit: (error) => {
            printJsonError(argv, io, error);
            process.stderr.write(`${formatError(error)}\n`);
            process.exit(error.exitCode);
          },
        })
      : undefined;
  io.signal = interrupts?.signal;
  const program = await createProgram(io, argv);
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
    const reason = interrupts?.signal.reason;
    // It finished before it could stop: the result stands, and the caller still hears it was interrupted.
    if (reason instanceof InterruptedError) {
      throw new InterruptedError(reason.signalName, "the command had finished; its result stands");
    }
  } catch (caught) {
    if (caught instanceof CommanderError && caught.exitCode === 0) return;
    // A flag commander refused is a UserError like any other, and a JSON document under --json too.
    let error = caught instanceof CommanderError ? commanderToUserError(caught) : caught;
    // Whatever a stopped child or aborted request failed with, the cause was the signal.
    const reason = interrupts?.signal.reason;
    if (reason instanceof InterruptedError && !(error instanceof InterruptedError)) error = reason;
    printJsonError(argv, io, error);
    throw error;
  } finally {
    interrupts?.uninstall();
  }
}

export { formatError };
