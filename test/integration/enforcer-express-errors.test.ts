import type { NextFunction, Request, Response } from "express";
import express5 from "express";
import express4 from "express4";
import { describe, expect, it } from "vitest";
import { AuthorizationError, createEnforcer, expressAuthorize } from "../../src/enforcer/index.ts";
import { useConformanceEngines } from "../helpers/enforcer-apps.ts";
import { listen } from "../helpers/serve.ts";

/**
 * expressAuthorize(enforcer, { onDeny: "next" }): a denial goes to the app's own error handler, with its
 * status, headers and message; the route's handler never runs. The default still answers as Kong does.
 */

const optionsFor = useConformanceEngines("express-errors-1");

for (const [name, express] of [
  ["Express 5", express5],
  ["Express 4", express4 as unknown as typeof express5],
] as const) {
  describe(`${name}: onDeny "next"`, () => {
    it("hands each denial to the error handler, which renders its own page; the handler never runs", async () => {
      const enforcer = createEnforcer(optionsFor("remote"));
      let handled = 0;
      const app = express();
      app.use(expressAuthorize(enforcer, { onDeny: "next" }));
      app.use((_req: Request, res: Response) => {
        handled++;
        res.send("handler");
      });
      app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
        const denial = error as AuthorizationError;
        expect(denial).toBeInstanceOf(AuthorizationError);
        for (const [header, value] of Object.entries(denial.headers)) res.setHeader(header, value);
        res
          .status(denial.status)
          .type("text/html")
          .send(`<h1>error page ${denial.status}</h1><p>${denial.expose ? denial.message : "sorry"}</p>`);
      });
      const http = await startApp(app);
      try {
        const denied = await fetch(`${http.url}/bool-deny`);
        expect(denied.status).toBe(403);
        expect(await denied.text()).toBe("<h1>error page 403</h1><p>unauthorized</p>");
        const object = await fetch(`${http.url}/object-deny`, { headers: { "x-api-key": "nobody" } });
        expect(object.status).toBe(401);
        expect(object.headers.get("www-authenticate")).toBe("ApiKey");
        expect(await object.text()).toBe("<h1>error page 401</h1><p>who are you?</p>");
        const failed = await fetch(`${http.url}/header-injection`);
        expect(failed.status).toBe(500);
        expect(await failed.text()).toBe("<h1>error page 500</h1><p>sorry</p>");
        const allowed = await fetch(`${http.url}/bool-allow`);
        expect(allowed.status).toBe(200);
        expect(handled).toBe(1);
      } finally {
        await http.close();
        await enforcer.close();
      }
    });

    it("answers as Kong does by default, and refuses an unknown onDeny", async () => {
      const enforcer = createEnforcer(optionsFor("remote"));
      const app = express();
      app.use(expressAuthorize(enforcer));
      app.use((_error: unknown, _req: Request, res: Response, _next: NextFunction) => {
        res.status(599).send("error handler");
      });
      const http = await startApp(app);
      try {
        const denied = await fetch(`${http.url}/bool-deny`);
        expect(denied.status).toBe(403);
        expect(await denied.json()).toEqual({ message: "unauthorized" });
        expect(() => expressAuthorize(enforcer, { onDeny: "throw" as never })).toThrow(
          /onDeny must be "respond" or "next", got throw/,
        );
      } finally {
        await http.close();
        await enforcer.close();
      }
    });
  });
}

async function startApp(app: ReturnType<typeof express5>) {
  const { createServer } = await import("node:http");
  return listen(createServer(app));
}
