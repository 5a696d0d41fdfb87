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
  const names = Object.keys(headers);
  if (names.length === 0) return;
  // A header the client sent under the same name is replaced, never merged: the policy's value wins.
  const raw = req.rawHeaders;
  for (let i = raw.length - 2; i >= 0; i -= 2) {
    if (names.includes((raw[i] as string).toLowerCase())) raw.splice(i, 2);
  }
  for (const [name, value] of Object.entries(headers)) {
    req.headers[name] = value;
    raw.push(name, value);
  }
}
