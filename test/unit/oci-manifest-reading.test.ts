import { describe, expect, it } from "vitest";
import { parseManifest } from "../../src/store/oci/manifest.ts";
import { AmbiguousJson, parseStrictJson } from "../../src/store/oci/strict-json.ts";

/**
 * OPA reads manifests with Go's encoding/json (case-insensitive keys, last match wins); policyship reads them
 * in JavaScript. Each document here is one that Go reads differently from JSON.parse, and is refused.
 */

const read = (text: string | Buffer) => parseStrictJson(typeof text === "string" ? Buffer.from(text) : text);

describe("JSON that Go and JavaScript read differently is refused", () => {
  const refused: [string, string | Buffer, RegExp][] = [
    ["case-folded duplicate", '{"layers":[],"Layers":[]}', /"layers" and "Layers" differ only in case/],
    ["known field in other case only", '{"Layers":[]}', /"Layers" is not spelled "layers"/],
    ["all capitals", '{"LAYERS":[]}', /"LAYERS" is not spelled "layers"/],
    ["exact duplicate", '{"layers":[],"layers":[]}', /"layers" appears twice/],
    ["duplicate mediaType", '{"mediaType":"a","mediaType":"b"}', /"mediaType" appears twice/],
    ["Digest in a descriptor", '{"layers":[{"digest":"a","Digest":"b"}]}', /"digest" and "Digest"/],
    ["Digest alone in a descriptor", '{"layers":[{"Digest":"b"}]}', /"Digest" is not spelled "digest"/],
    ["long s folds onto s in Go", '{"layers":[],"layerſ":[]}', /"layers" and "layerſ" differ only in case/],
    ["long s alone", '{"ſize":1}', /"ſize" is not spelled "size"/],
    ["Kelvin sign folds onto k", '{"annotations":{"key":"a","\u212Aey":"b"}}', /"key" and "\u212Aey"/],
    ["an escaped key is the same key", '{"layers":[],"\\u004cayers":[]}', /"layers" and "Layers"/],
    [
      "duplicate config objects (Go merges them)",
      '{"config":{"digest":"a"},"config":{"size":2}}',
      /"config" appears twice/,
    ],
    ["case-folded annotation keys", '{"annotations":{"a":"1","A":"2"}}', /"a" and "A"/],
    ["duplicate deep inside", '{"x":[[{"y":{"z":1,"z":2}}]]}', /"z" appears twice/],
    ["lone surrogate in a value", '{"digest":"a\\ud800"}', /lone surrogate/],
    ["lone surrogate in a key", '{"a\\udc00":1}', /lone surrogate/],
    ["invalid UTF-8", Buffer.from([0x7b, 0x22, 0x61, 0xff, 0x22, 0x3a, 0x31, 0x7d]), /not valid UTF-8/],
    ["a size Go's int64 refuses", '{"size":2.0}', /2\.0 is not an integer literal/],
    ["an exponent", '{"size":1e3}', /1e3 is not an integer literal/],
    ["nesting past the bound", `${"[".repeat(40)}${"]".repeat(40)}`, /nests deeper than 32/],
  ];
  for (const [name, text, message] of refused) {
    it(name, () => {
      expect(() => read(text)).toThrow(AmbiguousJson);
      expect(() => read(text)).toThrow(message);
    });
  }

  it("keys that Go does not fold onto a field are two keys to both readers, and accepted", () => {
    // U+029F (small capital L) has no case fold in Unicode, so Go binds it to no field.
    expect(Object.keys(read('{"layers":[],"ʟayers":[],"la_yers":[]}') as object)).toEqual([
      "layers",
      "ʟayers",
      "la_yers",
    ]);
  });

  it("a string that only looks like a key, a colon inside strings, and escaped quotes are no keys", () => {
    expect(read('{"a":"layers\\":","b":["Layers",":"],"c":"\\\\"}')).toEqual({
      a: 'layers":',
      b: ["Layers", ":"],
      c: "\\",
    });
  });

  it("gives null-prototype objects at every depth, __proto__ included as a plain key", () => {
    const value = read('{"__proto__":{"polluted":true},"list":[{"constructor":1}]}') as {
      list: object[];
    };
    expect(Object.getPrototypeOf(value)).toBeNull();
    expect(Object.getPrototypeOf(value.list[0])).toBeNull();
    expect(Object.getPrototypeOf(Object.getOwnPropertyDescriptor(value, "__proto__")?.value)).toBeNull();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("is not JSON: a SyntaxError, a trailing comma and a byte-order mark included", () => {
    for (const text of ["{", '{"a":1,}', "\ufeff{}", "{'a':1}", ""]) {
      expect(() => read(text), text).toThrow(SyntaxError);
    }
  });
});

describe("a manifest", () => {
  const gzip = "application/vnd.oci.image.layer.v1.tar+gzip";
  const layer = { mediaType: gzip, digest: `sha256:${"a".repeat(64)}`, size: 10 };
  const manifest = (extra: Record<string, unknown> = {}) =>
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        layers: [layer],
        ...extra,
      }),
    );

  it("that is ambiguous is refused in one line that names it and says not to deploy", () => {
    const text = manifest().toString().replace('"layers"', '"Layers"');
    expect(() => parseManifest(Buffer.from(text), "r/p:x")).toThrow(
      /^the manifest of r\/p:x is refused: the key "Layers" is not spelled "layers"/,
    );
  });

  it("that is an index, or is served as one, is refused", () => {
    const index = manifest({ mediaType: "application/vnd.oci.image.index.v1+json", manifests: [] });
    expect(() => parseManifest(index, "m")).toThrow(
      /"application\/vnd\.oci\.image\.index\.v1\+json", not an image manifest/,
    );
    expect(() => parseManifest(manifest(), "m", "application/vnd.oci.image.index.v1+json")).toThrow(
      /not an image manifest/,
    );
    expect(() => parseManifest(manifest({ mediaType: undefined }), "m")).toThrow(/not an image manifest/);
  });

  it("whose fields have types Go refuses is refused (OPA would not load it)", () => {
    for (const [extra, message] of [
      [{ layers: [layer, "x"] }, /layers\[1\] is not a descriptor/],
      [{ layers: [{ ...layer, size: "10" }] }, /layers\[0\]\.size is not an integer/],
      [{ layers: [{ ...layer, digest: 1 }] }, /layers\[0\]\.digest is not a string/],
      [{ config: [] }, /config is not a descriptor/],
      [{ annotations: { a: 1 } }, /the annotation "a" is not a string/],
      [{ schemaVersion: 1 }, /schemaVersion is not 2/],
    ] as const) {
      expect(() => parseManifest(manifest(extra), "m"), JSON.stringify(extra)).toThrow(message);
    }
  });

  it("served with its media type and a charset is read", () => {
    const found = parseManifest(manifest(), "m", "application/vnd.oci.image.manifest.v1+json; charset=utf-8");
    expect(found.layer).toEqual(layer);
  });
});
