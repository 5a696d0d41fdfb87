import http from "node:http";
import { type Listening, listen } from "./serve.ts";

/** A loopback proxy that sends each request to whichever upstream `pick` names at that moment. */
export function startSwitchingProxy(pick: () => string): Promise<Listening> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const upstream = http.request(
        `${pick()}${req.url}`,
        { method: req.method, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on("error", () => res.destroy());
      upstream.end(Buffer.concat(chunks));
    });
  });
  return listen(server);
}
