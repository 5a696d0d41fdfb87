import { startLoopbackProxy } from "./loopback-proxy.ts";

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
 * A loopback proxy in front of a real OPA that can misbehave on demand: delay, answer an error status,
 * garbage or a huge body, or reset the connection before or during the response.
 */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const state: FaultProxy = { url: "", fault: { kind: "pass" }, requests: [], close: async () => {} };
  const proxy = await startLoopbackProxy(target, ({ req, res, forward, later }) => {
    state.requests.push(`${req.method} ${(req.url ?? "").split("?")[0]}`);
    const fault = state.fault;
    switch (fault.kind) {
      case "pass":
        return forward();
      case "delay":
        return later(fault.ms, () => forward());
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
  });
  state.url = proxy.url;
  state.close = proxy.close;
  return state;
}
