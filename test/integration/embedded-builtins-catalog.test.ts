import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NATIVE_IN_WASM, SDK_BUILTINS } from "../../src/enforcer/builtins/catalog.ts";
import { customBuiltins, implementedBuiltins } from "../../src/enforcer/builtins/index.ts";
import { toolPath } from "../helpers/tools.ts";

const run = promisify(execFile);
const env = () => ({ PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: os.tmpdir() });

interface Capability {
  name: string;
  infix?: string;
  deprecated?: boolean;
  decl: { args?: unknown[]; result?: unknown };
}

let dir: string;
let capabilities: Capability[];
let imported: Set<string>;

/** The global WebAssembly object; the "es2023" lib does not declare it. */
const wasm = (
  globalThis as unknown as {
    WebAssembly: {
      Memory: new (descriptor: { initial: number }) => { buffer: ArrayBuffer };
      compile(bytes: Uint8Array): Promise<unknown>;
      instantiate(module: unknown, imports: object): Promise<{ exports: unknown }>;
    };
  }
).WebAssembly;

/** The names a policy.wasm leaves to the host: its `builtins` export, read with do-nothing imports. */
async function hostImports(bytesOfModule: Buffer): Promise<Set<string>> {
  const memory = new wasm.Memory({ initial: 5 });
  const noop = () => 0;
  const instance = await wasm.instantiate(await wasm.compile(bytesOfModule), {
    env: {
      memory,
      opa_abort: noop,
      opa_println: noop,
      opa_builtin0: noop,
      opa_builtin1: noop,
      opa_builtin2: noop,
      opa_builtin3: noop,
      opa_builtin4: noop,
    },
  });
  const exports = instance.exports as Record<string, (...args: number[]) => number>;
  const address = exports.opa_json_dump?.(exports.builtins?.() ?? 0) ?? 0;
  const bytes = new Uint8Array(memory.buffer);
  let end = address;
  while (bytes[end] !== 0) end++;
  return new Set(Object.keys(JSON.parse(new TextDecoder().decode(bytes.subarray(address, end)))));
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "policyship-catalog-"));
  const { stdout } = await run(toolPath("opa"), ["capabilities", "--current"], { env: env() });
  capabilities = (JSON.parse(stdout) as { builtins: Capability[] }).builtins;
  // One rule per callable built-in, its arguments from the input, so nothing is folded away at build time.
  const rules = capabilities
    .filter((builtin) => !builtin.infix && !builtin.deprecated)
    .map((builtin, i) => {
      const args = (builtin.decl.args ?? []).map((_, k) => `input.a${k}`).join(", ");
      return builtin.decl.result ? `r${i} := ${builtin.name}(${args})` : `r${i} if ${builtin.name}(${args})`;
    });
  await writeFile(path.join(dir, "all.rego"), `package all\n\n${rules.join("\n")}\n`);
  const bundle = path.join(dir, "bundle.tar.gz");
  await run(toolPath("opa"), ["build", "-t", "wasm", "-e", "all", "-o", bundle, path.join(dir, "all.rego")], {
    env: env(),
  });
  await run("tar", ["-xzf", bundle, "-C", dir, "/policy.wasm"], { env: env() });
  imported = await hostImports(await readFile(path.join(dir, "policy.wasm")));
}, 120_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("implementedBuiltins() matches what OPA's wasm compilation leaves to the host", () => {
  it("counts as native only built-ins that policy.wasm never imports", () => {
    const known = new Set(capabilities.map((builtin) => builtin.name));
    for (const name of NATIVE_IN_WASM) {
      expect(known.has(name), `${name} is an OPA built-in`).toBe(true);
      expect(imported.has(name), `${name} is compiled into policy.wasm`).toBe(false);
    }
  });

  it("implements only real host built-ins, and every import it claims", () => {
    for (const name of [...Object.keys(customBuiltins), ...SDK_BUILTINS]) {
      expect(imported.has(name) || NATIVE_IN_WASM.includes(name), `${name} is left to the host`).toBe(true);
    }
    const implemented = implementedBuiltins();
    const missing = [...imported].filter((name) => !implemented.has(name)).sort();
    // What a bundle can still need that the embedded engine refuses (each reasoned in the README).
    expect(missing).toEqual(expect.arrayContaining(["http.send", "net.lookup_ip_addr", "opa.runtime"]));
    for (const name of imported) {
      if (implemented.has(name))
        expect(name in customBuiltins || SDK_BUILTINS.includes(name), name).toBe(true);
    }
  });
});
