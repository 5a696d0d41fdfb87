import net from "node:net";

export interface RawResponse {
  status: number;
  body: string;
}

/** Sends one raw request line (no client normalizes it) and reads the whole answer. */
export function sendRaw(url: string, requestLine: string, extra = ""): Promise<RawResponse> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => {
      socket.write(`${requestLine}\r\nHost: localhost\r\nConnection: close\r\n${extra}\r\n`);
    });
    const chunks: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", reject);
    socket.on("close", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
      const head = text.indexOf("\r\n\r\n");
      let body = head === -1 ? "" : text.slice(head + 4);
      if (/\r\ntransfer-encoding: chunked/i.test(text.slice(0, head))) body = unchunk(body);
      resolve({ status, body });
    });
    socket.setTimeout(5000, () => socket.destroy(new Error(`no answer to ${requestLine}`)));
  });
}

function unchunk(body: string): string {
  let out = "";
  let rest = body;
  while (rest.length > 0) {
    const lineEnd = rest.indexOf("\r\n");
    const size = Number.parseInt(rest.slice(0, lineEnd), 16);
    if (!size) break;
    out += rest.slice(lineEnd + 2, lineEnd + 2 + size);
    rest = rest.slice(lineEnd + 2 + size + 2);
  }
  return out;
}
