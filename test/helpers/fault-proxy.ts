import http from "node:http";
import type { AddressInfo } from "node:net";

export type Fault =
  | { kind: "pass" }
  | { kind: "delay"; ms: number }
  | { kind: "status"; status: number; body?: string }
  | { kind: "garbage" }
  | { kind: "huge"; bytes: number }
  | { kind: "reset" }
  | { kind: "reset-mid-response" };

export interface FaultProxy {
  url: string;
  fault: Fault;
  /** Requests seen, as "METHOD /path". */
  requests: string[];
  close: () => Promise<void>;
}

/**
 * A loopback HTTP proxy in front of a real OPA that can misbehave on demand: delay, answer an error
 * status, garbage or a huge body, or reset the connection before or during the response.
 */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const state: FaultProxy = { url: "", fault: { kind: "pass" }, requests: [], close: async () => {} };
  const timers = new Set<NodeJS.Timeout>();
  const server = http.createServer((req, res) => {
    state.requests.push(`${req.method} ${(req.url ?? "").split("?")[0]}`);
    const fault = state.fault;
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      switch (fault.kind) {
        case "status":
          res
            .writeHead(fault.status, { "content-type": "application/json" })
            .end(fault.body ?? '{"code":"internal_error"}');
          return;
        case "garbage":
          res.writeHead(200, { "content-type": "application/json" }).end('{"result": tru');
          return;
        case "huge":
          res.writeHead(200, { "content-type": "application/json" });
          res.end(`{"result": true, "padding": "${"x".repeat(fault.bytes)}"}`);
          return;
        case "reset":
          req.socket.destroy();
          return;
        case "reset-mid-response":
          res.writeHead(200, { "content-type": "application/json", "content-length": "100" });
          res.write('{"result": ');
          setImmediate(() => req.socket.destroy());
          return;
      }
      const forward = () => {
        const upstream = http.request(
          `${target}${req.url}`,
          { method: req.method, headers: { ...req.headers, host: new URL(target).host } },
          (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
          },
        );
        upstream.on("error", () => res.destroy());
        upstream.end(Buffer.concat(chunks));
      };
      if (fault.kind === "delay") {
        const timer = setTimeout(() => {
          timers.delete(timer);
          forward();
        }, fault.ms);
        timers.add(timer);
      } else {
        forward();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = () =>
    new Promise<void>((resolve) => {
      for (const timer of timers) clearTimeout(timer);
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}
