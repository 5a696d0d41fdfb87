import type { IncomingMessage, ServerResponse } from "node:http";
import type { Decision } from "./decision.ts";
import { emptyRecord } from "./input.ts";

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
  // Node's headers getter walks rawHeaders up to the count it parsed: built now, before the splices below.
  void req.headers;
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
  resetHeadersDistinct(req);
}

/**
 * Node's headersDistinct getter walks rawHeaders up to the count it parsed (and keeps what it built), so
 * after the splices above it would throw, drop the policy's header or keep the client's. Node's own setter
 * replaces what it built (and anything built before the enforcer) with the new rawHeaders' reading, with no
 * prototype, so a header named __proto__ is a plain key. Built at once: an own lazy accessor would cost
 * several times more per request (defineProperty on an IncomingMessage).
 */
function resetHeadersDistinct(req: IncomingMessage) {
  const distinct = distinctOf(req.rawHeaders);
  // Without Node's setter (or with a read-only own property), an own value shadows the getter instead.
  if (!Reflect.set(req, "headersDistinct", distinct) || req.headersDistinct !== distinct) {
    Object.defineProperty(req, "headersDistinct", {
      value: distinct,
      writable: true,
      configurable: true,
      enumerable: true,
    });
  }
}

function distinctOf(raw: string[]): Record<string, string[]> {
  const distinct: Record<string, string[]> = emptyRecord();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    const values = distinct[name];
    if (values === undefined) distinct[name] = [raw[i + 1] as string];
    else values.push(raw[i + 1] as string);
  }
  return distinct;
}
