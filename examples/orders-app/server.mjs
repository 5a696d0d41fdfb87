// The example app: a small orders API authorized by policyship/enforcer with the repository's
// policies/ (entrypoint authz/allow). Used by `make demo` and the end-to-end tests.
//
//   OPA_URL=http://127.0.0.1:8181 node examples/orders-app/server.mjs              # remote: an OPA sidecar
//   ENFORCER_BUNDLE=dist/<sha>.wasm.tar.gz node examples/orders-app/server.mjs     # embedded (--target wasm)
//
// APP_REVISION, when set, makes the enforcer refuse decisions from any other policy revision (503).
// DECISION_LOG, when set, is a file that gets one decision-log line per request (policyship impact reads it).
// SHADOW_OPA_URL, when set, is an OPA serving the next revision, evaluated in shadow on every request: it
// never changes a response, and each decision-log line carries its comparison (policyship impact --shadow).
import http from "node:http";
import { createEnforcer, withAuthorization } from "policyship/enforcer";

const port = Number(process.env.PORT ?? 3000);
const enforcer = createEnforcer({
  ...(process.env.ENFORCER_BUNDLE
    ? { bundle: process.env.ENFORCER_BUNDLE, entrypoint: "authz/allow" }
    : { opa: { url: process.env.OPA_URL ?? "http://127.0.0.1:8181", path: "authz/allow" } }),
  expectedRevision: process.env.APP_REVISION || undefined,
  timeoutMs: Number(process.env.ENFORCER_TIMEOUT_MS ?? 500),
  ...(process.env.DECISION_LOG ? { decisionLog: process.env.DECISION_LOG } : {}),
  ...(process.env.SHADOW_OPA_URL
    ? { shadow: { opa: { url: process.env.SHADOW_OPA_URL, path: "authz/allow" }, sampleRate: 1 } }
    : {}),
});

const orders = [{ id: 42, item: "policy handbook" }];

function route(req, res) {
  const user = req.headers["x-user"] ?? "anonymous";
  const send = (status, body) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };
  const path = (req.url ?? "/").split("?")[0];
  if (path === "/health") return send(200, { ok: true });
  if (path === "/orders" && req.method === "GET") return send(200, { user, orders });
  if (path === "/orders" && req.method === "POST")
    return send(201, { user, created: { id: orders.length + 42 } });
  if (path.startsWith("/reports")) return send(200, { user, report: "daily totals" });
  return send(200, { user, path, method: req.method });
}

await enforcer.ready().catch((error) => {
  // Still serve: every decision answers 500/503 (fail-closed) until OPA or the bundle is right.
  process.stderr.write(`orders-app: enforcer not ready: ${error.message}\n`);
});
const server = http.createServer(withAuthorization(enforcer, route));
server.listen(port, "127.0.0.1", () => {
  process.stdout.write(
    `orders-app listening on http://127.0.0.1:${server.address().port} (${enforcer.engine})\n`,
  );
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    server.close();
    enforcer.close().finally(() => process.exit(0));
  });
}
