import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import {
  APP_TYPESCRIPT,
  compile,
  createApp,
  devVersion,
  packPackage,
  run,
} from "../helpers/typescript-project.ts";

// Apps compile against the packed package with skipLibCheck false: every .d.ts it ships is checked.
const ESM = { module: "nodenext", moduleResolution: "nodenext" };
// A full type check of fastify's or express's declarations takes a while on a loaded machine.
const COMPILE_TIMEOUT_MS = 240_000;

const EXPRESS_APP = `
import express, { type Request, type Response } from "express";
import { type AuthorizedRequest, type Authz, createEnforcer, expressAuthorize } from "policyship/enforcer";

const enforcer = createEnforcer({ opa: { url: "http://127.0.0.1:8181", path: "authz/allow" } });
const app = express();
app.get("/orders/:id", expressAuthorize(enforcer), (req: Request<{ id: string }>, res: Response) => {
  const maybe: Authz | undefined = req.authz;
  const { authz } = req as AuthorizedRequest<Request<{ id: string }>>;
  const revision: string | undefined = authz.revision;
  res.json({ id: req.params.id, decision: authz.decisionId, revision, allowed: maybe?.allow });
});
export default app;
`;

/** What the test uses of the app's TypeScript 5.9 API (the repository's own 7.x ships no such API). */
interface AppTypeScript {
  preProcessFile(
    text: string,
    readImportFiles: boolean,
    detectJavaScriptImports: boolean,
  ): Record<"importedFiles" | "referencedFiles" | "typeReferenceDirectives", { fileName: string }[]>;
}

describe("the enforcer's types, in an app's own build", () => {
  let tarball: string;
  // Only the package and its own dependencies: no express, no fastify, no commander, no zod.
  let bare: string;
  let withExpress: string;
  let withFastify: string;

  beforeAll(async () => {
    tarball = await packPackage();
    const nodeTypes = await devVersion("@types/node");
    bare = await createApp(tarball, [APP_TYPESCRIPT, nodeTypes]);
    withExpress = await createApp(tarball, [
      APP_TYPESCRIPT,
      nodeTypes,
      await devVersion("express"),
      await devVersion("@types/express"),
    ]);
    withFastify = await createApp(tarball, [APP_TYPESCRIPT, nodeTypes, await devVersion("fastify")]);
  }, 300_000);

  it(
    "an Express app compiles with neither fastify installed nor skipLibCheck",
    async () => {
      expect(existsSync(path.join(withExpress, "node_modules/fastify"))).toBe(false);
      const result = await compile(withExpress, "express-app", {
        type: "module",
        compilerOptions: ESM,
        files: { "app.ts": EXPRESS_APP },
      });
      expect(result.stdout).not.toContain("error");
      expect(result.code).toBe(0);
    },
    COMPILE_TIMEOUT_MS,
  );

  it(
    "an app on node:http alone compiles with neither express nor fastify installed",
    async () => {
      const result = await compile(bare, "http-app", {
        type: "module",
        compilerOptions: ESM,
        files: {
          "server.ts": `
import http from "node:http";
import { createEnforcer, decisionOf, withAuthorization } from "policyship/enforcer";
const enforcer = createEnforcer({ opa: { url: "http://127.0.0.1:8181", path: "authz/allow" } });
export const server = http.createServer(
  withAuthorization(enforcer, (req, res) => res.end(decisionOf(req)?.decisionId ?? "")),
);
`,
        },
      });
      expect(result.stdout).not.toContain("error");
      expect(result.code).toBe(0);
    },
    COMPILE_TIMEOUT_MS,
  );

  it(
    "with fastify installed, policyship/enforcer/fastify types request.authz on Fastify's own request",
    async () => {
      const files = {
        "app.ts": `
import Fastify from "fastify";
import { createEnforcer, type Authz } from "policyship/enforcer";
import { fastifyAuthorize } from "policyship/enforcer/fastify";
const enforcer = createEnforcer({ opa: { url: "http://127.0.0.1:8181", path: "authz/allow" } });
const app = Fastify();
await app.register(fastifyAuthorize, { enforcer });
app.get("/orders/:id", async (request) => {
  const authz: Authz | null = request.authz;
  return { decision: authz?.decisionId };
});
`,
      };
      const result = await compile(withFastify, "fastify-app", {
        type: "module",
        compilerOptions: ESM,
        files,
      });
      expect(result.stdout).not.toContain("error");
      expect(result.code).toBe(0);
    },
    COMPILE_TIMEOUT_MS,
  );

  it(
    "the main entry's fastifyAuthorize still registers on a Fastify instance",
    async () => {
      const result = await compile(withFastify, "fastify-main-entry", {
        type: "module",
        compilerOptions: ESM,
        files: {
          "app.ts": `
import Fastify from "fastify";
import { createEnforcer, fastifyAuthorize } from "policyship/enforcer";
const enforcer = createEnforcer({ opa: { url: "http://127.0.0.1:8181", path: "authz/allow" } });
const app = Fastify();
await app.register(fastifyAuthorize, { enforcer });
`,
        },
      });
      expect(result.stdout).not.toContain("error");
      expect(result.code).toBe(0);
    },
    COMPILE_TIMEOUT_MS,
  );

  it(
    "a CommonJS project with moduleResolution node10 compiles, and its require() runs",
    async () => {
      const result = await compile(withFastify, "cjs-node10", {
        type: "commonjs",
        // esModuleInterop as `tsc --init` sets it: fastify's own types (pino) default-import CommonJS.
        compilerOptions: { module: "commonjs", moduleResolution: "node10", esModuleInterop: true },
        files: {
          "index.ts": `
import { createEnforcer, type EnforcerOptions } from "policyship/enforcer";
import type { AuthorizedFastifyRequest } from "policyship/enforcer/fastify";
const options: EnforcerOptions = { opa: { url: "http://127.0.0.1:8181", path: "authz/allow" } };
export function decisionIdOf(request: AuthorizedFastifyRequest) {
  return request.authz?.decisionId;
}
console.log(typeof createEnforcer, typeof options);
`,
        },
      });
      expect(result.stdout).not.toContain("error");
      expect(result.code).toBe(0);
      const ran = await run(process.execPath, ["out/index.js"], path.join(withFastify, "cjs-node10"));
      expect(ran.stderr).toBe("");
      expect(ran.stdout.trim()).toBe("function object");
    },
    COMPILE_TIMEOUT_MS,
  );

  it(
    "a CommonJS project with module and moduleResolution node16 imports the enforcer's types and values",
    async () => {
      const result = await compile(withExpress, "cjs-node16", {
        type: "commonjs",
        compilerOptions: { module: "node16", moduleResolution: "node16" },
        files: {
          "index.ts": `
import type { Request } from "express";
import type { AuthorizedRequest, Decision, Enforcer } from "policyship/enforcer";
import { createEnforcer } from "policyship/enforcer";
export function decisionIdOf(req: Request): string {
  return (req as AuthorizedRequest<Request>).authz.decisionId;
}
export const unused: [Decision?, Enforcer?] = [];
console.log(typeof createEnforcer);
`,
        },
      });
      expect(result.stdout).not.toContain("error");
      expect(result.code).toBe(0);
      // Node 22.12 and later require() the enforcer's ES module.
      const ran = await run(process.execPath, ["out/index.js"], path.join(withExpress, "cjs-node16"));
      expect(ran.stderr).toBe("");
      expect(ran.stdout.trim()).toBe("function");
    },
    COMPILE_TIMEOUT_MS,
  );

  it(
    "an app that imports policyship's library entry compiles with skipLibCheck false and only the tarball installed",
    async () => {
      // No commander, zod or AWS SDK: they are the bundled CLI's, not the package's dependencies.
      for (const name of ["commander", "zod", "@aws-sdk/client-s3"]) {
        expect(existsSync(path.join(bare, "node_modules", name)), name).toBe(false);
      }
      const result = await compile(bare, "library-app", {
        type: "module",
        compilerOptions: ESM,
        files: {
          "release.ts": `
import {
  build,
  type Context,
  FailureError,
  renderOpaConfig,
  resolveSettings,
  type Settings,
  type SettingsInput,
  silentLogger,
  UserError,
} from "policyship";
const { settings } = await resolveSettings({ cwd: process.cwd(), env: process.env, flags: {} });
const out: string = settings.out;
const target: "rego" | "wasm" = settings.target;
const input: SettingsInput = { bucket: "policies", region: "eu-west-1" };
const context: Context = {
  cwd: process.cwd(),
  env: process.env,
  settings,
  explicit: new Set(),
  json: false,
  verbose: false,
  log: silentLogger,
  emit: (line) => console.log(line),
};
export async function release(more: Settings): Promise<string> {
  try {
    const built = await build({ ...context, settings: { ...more, ...input } });
    return built.revision + out + target + String(renderOpaConfig);
  } catch (error) {
    if (error instanceof UserError || error instanceof FailureError) return error.message;
    throw error;
  }
}
`,
        },
      });
      expect(result.stdout).not.toContain("error");
      expect(result.code).toBe(0);
    },
    COMPILE_TIMEOUT_MS,
  );

  it("dist/index.d.ts and every declaration it reaches import nothing outside the package but node:*", async () => {
    const dist = path.join(bare, "node_modules/policyship/dist");
    // The app's own TypeScript reads each file's imports, type-position import("…") and references included.
    const ts = createRequire(path.join(bare, "package.json"))("typescript") as AppTypeScript;
    const seen = new Set<string>();
    const outside: string[] = [];
    const queue = [path.join(dist, "index.d.ts")];
    for (let file = queue.pop(); file !== undefined; file = queue.pop()) {
      if (seen.has(file)) continue;
      seen.add(file);
      const info = ts.preProcessFile(await readFile(file, "utf8"), true, true);
      for (const { fileName } of [...info.importedFiles, ...info.referencedFiles]) {
        if (fileName.startsWith(".")) {
          queue.push(path.resolve(path.dirname(file), fileName).replace(/\.(ts|js)$/, ".d.ts"));
        } else if (!fileName.startsWith("node:")) {
          outside.push(`${path.relative(dist, file)} imports ${fileName}`);
        }
      }
      for (const { fileName } of info.typeReferenceDirectives) {
        if (fileName !== "node") outside.push(`${path.relative(dist, file)} references types ${fileName}`);
      }
    }
    expect(outside).toEqual([]);
    // The walk reached the commands and the settings, where commander and zod used to come in.
    expect([...seen].map((file) => path.relative(dist, file))).toEqual(
      expect.arrayContaining(["commands/build.d.ts", "settings.d.ts", "settings-types.d.ts", "cli.d.ts"]),
    );
  });
});
