import { mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { expect, it } from "vitest";
import { expectOneLineError, runCli } from "../helpers/cli.ts";
import { serversClosedAfterEach } from "../helpers/serve.ts";

const serve = serversClosedAfterEach();

it("status against a web server that is not OPA says so, not that the status plugin is off", async () => {
  const cwd = await mkdtemp(path.join(os.tmpdir(), "policyship-not-opa-"));
  const url = await serve((_request, response) => {
    response.writeHead(200, { "content-type": "text/html" });
    response.end("<html>welcome</html>");
  });
  const result = await runCli(["status", "--opa", url], { cwd });
  expect(result.exitCode).toBe(1);
  const line = expectOneLineError(result);
  expect(line).toMatch(/not OPA: GET \/v1\/status answered HTTP 200 without OPA's JSON/);
  expect(line).not.toMatch(/status plugin off/);
});
