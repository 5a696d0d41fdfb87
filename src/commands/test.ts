import { existsSync } from "node:fs";
import { stat } from "node:fs/promises";
import path from "node:path";
import { type Command, Option } from "commander";
import { TARGETS } from "../choices.ts";
import { createContext, type Io, print } from "../cli-kit.ts";
import { addTestOptions, collect } from "../cli-options.ts";
import type { Context } from "../context.ts";
import type { WasmTestOutcome } from "../enforcer/wasm-tests.ts";
import { FailureError, UserError } from "../errors.ts";
import {
  appendStepSummary,
  errorAnnotation,
  inGitHubActions,
  markdownTable,
  markdownText,
} from "../github.ts";
import { withOfflineCapabilities } from "../opa/capabilities.ts";
import { type OpaTestCase, opaCoverage, opaTest, type TestArgs } from "../opa/commands.ts";
import { locateOpaFor, type OpaBinary } from "../opa/locate.ts";
import { revisionOrHead } from "../revision.ts";
import { bundlePath } from "./build.ts";
import { bothOutcomes, isWasmBundle, testOnEmbeddedEngine, wasmSources } from "./test-wasm.ts";

export interface TestFailure {
  name: string;
  package: string;
  file?: string;
  row?: number;
  message: string;
  /** For a wasm bundle, each engine's outcome: a test must pass in both. */
  rego?: "pass" | "fail";
  wasm?: "pass" | "fail";
}

export interface TestResult {
  target: string;
  passed: number;
  failed: number;
  skipped: number;
  coverage: number | null;
  coverageThreshold?: number;
  failures: TestFailure[];
}

/** What to test: --bundle, an explicit --policies, or the bundle built for this revision. */
async function resolveTarget(
  context: Context,
): Promise<{ target: string; isBundle: boolean; shown: string }> {
  const { settings, cwd } = context;
  if (settings.bundle) {
    const file = path.resolve(cwd, settings.bundle);
    if (!(await stat(file).catch(() => undefined))?.isFile()) {
      throw new UserError(`bundle ${settings.bundle} does not exist`, "build it first with policyship build");
    }
    return { target: file, isBundle: true, shown: settings.bundle };
  }
  if (context.explicit.has("policies")) {
    const dir = path.resolve(cwd, settings.policies);
    if (!(await stat(dir).catch(() => undefined))?.isDirectory()) {
      throw new UserError(`policies directory ${settings.policies} does not exist`, "pass --policies <dir>");
    }
    return { target: dir, isBundle: false, shown: settings.policies };
  }
  // What build wrote for HEAD: <sha>.tar.gz, or <sha>-dirty.tar.gz with --allow-dirty. Only HEAD's SHA is
  // needed, not a walk of the working tree: the bundle is tested as built, whatever changed since.
  const head = await revisionOrHead(context, "test");
  const revision = settings.allowDirty && !head.endsWith("-dirty") ? `${head}-dirty` : head;
  const file = bundlePath(context, revision);
  if (!existsSync(file)) {
    throw new UserError(
      `no bundle built for revision ${revision} (${path.relative(cwd, file)})`,
      "run policyship build first, or pass --bundle <file> or --policies <dir>",
    );
  }
  return { target: file, isBundle: true, shown: path.relative(cwd, file) };
}

/** Maps a file name inside a bundle back to the policy file in the repository, when there is one. */
function sourceFile(context: Context, file: string | undefined): string | undefined {
  if (!file) return undefined;
  const inPolicies = path.join(context.settings.policies, file.replace(/^\/+/, ""));
  if (existsSync(path.resolve(context.cwd, inPolicies))) return inPolicies;
  return path.isAbsolute(file) ? path.relative(context.cwd, file) || file : file;
}

function toFailure(context: Context, test: OpaTestCase): TestFailure {
  const location = test.error?.location ?? test.location;
  const message = test.error?.message ?? (test.output?.trim() || "test failed");
  return {
    name: test.name,
    package: test.package.replace(/^data\./, ""),
    file: sourceFile(context, location?.file),
    row: location?.row,
    message,
  };
}

/** Runs `opa test --format json` (and the coverage report, in parallel, when a threshold is set). */
export async function test(
  context: Context,
  prepared?: {
    opa?: Promise<OpaBinary>;
    bundle?: string;
    coverage?: boolean;
    /** The revision the bundle was just built at from the policies directory (release). */
    revision?: string;
  },
): Promise<TestResult> {
  const { settings, cwd, log } = context;
  const [opa, target] = await Promise.all([
    prepared?.opa ?? locateOpaFor(context),
    prepared?.bundle
      ? { target: prepared.bundle, isBundle: true, shown: path.relative(cwd, prepared.bundle) }
      : resolveTarget(context),
  ]);
  if (settings.target === "wasm" && !target.isBundle) {
    throw new UserError(
      "--target wasm tests a built wasm bundle, not a policies directory",
      "drop --policies: build with --target wasm first, or pass --bundle <sha>.wasm.tar.gz",
    );
  }
  const wasm = target.isBundle && isWasmBundle(context, target.target);
  const sources = wasm ? await wasmSources(context, target.target, prepared?.revision) : undefined;
  const wantCoverage = settings.coverageThreshold !== undefined || prepared?.coverage === true;
  log.info(
    `testing ${target.shown}${wantCoverage ? " with coverage" : ""}${wasm ? " in rego and wasm" : ""}`,
  );
  // The tests under review run unable to reach the network, as impact's replays do.
  const [tests, coverage] = await withOfflineCapabilities(opa, (capabilities) => {
    const args: TestArgs = {
      target: sources?.policiesDir ?? target.target,
      isBundle: target.isBundle,
      run: settings.run,
      v0Compatible: settings.v0Compatible,
      ignore: settings.ignore,
      capabilities,
    };
    return Promise.all([opaTest(opa, args, cwd), wantCoverage ? opaCoverage(opa, args, cwd) : undefined]);
  });
  if (!tests.cases || (tests.exitCode !== 0 && tests.exitCode !== 2)) {
    const detail = (tests.stderr || tests.stdout).trim().split("\n").slice(0, 3).join("; ");
    throw new FailureError(`opa test could not run the tests: ${detail}`, "fix the policy errors above");
  }
  const { cases } = tests;
  if (cases.length === 0 && wasm) {
    // Nothing would stand between a wasm bundle and the app's engine: an untested wasm bundle never ships.
    throw new FailureError(
      `no tests found in ${target.shown}`,
      "a wasm bundle ships only tested: add test_ rules beside the policies (or widen --run)",
    );
  }
  const outcomes = sources
    ? await testOnEmbeddedEngine(context, { opa, sources, cases })
    : new Map<OpaTestCase, WasmTestOutcome>();
  const failures = cases.flatMap((c) => failureOf(context, c, outcomes.get(c), wasm) ?? []);
  const skipped = cases.filter((c) => c.skip && !c.fail && !c.error).length;
  const result: TestResult = {
    target: target.shown,
    passed: cases.length - failures.length - skipped,
    failed: failures.length,
    skipped,
    coverage: coverage?.coverage ?? null,
    coverageThreshold: settings.coverageThreshold,
    failures,
  };
  if (cases.length === 0) log.warn(`no tests found in ${target.shown}`);
  await reportToGitHub(context, result);
  return result;
}

/** A test fails when it fails in rego, or (for a wasm bundle) in wasm; both outcomes are shown. */
function failureOf(
  context: Context,
  test: OpaTestCase,
  wasmOutcome: WasmTestOutcome | undefined,
  wasm: boolean,
): TestFailure | undefined {
  const regoPass = !test.fail && !test.error;
  if (regoPass && (!wasm || test.skip)) return undefined;
  const failure = toFailure(context, test);
  if (!wasm || test.skip) return failure;
  const both = bothOutcomes(regoPass, failure.message, wasmOutcome);
  return both && { ...failure, ...both };
}

async function reportToGitHub(context: Context, result: TestResult) {
  if (!inGitHubActions(context.env)) return;
  for (const failure of result.failures) {
    context.emit(
      errorAnnotation({
        file: failure.file,
        line: failure.row,
        title: `${failure.package}.${failure.name}`,
        message: failure.message,
      }),
    );
  }
  await appendStepSummary(context.env, testSummaryMarkdown(result));
}

export function testSummaryMarkdown(result: TestResult): string {
  const rows = [
    ["passed", String(result.passed)],
    ["failed", String(result.failed)],
    ["skipped", String(result.skipped)],
  ];
  if (result.coverage !== null) rows.push(["coverage", `${result.coverage.toFixed(1)}%`]);
  let markdown = `### Policy tests: ${markdownText(result.target)}\n\n${markdownTable(["result", "count"], rows)}\n`;
  if (result.failures.length > 0) {
    markdown += `\n${markdownTable(
      ["test", "location", "message"],
      result.failures.map((f) => [
        `${f.package}.${f.name}`,
        f.file ? `${f.file}:${f.row ?? ""}` : "",
        f.message,
      ]),
    )}\n`;
  }
  return markdown;
}

/** Throws when tests failed or coverage is below the threshold; separate so that --json still prints the result. */
export function assertTestsPassed(result: TestResult) {
  if (result.failed > 0) {
    throw new FailureError(
      `${result.failed} policy test${result.failed === 1 ? "" : "s"} failed`,
      undefined,
      result,
    );
  }
  if (result.coverageThreshold !== undefined && (result.coverage ?? 0) < result.coverageThreshold) {
    throw new FailureError(
      `coverage ${(result.coverage ?? 0).toFixed(1)}% is below the threshold of ${result.coverageThreshold}%`,
      "add tests for the uncovered rules (opa test --coverage shows them)",
      result,
    );
  }
}

export function summaryLine(result: Pick<TestResult, "passed" | "failed" | "skipped">): string {
  return `${result.passed} passed, ${result.failed} failed${result.skipped ? `, ${result.skipped} skipped` : ""}`;
}

export function renderTest(result: TestResult): string {
  const lines = result.failures.map(
    (f) => `FAIL ${f.file ?? "?"}:${f.row ?? "?"} ${f.package}.${f.name}: ${f.message.split("\n")[0]}`,
  );
  if (result.coverage !== null) lines.push(`coverage ${result.coverage.toFixed(1)}%`);
  lines.push(summaryLine(result));
  return lines.join("\n");
}

/** The `test` command: its flags, help and examples, and how its result is printed. @internal: CLI only, kept out of the .d.ts */
export function defineTest(program: Command, io: Io): Command {
  return addTestOptions(
    program
      .command("test")
      .option("--bundle <file>", "bundle to test (default: <out>/<HEAD sha>.tar.gz, .wasm.tar.gz for wasm)")
      .addOption(
        new Option("--target <target>", "rego, or wasm: also run every test on the embedded engine").choices(
          TARGETS,
        ),
      )
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
  $ policyship test --policies policies --run 'test_admin.*'
  $ policyship test --target wasm     tests <out>/<sha>.wasm.tar.gz in rego and on the embedded engine`,
    )
    .action(async (_options, command: Command) => {
      const context = await createContext(io, command);
      const result = await test(context);
      const { target: _target, coverageThreshold: _threshold, ...data } = result;
      print(io, context, data, renderTest(result));
      assertTestsPassed(result);
    });
}
