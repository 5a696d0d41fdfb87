import type http from "node:http";
import { describe, expect, it } from "vitest";
import { renderImpact, renderImpactMarkdown } from "../../src/commands/impact.ts";
import { renderList } from "../../src/commands/list.ts";
import { renderStatus } from "../../src/commands/status.ts";
import { ImpactReport } from "../../src/impact/report.ts";
import { readInstance } from "../../src/opa/instances.ts";
import { endlessJson, serversClosedAfterEach } from "../helpers/serve.ts";

/** What an attacker can put in front of a reader: an escape that rewrites the terminal, markdown that links out. */
const ESCAPE = "\u001b[2K\u001b[1G\u001b[32m✓ all good";
const LINK = "[approve](https://attacker.example) <img src=https://attacker.example/x.png> `";

const opaAnswering = serversClosedAfterEach();
const json = (body: unknown) => (_request: http.IncomingMessage, response: http.ServerResponse) => {
  response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
};

describe("status shows what an OPA says, and never obeys it", () => {
  it("control characters in the revision, times and errors are shown as escapes", async () => {
    const url = await opaAnswering(
      json({
        result: {
          bundles: {
            authz: {
              active_revision: `abc${ESCAPE}`,
              last_successful_activation: `2026-01-01T00:00:00Z${ESCAPE}`,
              code: "bundle_error",
              message: `download failed${ESCAPE}`,
              errors: [{ message: `${LINK}\r` }, { message: 42 }, null],
            },
          },
        },
      }),
    );
    const instance = await readInstance(url, "authz");
    expect(instance.revision).toBe("abc\\u001b[2K\\u001b[1G\\u001b[32m✓ all good");
    expect(instance.error).toContain("bundle_error: download failed\\u001b[2K");
    expect(instance.error).toContain("\\u000d");
    const shown = renderStatus({
      bundle: "authz",
      expect: null,
      instances: [instance],
      converged: false,
      waitedMs: 0,
    });
    const controls = [...shown].filter((char) => char !== "\n" && /\p{Cc}/u.test(char));
    expect(controls).toEqual([]);
  });

  it("fields of the wrong type are nothing, not a crash reported as unreachable", async () => {
    const url = await opaAnswering(
      json({
        result: { bundles: { authz: { active_revision: { a: 1 }, code: "x", errors: "not a list" } } },
      }),
    );
    expect(await readInstance(url, "authz")).toMatchObject({ revision: null, error: "x:" });
  });

  it("a bundle named like an Object property is not found in an empty status", async () => {
    const url = await opaAnswering(json({ result: { bundles: {} } }));
    for (const name of ["constructor", "__proto__", "toString"]) {
      expect((await readInstance(url, name)).error).toBe(`no bundle named ${name} (it has: none)`);
    }
  });

  it("an endless answer is cut off and named, not held in memory", async () => {
    const url = await opaAnswering(endlessJson);
    expect((await readInstance(url, "authz")).error).toBe("answered more than 4194304 bytes");
  });
});

describe("impact shows recorded requests, and never lets them format the report", () => {
  function report() {
    const impact = new ImpactReport(5);
    const input = { request: { http: { method: "GET", path: `/x${ESCAPE}${LINK}` } } };
    impact.add(
      { input, result: true, hasResult: true, revisions: {} },
      "base",
      { defined: true, result: true },
      { defined: true, result: false },
    );
    return impact.finish();
  }

  it("the terminal report shows the path's escapes", () => {
    const text = renderImpact(report());
    expect(text).toContain("GET /x\\u001b[2K");
    expect(text).not.toContain("\u001b");
  });

  it("the markdown report opens no link, image or tag, and every code span holds", () => {
    const markdown = renderImpactMarkdown(report());
    expect(markdown).toContain(
      String.raw`| GET | /x\\u001b\[2K\\u001b\[1G\\u001b\[32m✓ all good\[approve\](https:${"\u2060"}//attacker.example) \<img`,
    );
    expect(markdown).toContain(
      "`` GET /x\\u001b[2K\\u001b[1G\\u001b[32m✓ all good[approve](https://attacker.example) <img src=https://attacker.example/x.png> ` ``",
    );
    // Outside code spans nothing opens: every [ < ` in the table rows is escaped.
    const rows = markdown.split("\n").filter((line) => line.startsWith("| GET"));
    expect(rows).toHaveLength(1);
    expect(rows[0]).not.toMatch(/(^|[^\\])[[<`]/);
  });
});

describe("list shows the store's metadata, and never lets it format the listing", () => {
  it("a commit subject with escapes is shown as escapes", () => {
    const text = renderList([
      { revision: "a".repeat(40), key: "a.tar.gz", size: 10, subject: `fix typo${ESCAPE}` },
    ]);
    expect(text).toContain("fix typo\\u001b[2K");
    expect(text).not.toContain("\u001b");
  });
});
