import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, stat, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { repoRoot, toolPath } from "./tools.ts";

/**
 * Runs the composite action in action.yml the way the runner does, step by step: inputs with their
 * defaults, `${{ }}` expressions, `if:`, $GITHUB_OUTPUT, $GITHUB_PATH and $GITHUB_ACTION_PATH. The `run:`
 * steps are executed for real by bash; the two `uses:` steps are played by what they do on a runner
 * (setup-node: a node >= 22 on PATH; actions/cache: restore when the cached directory exists).
 */

interface Step {
  id?: string;
  name?: string;
  uses?: string;
  if?: string;
  shell?: string;
  run?: string;
  env?: Record<string, string>;
  with?: Record<string, string>;
  "working-directory"?: string;
}

interface ActionFile {
  inputs: Record<string, { default?: string }>;
  outputs: Record<string, { value: string }>;
  runs: { using: string; steps: Step[] };
}

export interface StepRun {
  name: string;
  skipped: boolean;
  code: number;
  stdout: string;
  stderr: string;
}

export interface ActionRun {
  code: number;
  steps: StepRun[];
  outputs: Record<string, string>;
}

export async function readAction(): Promise<ActionFile> {
  const YAML = await import("yaml");
  return YAML.parse(await readFile(path.join(repoRoot, "action.yml"), "utf8")) as ActionFile;
}

/** name=value lines and name<<DELIMITER heredocs, as the runner reads $GITHUB_OUTPUT. */
function parseOutputs(text: string): Record<string, string> {
  const outputs: Record<string, string> = {};
  const lines = text.split("\n");
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index] as string;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const [, name, delimiter] = heredoc as unknown as [string, string, string];
      const value: string[] = [];
      for (index++; index < lines.length && lines[index] !== delimiter; index++)
        value.push(lines[index] as string);
      outputs[name] = value.join("\n");
    } else if (line.includes("=")) {
      outputs[line.slice(0, line.indexOf("="))] = line.slice(line.indexOf("=") + 1);
    }
  }
  return outputs;
}

export async function runAction(options: {
  inputs: Record<string, string>;
  /** The job's environment: what the caller's earlier steps (credentials) and `env:` put there. */
  env: Record<string, string>;
  cwd: string;
  /** RUNNER_TOOL_CACHE: keep it between runs to test the cache. */
  toolCache: string;
}): Promise<ActionRun> {
  const action = await readAction();
  const runnerTemp = await mkdtemp(path.join(os.tmpdir(), "policyship-runner-"));
  const inputs: Record<string, string> = {};
  for (const [name, spec] of Object.entries(action.inputs)) inputs[name] = spec.default ?? "";
  for (const [name, value] of Object.entries(options.inputs)) {
    if (!(name in action.inputs)) throw new Error(`action.yml has no input ${name}`);
    inputs[name] = value;
  }
  const stepOutputs: Record<string, Record<string, string>> = {};
  const paths: string[] = [];
  const runner = { os: "Linux", arch: process.arch === "arm64" ? "ARM64" : "X64" };

  const evaluate = (expression: string): string => {
    const trimmed = expression.trim();
    let match = /^inputs\.([\w-]+)$/.exec(trimmed);
    if (match) return inputs[match[1] as string] ?? "";
    match = /^runner\.(os|arch)$/.exec(trimmed);
    if (match) return runner[match[1] as "os" | "arch"];
    match = /^steps\.([\w-]+)\.outputs\.([\w-]+)$/.exec(trimmed);
    if (match) return stepOutputs[match[1] as string]?.[match[2] as string] ?? "";
    throw new Error(`the harness does not know the expression \${{ ${trimmed} }}`);
  };
  const expand = (text: string) =>
    text.replace(/\$\{\{(.*?)\}\}/g, (_, expression: string) => evaluate(expression));
  const condition = (text: string): boolean => {
    const match = /^(.+?)\s*!=\s*'([^']*)'$/.exec(text.trim());
    if (!match) throw new Error(`the harness does not know the condition ${text}`);
    return evaluate(match[1] as string) !== match[2];
  };

  const steps: StepRun[] = [];
  for (const step of action.runs.steps) {
    const name = step.name ?? step.uses ?? "step";
    if (step.if && !condition(step.if)) {
      steps.push({ name, skipped: true, code: 0, stdout: "", stderr: "" });
      continue;
    }
    const withs = Object.fromEntries(
      Object.entries(step.with ?? {}).map(([key, value]) => [key, expand(value)]),
    );
    if (step.uses?.startsWith("actions/setup-node@")) {
      if (Number(withs["node-version"]) < 22) throw new Error("setup-node asked for node < 22");
      // node alone, not the rest of .tools/bin: the opa the steps use must be the one they install.
      const nodeDir = path.join(runnerTemp, "node");
      await mkdir(nodeDir, { recursive: true });
      await symlink(toolPath("node"), path.join(nodeDir, "node"));
      paths.unshift(nodeDir);
      steps.push({ name, skipped: false, code: 0, stdout: "", stderr: "" });
      continue;
    }
    if (step.uses?.startsWith("actions/cache@")) {
      const dir = withs.path as string;
      if (!withs.key) throw new Error("actions/cache without a key");
      const hit = (await stat(dir).catch(() => undefined))?.isDirectory() === true;
      if (step.id) stepOutputs[step.id] = { "cache-hit": String(hit) };
      steps.push({ name, skipped: false, code: 0, stdout: "", stderr: "" });
      continue;
    }
    if (!step.run) throw new Error(`the harness cannot play ${name}`);
    if (step.shell !== "bash") throw new Error(`${name} must say shell: bash`);
    const outputFile = path.join(runnerTemp, `output-${steps.length}`);
    const pathFile = path.join(runnerTemp, `path-${steps.length}`);
    await writeFile(outputFile, "");
    await writeFile(pathFile, "");
    // The machine's environment, as a runner's steps have theirs (CA bundles, npm's settings), but a PATH
    // of the runner's system directories and what the steps themselves added.
    const env: Record<string, string | undefined> = {
      ...process.env,
      ...options.env,
      PATH: [...paths, "/usr/local/bin", "/usr/bin", "/bin"].join(path.delimiter),
      HOME: process.env.HOME ?? os.homedir(),
      GITHUB_ACTIONS: "true",
      GITHUB_ACTION_PATH: repoRoot,
      GITHUB_OUTPUT: outputFile,
      GITHUB_PATH: pathFile,
      RUNNER_TEMP: runnerTemp,
      RUNNER_TOOL_CACHE: options.toolCache,
    };
    for (const [key, value] of Object.entries(step.env ?? {})) env[key] = expand(value);
    const cwd = path.resolve(options.cwd, expand(step["working-directory"] ?? "."));
    await mkdir(cwd, { recursive: true });
    const result = await new Promise<StepRun>((resolve) => {
      execFile(
        "bash",
        ["--noprofile", "--norc", "-eo", "pipefail", "-c", expand(step.run as string)],
        { cwd, env, timeout: 300_000, maxBuffer: 32 * 1024 * 1024 },
        (error, stdout, stderr) =>
          resolve({ name, skipped: false, code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
      );
    });
    steps.push(result);
    if (step.id) stepOutputs[step.id] = parseOutputs(await readFile(outputFile, "utf8"));
    const added = (await readFile(pathFile, "utf8")).split("\n").filter(Boolean);
    paths.unshift(...added.reverse());
    if (result.code !== 0) return { code: result.code, steps, outputs: {} };
  }
  const outputs = Object.fromEntries(
    Object.entries(action.outputs).map(([name, output]) => [name, expand(output.value)]),
  );
  return { code: 0, steps, outputs };
}
