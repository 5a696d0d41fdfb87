import type { Settings } from "./settings-types.ts";

export interface Logger {
  /** Progress for humans, on stderr (silentLogger for library callers who want none). */
  info: (message: string) => void;
  warn: (message: string) => void;
  /** Only with --verbose. */
  debug: (message: string) => void;
}

/** Everything a command needs; commands are library calls first and CLI commands second. */
export interface Context {
  cwd: string;
  env: NodeJS.ProcessEnv;
  settings: Settings;
  /** Settings given as flags on this command line (to tell an explicit --policies from the default). */
  explicit: ReadonlySet<string>;
  configFile?: string;
  json: boolean;
  verbose: boolean;
  log: Logger;
  /** Lines for stdout that are not results, e.g. GitHub workflow commands. */
  emit: (line: string) => void;
  /**
   * Aborted by Ctrl-C or SIGTERM (src/interrupt.ts): steps that leave something behind (an upload, a file
   * being written) stop at it and undo what they started. Library callers may pass their own.
   */
  signal?: AbortSignal;
}

export const silentLogger: Logger = { info() {}, warn() {}, debug() {} };

export function stderrLogger(verbose: boolean): Logger {
  return {
    info: (message) => process.stderr.write(`${message}\n`),
    warn: (message) => process.stderr.write(`policyship: warning: ${message}\n`),
    debug: (message) => {
      if (verbose) process.stderr.write(`[debug] ${message}\n`);
    },
  };
}
