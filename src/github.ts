import { randomBytes } from "node:crypto";
import { appendFile } from "node:fs/promises";

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

export function markdownTable(header: string[], rows: string[][]): string {
  const cell = (value: string) => value.replaceAll("|", "\\|").replaceAll("\n", " ");
  return [
    `| ${header.map(cell).join(" | ")} |`,
    `| ${header.map(() => "---").join(" | ")} |`,
    ...rows.map((row) => `| ${row.map(cell).join(" | ")} |`),
  ].join("\n");
}
