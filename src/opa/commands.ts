import { parseJson } from "../safe-json.ts";
import type { OpaBinary } from "./locate.ts";
import { runOpa } from "./run.ts";

/** What running opa needs: the binary and the allow-listed environment locateOpa made for it. */
export type Opa = Pick<OpaBinary, "path" | "env">;

/** One opa invocation per function; each returns what opa said, parsed, and leaves decisions to the caller. */

export interface BuildArgs {
  /** Directory that becomes the bundle root; opa runs inside it so file names in the bundle are root-relative. */
  policiesDir: string;
  output: string;
  revision: string;
  optimize: number;
  /** "plan" is OPA's intermediate representation: read for the locations of built-in calls, never shipped. */
  target: "rego" | "wasm" | "plan";
  entrypoints: string[];
  signingKey?: string;
  signingAlg?: string;
  claimsFile?: string;
  v0Compatible: boolean;
  ignore: string[];
}

export function buildArgs(args: BuildArgs): string[] {
  const list = ["build", "--bundle", ".", "--revision", args.revision, "--output", args.output];
  if (args.optimize > 0) list.push("--optimize", String(args.optimize));
  if (args.target !== "rego") list.push("--target", args.target);
  for (const entrypoint of args.entrypoints) list.push("--entrypoint", entrypoint);
  if (args.signingKey)
    list.push("--signing-key", args.signingKey, "--signing-alg", args.signingAlg ?? "RS256");
  if (args.claimsFile) list.push("--claims-file", args.claimsFile);
  if (args.v0Compatible) list.push("--v0-compatible");
  for (const pattern of args.ignore) list.push("--ignore", pattern);
  return list;
}

export async function opaBuild(opa: Opa, args: BuildArgs) {
  return runOpa(opa.path, buildArgs(args), { cwd: args.policiesDir, env: opa.env });
}

export interface OpaTestCase {
  location?: { file: string; row: number; col: number };
  package: string;
  name: string;
  fail?: boolean;
  skip?: boolean;
  error?: { message?: string; code?: string; location?: { file: string; row: number } };
  output?: string;
  duration?: number;
  /** Present on partial-object test rules (test_x[name] …): one result per test case. */
  sub_results?: unknown;
}

export interface TestArgs {
  /** A bundle file (tested with --bundle) or a directory of policies. */
  target: string;
  isBundle: boolean;
  run?: string;
  v0Compatible: boolean;
  ignore: string[];
  /** From opa/capabilities.ts: tests run offline, a test that needs a remote answer mocks it `with`. */
  capabilities: string;
}

function testArgs(args: TestArgs, extra: string[]): string[] {
  const list = ["test", "--capabilities", args.capabilities, ...extra];
  if (args.isBundle) list.push("--bundle");
  if (args.run) list.push("--run", args.run);
  if (args.v0Compatible) list.push("--v0-compatible");
  for (const pattern of args.ignore) list.push("--ignore", pattern);
  list.push(args.target);
  return list;
}

/** `opa test --format json`: exit 0 all passed, 2 some failed, anything else (or no JSON) an error. */
export async function opaTest(opa: Opa, args: TestArgs, cwd: string) {
  const result = await runOpa(opa.path, testArgs(args, ["--format", "json"]), { cwd, env: opa.env });
  let cases: OpaTestCase[] | undefined;
  try {
    const parsed: unknown = parseJson(result.stdout);
    if (Array.isArray(parsed)) cases = parsed as OpaTestCase[];
  } catch {
    cases = undefined;
  }
  return { ...result, cases };
}

/** `opa test --coverage --format json` prints only the coverage report; its `coverage` is a percentage. */
export async function opaCoverage(opa: Opa, args: TestArgs, cwd: string) {
  const result = await runOpa(opa.path, testArgs(args, ["--coverage", "--format", "json"]), {
    cwd,
    env: opa.env,
  });
  try {
    const report = parseJson(result.stdout) as { coverage?: number };
    return { ...result, coverage: typeof report.coverage === "number" ? report.coverage : undefined };
  } catch {
    return { ...result, coverage: undefined };
  }
}

export async function opaCheck(
  opa: Opa,
  policiesDir: string,
  options: { v0Compatible: boolean; ignore: string[]; strict?: boolean },
) {
  const list = ["check", ...(options.strict === false ? [] : ["--strict"]), "--format", "json"];
  if (options.v0Compatible) list.push("--v0-compatible");
  for (const pattern of options.ignore) list.push("--ignore", pattern);
  list.push(".");
  return runOpa(opa.path, list, { cwd: policiesDir, env: opa.env });
}

/** `opa fmt --list --fail`: the files that are not formatted, one per line. */
export async function opaFormatList(opa: Opa, policiesDir: string, options: { v0Compatible: boolean }) {
  const list = ["fmt", "--list", "--fail"];
  if (options.v0Compatible) list.push("--v0-compatible");
  list.push(".");
  const result = await runOpa(opa.path, list, { cwd: policiesDir, env: opa.env });
  const files = result.stdout
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.endsWith(".rego"));
  return { ...result, files };
}
