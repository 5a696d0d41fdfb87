import type http from "node:http";
import type { AddressInfo } from "node:net";

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
