import type { IncomingMessage, ServerResponse } from "node:http";
import type { Decision } from "./decision.ts";

/** Sends a denial or an error the way Kong does: the status, the policy's headers, `{"message": …}`. */
export function sendDecision(res: ServerResponse, decision: Decision) {
  const body = JSON.stringify({ message: decision.message });
  res.statusCode = decision.status;
  for (const [name, value] of Object.entries(decision.headers)) res.setHeader(name, value);
  res.setHeader("content-type", "application/json; charset=utf-8");
  res.setHeader("content-length", Buffer.byteLength(body));
  res.end(body);
}

export function sendTooLarge(res: ServerResponse) {
  sendDecision(res, { allow: false, status: 413, headers: {}, message: "request body too large" });
}

/** An allow's headers go on the request the handler sees (already validated by the decision rules). */
export function addRequestHeaders(req: IncomingMessage, headers: Record<string, string>) {
  const raw = req.rawHeaders;
  // Decisions' headers have no prototype: for-in walks their own names, with no Object.keys/entries arrays.
  for (const name in headers) {
    if (!Object.hasOwn(headers, name)) continue;
    const value = headers[name] as string;
    // A header the client sent under the same name is replaced, never merged: the policy's value wins.
    // (Names are lower-case and distinct, so each pass removes only the client's copies of this one.)
    for (let i = raw.length - 2; i >= 0; i -= 2) {
      const sent = raw[i] as string;
      if (sent.length === name.length && sent.toLowerCase() === name) raw.splice(i, 2);
    }
    req.headers[name] = value;
    raw.push(name, value);
  }
}
