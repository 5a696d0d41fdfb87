import { randomBytes } from "node:crypto";
import { appendFile } from "node:fs/promises";
import { printable } from "./printable.ts";

/** GitHub Actions: workflow commands, job outputs and the step summary. */

export function inGitHubActions(env: NodeJS.ProcessEnv): boolean {
  return env.GITHUB_ACTIONS === "true";
}

// https://docs.github.com/en/actions/reference/workflow-commands-for-github-actions#setting-an-error-message
function escapeData(value: string): string {
  return value.replaceAll("%", "%25").replaceAll("\r", "%0D").replaceAll("\n", "%0A");
}

function escapeProperty(value: string): string {
  return escapeData(value).replaceAll(":", "%3A").replaceAll(",", "%2C");
}

export function errorAnnotation(options: {
  file?: string;
  line?: number;
  title?: string;
  message: string;
}): string {
  const properties = [
    options.file ? `file=${escapeProperty(options.file)}` : "",
    options.line ? `line=${options.line}` : "",
    options.title ? `title=${escapeProperty(options.title)}` : "",
  ].filter(Boolean);
  return `::error ${properties.join(",")}::${escapeData(options.message)}`;
}

/** Appends name=value pairs to $GITHUB_OUTPUT, with a heredoc delimiter for multi-line values. */
export async function writeOutputs(env: NodeJS.ProcessEnv, outputs: Record<string, string | undefined>) {
  if (!env.GITHUB_OUTPUT) return;
  let text = "";
  for (const [name, value] of Object.entries(outputs)) {
    if (value === undefined) continue;
    if (value.includes("\n")) {
      const delimiter = `policyship_${randomBytes(8).toString("hex")}`;
      text += `${name}<<${delimiter}\n${value}\n${delimiter}\n`;
    } else {
      text += `${name}=${value}\n`;
    }
  }
  await appendFile(env.GITHUB_OUTPUT, text);
}

export async function appendStepSummary(env: NodeJS.ProcessEnv, markdown: string) {
  if (!env.GITHUB_STEP_SUMMARY) return;
  await appendFile(env.GITHUB_STEP_SUMMARY, markdown.endsWith("\n") ? markdown : `${markdown}\n`);
}

/** Line breaks become spaces (a markdown line or cell is one line); then as printable() shows it. */
function oneLine(value: unknown): string {
  return printable(String(value ?? "").replace(/\r?\n|\r/g, " "));
}

/** A code fence one backtick longer than this cannot be closed from inside the text. */
function longestBacktickRun(text: string): number {
  return Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length));
}

/** U+2060 WORD JOINER: invisible, and no word or URL character, so a pattern it splits no longer matches. */
const JOINER = "\u2060";

/**
 * What GitHub turns into a link or a notification from plain text: GFM's autolinks (`https://…`, `www.…`, an
 * e-mail address) and its own references (`@user`, `@org/team`, `#123`, `owner/repo#123`, `GH-123`). A word
 * joiner after each trigger keeps it from matching and leaves the text as it reads.
 */
function defuseReferences(text: string): string {
  return text.replace(/:(?=\/\/)|@|#(?=\d)|\bwww(?=\.)|\bGH-(?=\d)/gi, (match) => `${match}${JOINER}`);
}

/**
 * Text from outside as markdown that shows it and nothing else: no link, image, HTML tag, entity or code span
 * can start inside it, no autolink, mention or issue reference forms, and a table cell cannot end early.
 * Emphasis characters are left; they only restyle.
 */
export function markdownText(value: unknown): string {
  return defuseReferences(oneLine(value).replace(/[\\`[\]<>|&]/g, (char) => `\\${char}`));
}

/** Text from outside as an inline code span: the fence is longer than any run of backticks inside. */
export function markdownCode(value: unknown): string {
  const text = oneLine(value);
  const longest = longestBacktickRun(text);
  const fence = "`".repeat(longest + 1);
  const pad = longest > 0 || text.startsWith(" ") || text.endsWith(" ") ? " " : "";
  return `${fence}${pad}${text}${pad}${fence}`;
}

/** A fenced code block whose fence is longer than any run of backticks in the text, so the text cannot end it. */
export function markdownBlock(text: string, language = ""): string {
  const fence = "`".repeat(Math.max(3, longestBacktickRun(text) + 1));
  return `${fence}${language}\n${text}\n${fence}`;
}

export function markdownTable(header: string[], rows: string[][]): string {
  const cell = markdownText;
  return [
    `| ${header.map(cell).join(" | ")} |`,
    `| ${header.map(() => "---").join(" | ")} |`,
    ...rows.map((row) => `| ${row.map(cell).join(" | ")} |`),
  ].join("\n");
}
