import { execFile } from "node:child_process";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../helpers/tools.ts";

function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  return new Promise<{ code: number; stdout: string }>((resolve) => {
    execFile(command, args, { cwd: repoRoot, env: { ...process.env, ...env } }, (error, stdout) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout }),
    );
  });
}

// `script` gives make a terminal, as a person running it has; util-linux ships it on Linux.
const onTerminal = (env: NodeJS.ProcessEnv = {}) =>
  run("script", ["-qec", "make --no-print-directory help", "/dev/null"], env);

describe("make help", () => {
  it("colours target names on a terminal, and lists every target with P1–P7 for bench", async () => {
    const result = await onTerminal({ NO_COLOR: "" });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("\x1b[36mhelp");
    expect(result.stdout).toMatch(/bench\s.*P1–P7/);
  });

  it("prints no escape codes through a pipe, or with NO_COLOR on a terminal", async () => {
    const piped = await run("make", ["--no-print-directory", "help"]);
    expect(piped.code).toBe(0);
    expect(piped.stdout).toMatch(/^ {2}help {2,}list the targets$/m);
    expect(piped.stdout).not.toContain("\x1b");
    const plain = await onTerminal({ NO_COLOR: "1" });
    expect(plain.stdout).toContain("help");
    expect(plain.stdout).not.toContain("\x1b");
  });
});
