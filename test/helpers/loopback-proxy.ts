import http from "node:http";
import type { AddressInfo } from "node:net";

export interface Exchange {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  body: Buffer;
  /** Sends the request on to the target; `host` "keep" forwards the Host header as the client signed it. */
  forward(options?: { host?: "keep" | "target"; onAnswer?: (answer: http.IncomingMessage) => void }): void;
  /** Runs `run` after `ms`, unless the proxy closes first. */
  later(ms: number, run: () => void): void;
}

/** A loopback HTTP proxy in front of `target`; `handle` decides what happens to each request. */
export async function startLoopbackProxy(target: string, handle: (exchange: Exchange) => void) {
  const timers = new Set<NodeJS.Timeout>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      handle({
        req,
        res,
        body,
        forward: (options = {}) => {
          const headers =
            options.host === "keep" ? req.headers : { ...req.headers, host: new URL(target).host };
          const upstream = http.request(`${target}${req.url}`, { method: req.method, headers }, (answer) => {
            if (options.onAnswer) return options.onAnswer(answer);
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
          });
          upstream.on("error", () => res.destroy());
          upstream.end(body);
        },
        later: (ms, run) => {
          const timer = setTimeout(() => {
            timers.delete(timer);
            run();
          }, ms);
          timers.add(timer);
        },
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const timer of timers) clearTimeout(timer);
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
