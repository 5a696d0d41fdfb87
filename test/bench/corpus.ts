// The P6 production-scale corpus: Kong-shaped decisions as the enforcer logs them, made by one revision.
// 20,000 users (an x-api-key header; the four top-ranked are the demo policy's own keys), 50 route templates
// of which some carry an id, 4 methods, each drawn Zipf-distributed; every line has its own decision_id,
// x-request-id, traceparent and timestamp, so no two lines are alike (decision_id a UUID, as OPA writes it).
// Deterministic (seeded): the first n lines of a larger corpus are the corpus of n.
import { createWriteStream } from "node:fs";

const USERS = 20_000;
const IDS = 100_000;
/** Resources one user touches, Zipf-distributed among them. */
const PER_USER = 16;
const KNOWN = ["alice-key", "bob-key", "carol-key", "mallory-key"];
const METHODS = ["GET", "POST", "PUT", "DELETE"];
const ROOTS = [
  "orders",
  "reports",
  "admin",
  "users",
  "invoices",
  "carts",
  "catalog",
  "search",
  "health",
  "metrics",
];
const ROUTES: string[] = [];
for (const root of ROOTS) {
  ROUTES.push(`/${root}`, `/${root}/{id}`, `/${root}/{id}/items`, `/${root}/export`, `/${root}-archive`);
}

/** mulberry32: small, fast, seeded. */
function random(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Draws ranks 0..n-1 with P(k) ∝ 1/(k+1)^s, by binary search of the cumulative weights. */
function zipf(n: number, s: number, next: () => number) {
  const cdf = new Float64Array(n);
  let total = 0;
  for (let k = 0; k < n; k++) cdf[k] = total += 1 / (k + 1) ** s;
  return () => {
    const target = next() * total;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cdf[mid] as number) < target) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

const hex = (next: () => number, length: number) => {
  let out = "";
  while (out.length < length) out += (((next() * 0x100000000) >>> 0) | 0x80000000).toString(16).slice(1);
  return out.slice(0, length);
};

/** Writes `count` lines to `file`; returns once they are on disk. */
export async function writeCorpus(file: string, count: number, revision: string) {
  const next = random(20261201);
  const user = zipf(USERS, 1.1, next);
  const route = zipf(ROUTES.length, 1.0, next);
  const method = zipf(METHODS.length, 1.5, next);
  const id = zipf(PER_USER, 1.2, next);
  const start = Date.parse("2026-11-25T00:00:00.000Z");
  const out = createWriteStream(file, { highWaterMark: 1024 * 1024 });
  let chunk = "";
  let second = "";
  for (let i = 0; i < count; i++) {
    const rank = user();
    const key = rank < KNOWN.length ? KNOWN[rank] : `user-${rank}-key`;
    const template = ROUTES[route()] as string;
    // A user's requests name that user's own few resources: ids are drawn per user, not from the whole space.
    const path = template.includes("{id}")
      ? template.replace("{id}", String(((rank * 37 + id()) % IDS) + 1))
      : template;
    const trace = hex(next, 32);
    if (i % 1000 === 0) second = new Date(start + Math.floor(i * 8.64)).toISOString().slice(0, 20);
    const timestamp = `${second}${String(i % 1000).padStart(3, "0")}Z`;
    chunk +=
      `{"decision_id":"${hex(next, 8)}-0000-4000-8000-${i.toString(16).padStart(12, "0")}","path":"authz/allow","input":{"request":{"http":` +
      `{"host":"api.example.com","port":"443","tls":{},"method":"${METHODS[method()]}","scheme":"https","path":"${path}",` +
      `"querystring":{},"headers":{"host":"api.example.com","user-agent":"okhttp/4.12.0","accept":"application/json",` +
      `"x-api-key":"${key}","x-request-id":"${hex(next, 8)}-${hex(next, 4)}-4${hex(next, 3)}-a${hex(next, 3)}-${hex(next, 12)}",` +
      `"traceparent":"00-${trace}-${hex(next, 16)}-01"}}},"client_ip":"10.${i & 255}.${(i >> 8) & 255}.7"},` +
      `"bundles":{"authz":{"revision":"${revision}"}},"timestamp":"${timestamp}"}\n`;
    if (chunk.length > 1 << 20) {
      if (!out.write(chunk)) await new Promise<void>((resolve) => out.once("drain", () => resolve()));
      chunk = "";
    }
  }
  out.write(chunk);
  await new Promise((resolve) => out.end(resolve));
}
