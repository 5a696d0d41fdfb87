import type http from "node:http";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach } from "vitest";

export interface Listening {
  url: string;
  /** Closes the server, dropping kept-alive connections. */
  close: () => Promise<void>;
}

/** Listens on a free loopback port. */
export async function listen(server: http.Server): Promise<Listening> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * For a test file's top level: returns a function that starts a loopback server for a handler and gives its
 * URL; every server it started is closed after each test.
 */
export function serversClosedAfterEach(): (handler: http.RequestListener) => Promise<string> {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    await Promise.all(closers.splice(0).map((close) => close()));
  });
  return async (handler) => {
    const { url, close } = await listen(createServer(handler));
    closers.push(close);
    return url;
  };
}

/** Answers 200 with JSON's content type and then spaces until the client stops reading. */
export function endlessJson(_request: http.IncomingMessage, response: http.ServerResponse): void {
  response.writeHead(200, { "content-type": "application/json" });
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  const pump = () => {
    while (response.write(chunk));
  };
  response.on("drain", pump);
  response.on("close", () => response.off("drain", pump));
  pump();
}
