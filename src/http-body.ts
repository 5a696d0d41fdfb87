import { tryParseJson } from "./safe-json.ts";

/**
 * A response body read whole, but never past `max` bytes: beyond that the stream is cancelled and
 * `tooLong()` is thrown, so a server cannot make the reader hold more than it asked for.
 */
export async function readCapped(response: Response, max: number, tooLong: () => Error): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  let received = 0;
  for await (const chunk of response.body ?? []) {
    received += chunk.length;
    if (received > max) throw tooLong();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * JSON read under the same cap: undefined when the bytes are not JSON, `tooLong()` when there are too many.
 * Its objects have null prototypes (safe-json.ts): OPA's and registries' answers are outside input.
 */
export async function readJson(response: Response, max: number, tooLong: () => Error): Promise<unknown> {
  const bytes = await readCapped(response, max, tooLong);
  return tryParseJson(bytes.toString("utf8"));
}
