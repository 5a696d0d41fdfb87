import { chown, lstat, mkdtemp, readFile, stat, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { createEnforcer } from "../../src/enforcer/index.ts";
import { ENGINES, useConformanceEngines } from "../helpers/enforcer-apps.ts";

const optionsFor = useConformanceEngines("log-file-1");

const allowInput = {
  request: { http: { method: "GET", path: "/bool-allow", headers: {}, querystring: {} } },
  client_ip: "127.0.0.1",
};

const tempDir = () => mkdtemp(path.join(os.tmpdir(), "policyship-log-file-"));

/** Decides `count` times with a file decision log at `file`, then closes; returns what was logged. */
async function decideWithLog(engine: (typeof ENGINES)[number], file: string, count: number) {
  const logs: string[] = [];
  const enforcer = createEnforcer(optionsFor(engine, { decisionLog: file, log: (line) => logs.push(line) }));
  await enforcer.ready();
  for (let i = 0; i < count; i++) expect((await enforcer.decide(allowInput)).allow).toBe(true);
  // After close: lines recorded while the file was still being opened are only counted once it is refused.
  await enforcer.close();
  const stats = enforcer.logStats();
  return { logs, stats };
}

describe("the decision-log file holds request data, so only its owner reads it", () => {
  for (const engine of ENGINES) {
    it(`${engine}: the file is created 0600, whatever the umask lets through`, async () => {
      const file = path.join(await tempDir(), "decisions.ndjson");
      const { logs } = await decideWithLog(engine, file, 3);
      expect(logs).toEqual([]);
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      expect((await readFile(file, "utf8")).trim().split("\n")).toHaveLength(3);
    });
  }

  it("an existing log is appended to, and keeps the mode its owner gave it", async () => {
    const file = path.join(await tempDir(), "decisions.ndjson");
    await writeFile(file, '{"earlier":true}\n', { mode: 0o640 });
    await decideWithLog("remote", file, 2);
    expect((await stat(file)).mode & 0o777).toBe(0o640);
    expect((await readFile(file, "utf8")).trim().split("\n")).toHaveLength(3);
  });

  it("a symbolic link planted at the path is not followed: one line at start-up, nothing written anywhere", async () => {
    const dir = await tempDir();
    const target = path.join(dir, "elsewhere.txt");
    await writeFile(target, "");
    const file = path.join(dir, "decisions.ndjson");
    await symlink(target, file);
    const { logs, stats } = await decideWithLog("remote", file, 3);
    expect(logs).toHaveLength(1);
    expect(logs[0]).toBe(
      `decision log ${file} is a symbolic link, which is not followed: no decisions are logged — point decisionLog at a regular file`,
    );
    expect(await readFile(target, "utf8")).toBe("");
    expect((await lstat(file)).isSymbolicLink()).toBe(true);
    expect(stats).toEqual({ written: 0, dropped: 3 });
  });

  it.skipIf(process.getuid?.() !== 0)(
    "a file another user planted at the path is refused (run as root, so it can be given away)",
    async () => {
      const file = path.join(await tempDir(), "decisions.ndjson");
      await writeFile(file, "", { mode: 0o666 });
      await chown(file, 65534, 65534);
      const { logs, stats } = await decideWithLog("remote", file, 2);
      expect(logs).toHaveLength(1);
      expect(logs[0]).toMatch(/belongs to another user \(uid 65534\): no decisions are logged — /);
      expect(await readFile(file, "utf8")).toBe("");
      expect(stats).toEqual({ written: 0, dropped: 2 });
    },
  );
});
