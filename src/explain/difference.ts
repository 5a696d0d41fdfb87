import { stringify } from "safe-stable-stringify";
import type { BundleLimits } from "../bundle/read.ts";
import type { Changes } from "../diff/compare.ts";
import type { Opa } from "../opa/commands.ts";

/** What changed between the decision's revision and the candidate, as `diff` compares two bundles. */
export interface BundleChanges {
  /** "package.rule" names whose definitions were added, removed or changed. */
  rules: Changes;
  /** JSON Pointers of the data leaves added, removed or changed. */
  data: Changes;
}

/** Names shown in one sentence at most; the JSON has them all. */
const MAX_NAMED = 5;

/** The rules and data that differ between two bundles, read and compared by diff's own code. */
export async function bundleChanges(
  opa: Opa,
  base: string,
  candidate: string,
  limits: BundleLimits,
): Promise<BundleChanges> {
  const { viewOf, compareKeys, compareData } = await import("../diff/compare.ts");
  const [from, to] = await Promise.all([
    viewOf(opa, base, limits, "the decision's revision"),
    viewOf(opa, candidate, limits, "the candidate"),
  ]);
  return {
    rules: compareKeys(from.rules, to.rules, (a, b) => stringify(a) === stringify(b)),
    data: compareData(from.data, to.data),
  };
}

function named(changes: Changes): string[] {
  const all = [
    ...changes.added.map((name) => `${name} (added)`),
    ...changes.removed.map((name) => `${name} (removed)`),
    ...changes.changed.map((name) => name),
  ];
  const more = all.length - MAX_NAMED;
  return more > 0 ? [...all.slice(0, MAX_NAMED), `${more} more`] : all;
}

/** "rules changed: authz.allow; data changed: /roles/reader/0/methods/2 (added)", or that neither did. */
export function describeChanges(changes: BundleChanges): string {
  const rules = named(changes.rules);
  const data = named(changes.data);
  const parts: string[] = [];
  if (rules.length > 0) parts.push(`rules changed: ${rules.join(", ")}`);
  if (data.length > 0) parts.push(`data changed: ${data.join(", ")}`);
  return parts.length > 0 ? parts.join("; ") : "no rule or data differs between the two bundles";
}
