// The app the shadow benchmark loads: the P3 app (node:http behind withAuthorization, remote engine), with a
// second OPA in shadow at SHADOW_SAMPLE_RATE; without SHADOW_OPA_URL, shadow off. Prints "ready <port>".
import http from "node:http";
import { createEnforcer, withAuthorization } from "policyship/enforcer";

const shadowUrl = process.env.SHADOW_OPA_URL;
// A long timeout: on a loaded machine a 500 ms one fails a request now and then, which ends the run; the
// figures compare throughput and latency, not timeouts.
const enforcer = createEnforcer({
  opa: { url: process.env.OPA_URL, path: "authz/allow" },
  timeoutMs: 5_000,
  ...(shadowUrl
    ? {
        shadow: {
          opa: { url: shadowUrl, path: "authz/allow" },
          sampleRate: Number(process.env.SHADOW_SAMPLE_RATE),
        },
      }
    : {}),
});
await enforcer.ready();
const server = http.createServer(withAuthorization(enforcer, (_req, res) => res.end("ok")));
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`ready ${server.address().port}\n`);
});
process.once("SIGTERM", () => {
  // The shadow's counters, so a run that evaluated nothing in shadow is seen, not reported as free.
  process.stderr.write(
    `[bench] shadow ${process.env.SHADOW_SAMPLE_RATE ?? "off"}: ${JSON.stringify(enforcer.shadowStats?.())}\n`,
  );
  server.close(() => enforcer.close().finally(() => process.exit(0)));
});
