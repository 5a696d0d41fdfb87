import { execFileSync } from "node:child_process";
import { mkdtemp, readFile } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import express from "express";
import express4 from "express4";
import Fastify from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createEnforcer,
  type Enforcer,
  expressAuthorize,
  fastifyAuthorize,
  withAuthorization,
} from "../../src/enforcer/index.ts";
import { type RunningOpa, startOpaServer } from "../helpers/opa-server.ts";
import { repoRoot } from "../helpers/tools.ts";

/** The echo policy hands the input back in x-input, so these tests see exactly what OPA received. */
let opa: RunningOpa;
let enforcer: Enforcer;
beforeAll(async () => {
  opa = await startOpaServer([path.join(repoRoot, "test/fixtures/echo")]);
  enforcer = createEnforcer({
    opa: { url: opa.url, path: "echo/decision" },
    include: { body: true, parsedJsonBody: true, uriCaptures: true, consumer: true },
    consumer: (req) => ({ username: req.headers["x-consumer"] ?? null }),
    maxBodyBytes: 64,
  });
  await enforcer.ready();
});
afterAll(async () => {
  await enforcer?.close();
  await opa?.stop();
});

type Echo = { input: { request: { http: Record<string, unknown> }; consumer?: unknown }; body?: unknown };

async function serve(server: http.Server) {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

function echoed(headers: http.IncomingHttpHeaders): Echo["input"] {
  return JSON.parse(Buffer.from(String(headers["x-input"]), "base64").toString("utf8"));
}

describe("input through the adapters", () => {
  it("node:http: body, parsed JSON body and consumer reach OPA, and the handler still gets the body", async () => {
    const app = await serve(
      http.createServer(
        withAuthorization(enforcer, (req, res) => {
          res.end(
            JSON.stringify({ input: echoed(req.headers), body: String((req as { body?: Buffer }).body) }),
          );
        }),
      ),
    );
    try {
      const response = await fetch(`${app.url}/orders?x=1`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-consumer": "bob" },
        body: '{"qty":2}',
      });
      const { input, body } = (await response.json()) as Echo;
      expect(input.request.http).toMatchObject({
        method: "POST",
        body: '{"qty":2}',
        body_size: 9,
        parsed_body: { qty: 2 },
      });
      expect(input.consumer).toEqual({ username: "bob" });
      expect(body).toBe('{"qty":2}');
    } finally {
      await app.close();
    }
  });

  it("node:http: a body over maxBodyBytes gets 413 and the handler is not called", async () => {
    let handled = 0;
    const app = await serve(
      http.createServer(
        withAuthorization(enforcer, (_req, res) => {
          handled++;
          res.end();
        }),
      ),
    );
    try {
      const response = await fetch(`${app.url}/orders`, { method: "POST", body: "x".repeat(65) });
      expect(response.status).toBe(413);
      expect(await response.json()).toEqual({ message: "request body too large" });
      expect(handled).toBe(0);
    } finally {
      await app.close();
    }
  });

  it("express: route parameters become uri_captures, and req.body is set for the handler", async () => {
    const app = express();
    app.post("/orders/:id/items/:item", expressAuthorize(enforcer), (req, res) => {
      res.json({ input: echoed(req.headers), body: req.body });
    });
    const server = await serve(http.createServer(app));
    try {
      const response = await fetch(`${server.url}/orders/42/items/7`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: '{"qty":3}',
      });
      const { input, body } = (await response.json()) as Echo;
      expect(input.request.http.uri_captures).toEqual({ named: { id: "42", item: "7" }, unnamed: [] });
      expect(input.request.http.parsed_body).toEqual({ qty: 3 });
      expect(body).toEqual({ qty: 3 });
      const tooLarge = await fetch(`${server.url}/orders/1/items/2`, {
        method: "POST",
        body: "y".repeat(100),
      });
      expect(tooLarge.status).toBe(413);
    } finally {
      await server.close();
    }
  });

  it("fastify: route parameters and the parsed body reach OPA", async () => {
    const app = Fastify();
    await app.register(fastifyAuthorize, { enforcer });
    app.post("/orders/:id", async (request) => ({ input: echoed(request.headers) }));
    const url = await app.listen({ port: 0, host: "127.0.0.1" });
    try {
      const response = await fetch(`${url}/orders/42`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: '{"qty":4}',
      });
      const { input } = (await response.json()) as Echo;
      expect(input.request.http.uri_captures).toEqual({ named: { id: "42" }, unnamed: [] });
      expect(input.request.http.parsed_body).toEqual({ qty: 4 });
      const tooLarge = await fetch(`${url}/orders/1`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ pad: "z".repeat(100) }),
      });
      expect(tooLarge.status).toBe(413);
    } finally {
      await app.close();
    }
  });
});

describe("input over HTTPS and with Express 4", () => {
  it("node:https: scheme https and tls {version, cipher}", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-tls-"));
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        path.join(dir, "key.pem"),
        "-out",
        path.join(dir, "cert.pem"),
      ],
      { stdio: "ignore" },
    );
    const server = https.createServer(
      { key: await readFile(path.join(dir, "key.pem")), cert: await readFile(path.join(dir, "cert.pem")) },
      withAuthorization(enforcer, (req, res) => res.end(JSON.stringify({ input: echoed(req.headers) }))),
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const body = await new Promise<string>((resolve, reject) => {
        https
          .get({ host: "127.0.0.1", port, path: "/orders", rejectUnauthorized: false }, (res) => {
            let text = "";
            res.on("data", (chunk) => (text += chunk));
            res.on("end", () => resolve(text));
          })
          .on("error", reject);
      });
      const { input } = JSON.parse(body) as Echo;
      expect(input.request.http.scheme).toBe("https");
      expect(input.request.http.port).toBe(String(port));
      expect(input.request.http.tls).toMatchObject({
        version: expect.stringMatching(/^TLSv1\.[23]$/),
        cipher: expect.any(String),
      });
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it("express 4: route parameters become uri_captures", async () => {
    const app = express4();
    app.get("/orders/:id", expressAuthorize(enforcer), (req, res) => {
      res.json({ input: echoed(req.headers) });
    });
    const server = await serve(http.createServer(app));
    try {
      const response = await fetch(`${server.url}/orders/42?expand`);
      const { input } = (await response.json()) as Echo;
      expect(input.request.http.uri_captures).toEqual({ named: { id: "42" }, unnamed: [] });
      expect(input.request.http.querystring).toEqual({ expand: true });
    } finally {
      await server.close();
    }
  });
});

describe("headers named like Object.prototype members are plain keys", () => {
  it("__proto__, constructor and hasOwnProperty reach the policy as headers, on both engines", async () => {
    const { sendRaw } = await import("../helpers/raw-http.ts");
    const { buildBundles } = await import("../helpers/enforcer-fixtures.ts");
    const built = await buildBundles(path.join(repoRoot, "test/fixtures/echo"), "echo-1", "echo/decision");
    const embedded = createEnforcer({ bundle: built.wasm, entrypoint: "echo/decision" });
    // Workers start within the first request's 500 ms budget on an idle machine, not on a loaded one.
    await embedded.ready();
    for (const engine of [enforcer, embedded]) {
      const app = await serve(
        http.createServer(
          withAuthorization(engine, (req, res) => {
            res.end(Buffer.from(String(req.headers["x-input"]), "base64").toString("utf8"));
          }),
        ),
      );
      try {
        const response = await sendRaw(
          app.url,
          "GET /orders HTTP/1.1",
          "__proto__: first\r\n__proto__: second\r\nconstructor: c\r\nhasOwnProperty: h\r\n",
        );
        expect(response.status).toBe(200);
        const input = JSON.parse(response.body) as Echo["input"];
        const headers = input.request.http.headers as Record<string, unknown>;
        expect(Object.hasOwn(headers, "__proto__")).toBe(true);
        // JSON.parse makes "__proto__" an own property; read it as one.
        expect(Object.getOwnPropertyDescriptor(headers, "__proto__")?.value).toEqual(["first", "second"]);
        expect(headers.constructor).toBe("c");
        expect(headers.hasownproperty).toBe("h");
      } finally {
        await app.close();
      }
    }
    await embedded.close();
  });

  it("the headers object handed to onDecision has no prototype", () => {
    const req = Object.assign(new http.IncomingMessage(null as never), {
      method: "GET",
      url: "/",
      rawHeaders: ["__proto__", "x", "constructor", "y"],
      headers: {},
      socket: { remoteAddress: "127.0.0.1", localPort: 80 },
    });
    const input = enforcer.buildInput(req);
    expect(Object.getPrototypeOf(input.request.http.headers)).toBeNull();
    expect(Object.keys(input.request.http.headers)).toEqual(["__proto__", "constructor"]);
  });
});
