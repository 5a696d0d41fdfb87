import http from "node:http";
import { describe, expect, it } from "vitest";
import { createEnforcer, decisionOf, withAuthorization } from "../../src/enforcer/index.ts";
import { ENGINES, useConformanceEngines } from "../helpers/enforcer-apps.ts";
import { serversClosedAfterEach } from "../helpers/serve.ts";

const optionsFor = useConformanceEngines("hit-path-1");
const serve = serversClosedAfterEach();
const byPathAndKey = (input: unknown) => {
  const { path, headers } = (
    input as { request: { http: { path: string; headers: Record<string, string> } } }
  ).request.http;
  return `${path} ${headers["x-api-key"]}`;
};

/** A GET with headers in rawHeaders form, so a name can be sent twice and in any case. */
function get(url: string, rawHeaders: string[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers = ["Host", new URL(url).host, ...rawHeaders];
    const request = http.request(url, { headers }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        body += chunk;
      });
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on("error", reject);
    request.end();
  });
}

for (const engine of ENGINES) {
  describe(`${engine} engine, node:http, cache hits`, () => {
    it("a hit runs the handler within the wrapped call, with no promise between the request and it", async () => {
      const enforcer = createEnforcer(
        optionsFor(engine, { cache: { max: 10, ttlMs: 60_000, key: byPathAndKey } }),
      );
      await enforcer.ready();
      const inTurn: boolean[] = [];
      let handled = false;
      const wrapped = withAuthorization(enforcer, (req, res) => {
        handled = true;
        res.end(String(decisionOf(req)?.cached));
      });
      const url = await serve((req, res) => {
        handled = false;
        void wrapped(req, res);
        // Whether the handler already ran when the wrapped call returned.
        inTurn.push(handled);
      });
      const answers: string[] = [];
      for (let i = 0; i < 3; i++) {
        const answer = await get(`${url}/object-allow`, ["x-api-key", "bob-key"]);
        expect(answer.status).toBe(200);
        answers.push(answer.body);
      }
      await enforcer.close();
      expect(answers).toEqual(["false", "true", "true"]);
      // The first request is a miss and waits for the engine; the hits do not wait at all.
      expect(inTurn).toEqual([false, true, true]);
    });

    it("on a hit, the policy's header replaces every copy the client sent, whatever its case", async () => {
      const enforcer = createEnforcer(
        optionsFor(engine, { cache: { max: 10, ttlMs: 60_000, key: byPathAndKey } }),
      );
      await enforcer.ready();
      const url = await serve(
        withAuthorization(enforcer, (req, res) => {
          res.end(JSON.stringify({ user: req.headers["x-user"], raw: req.rawHeaders }));
        }),
      );
      const sent = ["X-Api-Key", "bob-key", "X-User", "mallory", "x-USER", "eve", "X-Other", "kept"];
      const seen: { user: string; raw: string[] }[] = [];
      for (let i = 0; i < 2; i++) seen.push(JSON.parse((await get(`${url}/object-allow`, sent)).body));
      await enforcer.close();
      for (const { user, raw } of seen) {
        expect(user).toBe("bob");
        const pairs = raw.flatMap((name, index) =>
          index % 2 === 0 ? [[name.toLowerCase(), raw[index + 1]]] : [],
        );
        expect(pairs.filter(([name]) => name === "x-user")).toEqual([["x-user", "bob"]]);
        expect(pairs).toContainEqual(["x-other", "kept"]);
      }
    });
  });
}
