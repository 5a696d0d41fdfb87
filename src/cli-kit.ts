import { statSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { type Context, stderrLogger } from "./context.ts";
import { UserError } from "./errors.ts";

/** What every command's definition uses: the I/O it prints to and the Context it runs with. */

export interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Set once a result has been printed, so that a failure after it does not print a second document. */
  printed?: boolean;
  /** Aborted at Ctrl-C or SIGTERM; becomes Context.signal. */
  signal?: AbortSignal;
}

function settingsFromFlags(flags: Record<string, unknown>): Record<string, unknown> {
  const {
    entrypoint,
    instance,
    path,
    json: _json,
    verbose: _verbose,
    cwd: _cwd,
    config: _config,
    ...rest
  } = flags;
  const settings: Record<string, unknown> =
    entrypoint === undefined ? rest : { ...rest, entrypoints: entrypoint };
  // --instance (repeatable) fills the instances setting, as --entrypoint fills entrypoints.
  if (instance !== undefined) settings.instances = instance;
  // impact --path names the decision path; "path" alone is no setting.
  if (path !== undefined) settings.decisionPath = path;
  // --opa is repeatable (status and prune still take instance URLs from it); as the opa binary, the last counts.
  if (Array.isArray(settings.opa)) settings.opa = settings.opa.at(-1);
  return settings;
}

/** Every --opa given, in order (status reads them as OPA instance URLs). @internal: CLI only, kept out of the .d.ts */
export function opaFlags(command: Command): string[] {
  const value = (command.optsWithGlobals() as { opa?: string | string[] }).opa;
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

/** @internal: CLI only, kept out of the .d.ts */
export async function createContext(io: Io, command: Command): Promise<Context> {
  const flags = command.optsWithGlobals() as Record<string, unknown>;
  // An empty --cwd (`--cwd=`, `--cwd ''`, an unset variable in a script) names no directory: refused, not
  // read as the current one.
  if (flags.cwd === "") throw new UserError("--cwd is empty", "pass the path of your repository");
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
    signal: io.signal,
  };
}

/** Prints a result: a JSON document with --json, else the command's text. */
export function print(io: Io, context: Context, data: unknown, text: string) {
  io.stdout(context.json ? `${JSON.stringify(data, null, 2)}\n` : `${text}\n`);
  io.printed = true;
}

export function pick<T extends object, K extends keyof T>(object: T, keys: K[]): Pick<T, K> {
  return Object.fromEntries(keys.map((key) => [key, object[key]])) as Pick<T, K>;
}
