import type http from "node:http";
import { startLoopbackProxy } from "./loopback-proxy.ts";

/** The S3 operation a request is, from its method and query. */
export function operationOf(req: http.IncomingMessage): string {
  const q = new URL(req.url ?? "/", "http://x").searchParams;
  if (req.method === "PUT" && q.has("partNumber")) return "UploadPart";
  if (req.method === "PUT") return "PutObject";
  if (req.method === "POST" && q.has("uploads")) return "CreateMultipartUpload";
  if (req.method === "POST" && q.has("uploadId")) return "CompleteMultipartUpload";
  if (req.method === "DELETE" && q.has("uploadId")) return "AbortMultipartUpload";
  if (req.method === "HEAD") return "HeadObject";
  if (req.method === "GET" && q.has("list-type")) return "ListObjects";
  return `${req.method}`;
}

export type S3Fault = "status-500" | "status-503" | "delay" | "reset" | "truncate";

export interface S3FaultProxy {
  url: string;
  /** Decides the fault for the nth request (1-based, per operation) of an operation; undefined passes. */
  rule: (operation: string, nth: number) => S3Fault | undefined;
  seen: string[];
  close: () => Promise<void>;
}

const errorBody = (code: string) =>
  `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>injected</Message></Error>`;

/**
 * A loopback proxy in front of MinIO that fails chosen S3 operations: a 500 or 503, a delay, a reset before
 * any answer, or a truncated answer after MinIO did the work. The Host header is forwarded as signed.
 */
export async function startS3FaultProxy(target: string, delayMs = 800): Promise<S3FaultProxy> {
  const counts = new Map<string, number>();
  const state: S3FaultProxy = { url: "", rule: () => undefined, seen: [], close: async () => {} };
  const proxy = await startLoopbackProxy(target, ({ req, res, forward, later }) => {
    const operation = operationOf(req);
    const nth = (counts.get(operation) ?? 0) + 1;
    counts.set(operation, nth);
    const fault = state.rule(operation, nth);
    state.seen.push(`${operation}${fault ? `:${fault}` : ""}`);
    switch (fault) {
      case "status-500":
      case "status-503": {
        const status = fault === "status-500" ? 500 : 503;
        res
          .writeHead(status, { "content-type": "application/xml" })
          .end(errorBody(status === 500 ? "InternalError" : "SlowDown"));
        return;
      }
      case "reset":
        req.socket.destroy();
        return;
      case "delay":
        return later(delayMs, () => forward({ host: "keep" }));
      case "truncate":
        return forward({
          host: "keep",
          onAnswer: (answer) => {
            res.writeHead(answer.statusCode ?? 502, { ...answer.headers, "content-length": "4096" });
            answer.once("data", (chunk: Buffer) => {
              res.write(chunk.subarray(0, Math.max(1, chunk.length >> 1)));
              req.socket.destroy();
            });
            answer.on("end", () => req.socket.destroy());
          },
        });
      default:
        return forward({ host: "keep" });
    }
  });
  state.url = proxy.url;
  state.close = proxy.close;
  return state;
}
