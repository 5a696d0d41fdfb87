// The app the enforcer benchmarks load: a node:http handler behind one of
//   hand      — the baseline: OPA called by hand with an undici Pool, result read as Kong would;
//   remote    — withAuthorization with the remote engine;
//   embedded  — withAuthorization with the embedded engine (worker threads);
//   embedded-thread — the same, evaluating on the event loop (inThread);
//   none      — the P7 baseline: the same handler with no authorization at all;
//   remote-cached, embedded-cached — the enforcer with a decision cache keyed by method, path and key.
// Env: BENCH_MODE, OPA_URL, BUNDLE (wasm), PORT. Prints "ready <port>" when listening.
import http from "node:http";
import { createEnforcer, withAuthorization } from "policyship/enforcer";
import { Pool } from "undici";

const mode = process.env.BENCH_MODE;
const ok = (_req, res) => res.end("ok");
let handler;
if (mode === "hand") {
  const pool = new Pool(process.env.OPA_URL, { connections: 32 });
  handler = async (req, res) => {
    const [path, query = ""] = (req.url ?? "/").split("?");
    const input = {
      request: {
        http: {
          method: req.method,
          path,
          querystring: Object.fromEntries(new URLSearchParams(query)),
          headers: req.headers,
        },
      },
      client_ip: req.socket.remoteAddress,
    };
    try {
      const response = await pool.request({
        method: "POST",
        path: "/v1/data/authz/allow",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ input }),
        signal: AbortSignal.timeout(500),
      });
      const { result } = await response.body.json();
      const allowed = result === true || result?.allow === true;
      if (allowed) return ok(req, res);
      res.statusCode = result?.status ?? 403;
      res.end(JSON.stringify({ message: result?.message ?? "unauthorized" }));
    } catch {
      res.statusCode = 500;
      res.end('{"message":"An unexpected error occurred"}');
    }
  };
} else if (mode === "none") {
  handler = ok;
} else {
  const cache = mode.endsWith("-cached")
    ? {
        max: 10_000,
        ttlMs: 60_000,
        key: (input) =>
          `${input.request.http.method} ${input.request.http.path} ${input.request.http.headers["x-api-key"]}`,
      }
    : undefined;
  const enforcer = createEnforcer(
    mode.startsWith("embedded")
      ? { bundle: process.env.BUNDLE, entrypoint: "authz/allow", inThread: mode === "embedded-thread", cache }
      : { opa: { url: process.env.OPA_URL, path: "authz/allow" }, cache },
  );
  await enforcer.ready();
  handler = withAuthorization(enforcer, ok);
}
const server = http.createServer(handler);
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  process.stdout.write(`ready ${server.address().port}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
