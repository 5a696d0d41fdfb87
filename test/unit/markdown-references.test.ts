import { describe, expect, it } from "vitest";
import { renderImpactMarkdown } from "../../src/commands/impact.ts";
import { markdownTable, markdownText } from "../../src/github.ts";
import { ImpactReport } from "../../src/impact/report.ts";

const J = "\u2060";

/** What GitHub links or notifies from plain text, had the joiner not split it. */
const LINKING = [
  /https?:\/\//i,
  /(^|[^\w])www\./i,
  /@[A-Za-z0-9]/,
  /#\d/,
  /\bGH-\d/i,
  /[\w.+-]@[\w-]+\./,
  /(^|[^\\])&#?\w+;/,
];

const HOSTILE =
  "see https://attacker.example/x and WWW.attacker.example, cc @octocat @acme/security, fixes #123 and acme/app#45, GH-7, mail ops@acme.example, &#64;octocat &commat;x &#x202e;";

describe("markdown from outside cannot link or notify", () => {
  it("defuses GFM autolinks, @mentions, issue references and entities, and keeps the text readable", () => {
    const shown = markdownText(HOSTILE);
    for (const pattern of LINKING) expect(shown).not.toMatch(pattern);
    expect(shown).toBe(
      `see https:${J}//attacker.example/x and WWW${J}.attacker.example, cc @${J}octocat @${J}acme/security, fixes #${J}123 and acme/app#${J}45, GH-${J}7, mail ops@${J}acme.example, \\&#${J}64;octocat \\&commat;x \\&#x202e;`,
    );
    expect(shown.replaceAll(J, "").replaceAll("\\&", "&")).toBe(HOSTILE);
  });

  it("in table cells too", () => {
    const table = markdownTable(["path"], [["/@admin#1 http://x"]]);
    expect(table).toContain(`/@${J}admin#${J}1 http:${J}//x`);
  });

  it("the impact report's request table neither links nor mentions from a recorded path", () => {
    const report = new ImpactReport(5);
    report.add(
      {
        input: { request: { http: { method: "GET", path: "/@octocat/#1/https://attacker.example" } } },
        result: true,
        hasResult: true,
        revisions: {},
      },
      "base",
      { defined: true, result: true },
      { defined: true, result: false },
    );
    const rows = renderImpactMarkdown(report.finish())
      .split("\n")
      .filter((line) => line.startsWith("| GET"));
    expect(rows).toHaveLength(1);
    for (const pattern of LINKING) expect(rows[0]).not.toMatch(pattern);
  });
});
