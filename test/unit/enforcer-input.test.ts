import { IncomingMessage } from "node:http";
import { Socket } from "node:net";
import { describe, expect, it } from "vitest";
import { createEnforcer } from "../../src/enforcer/enforcer.ts";
import { buildKongInput, NO_INCLUDES, parseQuerystring } from "../../src/enforcer/input.ts";

const include = NO_INCLUDES;

function request(url: string, rawHeaders: string[], method = "GET"): IncomingMessage {
  const socket = new Socket();
  Object.defineProperty(socket, "localPort", { value: 8443 });
  Object.defineProperty(socket, "remoteAddress", { value: "10.1.2.3" });
  const req = new IncomingMessage(socket);
  req.url = url;
  req.method = method;
  req.rawHeaders = rawHeaders;
  req.headers = {};
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] as string).toLowerCase();
    const existing = req.headers[name];
    req.headers[name] = existing ? `${existing}, ${rawHeaders[i + 1]}` : rawHeaders[i + 1];
  }
  return req;
}

describe("Kong input", () => {
  it("parses the querystring as Kong does", () => {
    expect(parseQuerystring("a=1&a=2&flag&empty=&b=x+y&c=%2Fz&bad=%E0%A4%A")).toEqual({
      a: ["1", "2"],
      flag: true,
      empty: "",
      b: "x y",
      c: "/z",
      bad: "%E0%A4%A",
    });
    expect(parseQuerystring("")).toEqual({});
  });

  it("keeps __proto__, constructor and prototype as plain querystring keys, with no prototype", () => {
    const query = parseQuerystring("__proto__=1&__proto__=2&constructor&prototype=p&%5F_proto__=3");
    expect(Object.getPrototypeOf(query)).toBeNull();
    expect(Object.keys(query)).toEqual(["__proto__", "constructor", "prototype"]);
    expect(Object.getOwnPropertyDescriptor(query, "__proto__")?.value).toEqual(["1", "2", "3"]);
    expect(query.constructor).toBe(true);
    expect(({} as Record<string, unknown>).prototype).toBeUndefined();
  });

  it("builds request.http from a node request", () => {
    const req = request(
      "/orders/42?expand&x=1",
      ["Host", "api.example.com:8443", "X-Api-Key", "k", "Accept", "a", "Accept", "b"],
      "PUT",
    );
    expect(buildKongInput(req, { include })).toEqual({
      request: {
        http: {
          host: "api.example.com",
          port: "8443",
          tls: {},
          method: "PUT",
          scheme: "http",
          path: "/orders/42",
          querystring: { expand: true, x: "1" },
          headers: { host: "api.example.com:8443", "x-api-key": "k", accept: ["a", "b"] },
        },
      },
      client_ip: "10.1.2.3",
    });
  });

  it("strips the port from an IPv6 host", () => {
    const req = request("/", ["Host", "[::1]:8080"]);
    expect(buildKongInput(req, { include }).request.http.host).toBe("::1");
  });

  it("adds captures, body and entities only when included", () => {
    const req = request("/", ["Host", "h", "Content-Type", "application/json; charset=utf-8"], "POST");
    const all = {
      body: true,
      parsedJsonBody: true,
      uriCaptures: true,
      service: true,
      route: true,
      consumer: true,
    };
    const input = buildKongInput(
      req,
      {
        include: all,
        service: () => ({ name: "orders" }),
        route: () => ({ id: "r1" }),
        consumer: () => ({ username: "bob" }),
      },
      { body: Buffer.from('{"qty":2}'), uriCaptures: { named: { id: "42" } } },
    );
    expect(input.request.http).toMatchObject({
      body: '{"qty":2}',
      body_size: 9,
      parsed_body: { qty: 2 },
      uri_captures: { named: { id: "42" }, unnamed: [] },
    });
    expect(input).toMatchObject({
      service: { name: "orders" },
      route: { id: "r1" },
      consumer: { username: "bob" },
    });
    const none = buildKongInput(req, { include }, { body: Buffer.from("{}") });
    expect(none.request.http).not.toHaveProperty("body");
    expect(none).not.toHaveProperty("service");
  });

  it("leaves parsed_body out for non-JSON or invalid JSON", () => {
    const text = request("/", ["Content-Type", "text/plain"], "POST");
    const options = { include: { ...include, parsedJsonBody: true } };
    expect(buildKongInput(text, options, { body: Buffer.from("{}") }).request.http).not.toHaveProperty(
      "parsed_body",
    );
    const broken = request("/", ["Content-Type", "application/json"], "POST");
    expect(buildKongInput(broken, options, { body: Buffer.from("{nope") }).request.http).not.toHaveProperty(
      "parsed_body",
    );
  });
});

describe("createEnforcer fails fast on bad options", () => {
  const cases: [string, unknown, RegExp][] = [
    ["no engine", {}, /exactly one engine/],
    [
      "both engines",
      { opa: { url: "http://x", path: "a" }, bundle: "b.tar.gz", entrypoint: "a" },
      /exactly one engine/,
    ],
    [
      "a bad URL",
      { opa: { url: "localhost:8181", path: "a/b" } },
      /opa\.url must be an http\(s\) URL, got "localhost:8181"/,
    ],
    ["a bad path", { opa: { url: "http://127.0.0.1:8181", path: "a b" } }, /opa\.path must be a rule path/],
    ["no entrypoint", { bundle: "b.tar.gz" }, /entrypoint must be a rule path/],
    [
      "a negative timeout",
      { opa: { url: "http://h", path: "a" }, timeoutMs: -1 },
      /timeoutMs must be a number above 0 and at most 2147483647, got -1/,
    ],
    [
      "a non-function hook",
      { opa: { url: "http://h", path: "a" }, onDecision: "log" },
      /onDecision must be a function, got string/,
    ],
    [
      "an unknown include",
      { opa: { url: "http://h", path: "a" }, include: { cookies: true } },
      /include\.cookies is not an option/,
    ],
    ["null", null, /expects an options object, got null/],
  ];
  for (const [name, options, message] of cases) {
    it(name, () => {
      expect(() => createEnforcer(options as never)).toThrow(TypeError);
      expect(() => createEnforcer(options as never)).toThrow(message);
    });
  }
});
