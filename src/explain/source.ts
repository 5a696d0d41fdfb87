import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { type BundleLimits, readBundle } from "../bundle/read.ts";
import type { Opa } from "../opa/commands.ts";
import { runOpa } from "../opa/run.ts";
import { parseJson } from "../safe-json.ts";
import type { AppliedRule } from "./trace.ts";

/** Lines of one rule shown at most: a rule longer than this is cut, with its location still exact. */
const MAX_RULE_LINES = 40;

export interface SourceLine {
  row: number;
  text: string;
}

/** Where a parsed rule starts and how many lines its text (and its head's, for `default`) takes. */
interface ParsedLocation {
  row?: unknown;
  text?: unknown;
}

interface ParsedRule {
  location?: ParsedLocation;
  head?: { location?: ParsedLocation };
  else?: ParsedRule;
}

function lastRowOf(location: ParsedLocation | undefined): number {
  if (typeof location?.row !== "number") return 0;
  const text = typeof location.text === "string" ? Buffer.from(location.text, "base64").toString("utf8") : "";
  return location.row + Math.max(0, text.split("\n").length - 1);
}

/**
 * The last row of each rule (an `else` branch is a rule of its own), by first row, as opa's parser reads the
 * file (`opa parse --format json --json-include locations`): rule text is Rego's to delimit, not ours.
 */
async function ruleExtents(opa: Opa, file: string, v0Compatible: boolean): Promise<Map<number, number>> {
  const args = ["parse", "--format", "json", "--json-include", "locations,-comments"];
  if (v0Compatible) args.push("--v0-compatible");
  const result = await runOpa(opa.path, [...args, file], { env: opa.env, timeoutMs: 60_000 });
  const extents = new Map<number, number>();
  if (result.exitCode !== 0) return extents;
  let parsed: { rules?: ParsedRule[] };
  try {
    parsed = parseJson(result.stdout) as typeof parsed;
  } catch {
    return extents;
  }
  const visit = (rule: ParsedRule | undefined) => {
    if (!rule || typeof rule.location?.row !== "number") return;
    const last = Math.max(lastRowOf(rule.location), lastRowOf(rule.head?.location));
    extents.set(rule.location.row, Math.max(last, extents.get(rule.location.row) ?? 0));
    visit(rule.else);
  };
  for (const rule of Array.isArray(parsed.rules) ? parsed.rules : []) visit(rule);
  return extents;
}

/**
 * The policy source of each applied rule, read from the bundle that was evaluated (bounded as every bundle
 * read is): rows from the rule's first line to its last, as opa parses the file. A file the bundle does not
 * hold, or opa cannot parse, shows the rule's first line only.
 */
export async function ruleSources(
  opa: Opa,
  bundle: string,
  rules: readonly AppliedRule[],
  options: { limits: BundleLimits; v0Compatible: boolean },
): Promise<SourceLine[][]> {
  const files = [...new Set(rules.map((rule) => rule.file).filter((file) => file.endsWith(".rego")))];
  if (files.length === 0) return rules.map(() => []);
  const { kept } = await readBundle(bundle, files, options.limits);
  const scratch = await mkdtemp(path.join(os.tmpdir(), "policyship-explain-"));
  try {
    const extents = new Map<string, Map<number, number>>();
    for (const [index, file] of files.entries()) {
      const text = kept.get(file);
      if (!text) continue;
      // Written under a name of ours: the bundle's path is never joined onto a directory of this machine.
      const copy = path.join(scratch, `${index}.rego`);
      await writeFile(copy, text, { mode: 0o600 });
      extents.set(file, await ruleExtents(opa, copy, options.v0Compatible));
    }
    return rules.map((rule) => {
      const text = kept.get(rule.file)?.toString("utf8");
      if (text === undefined || rule.row < 1) return [];
      const lines = text.split("\n");
      const last = Math.max(rule.row, extents.get(rule.file)?.get(rule.row) ?? rule.row);
      const shown: SourceLine[] = [];
      for (let row = rule.row; row <= Math.min(last, rule.row + MAX_RULE_LINES - 1, lines.length); row++) {
        shown.push({ row, text: (lines[row - 1] ?? "").replace(/\r$/, "") });
      }
      return shown;
    });
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
