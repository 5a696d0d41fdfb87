import path from "node:path";
import type { Command } from "commander";
import { createContext, type Io, print } from "../cli-kit.ts";
import { addStoreOptions, collect } from "../cli-options.ts";
import type { Context } from "../context.ts";
import { UserError } from "../errors.ts";
import type { ExplainResult, RevisionExplanation } from "../explain/result.ts";
import type { BundleResolver } from "../impact/bundles.ts";
import type { Replayed } from "../impact/evaluate.ts";
import type { OfflineCapabilities } from "../opa/capabilities.ts";
import type { OpaBinary } from "../opa/locate.ts";
import { locateOpaFor } from "../opa/locate.ts";
import { writeOutput } from "./config.ts";
import { resolveRevisionArgument } from "./verify.ts";

/** What explain is asked about: a recorded decision by id, or an input of its own (--input). */
export interface ExplainRequest {
  decisionId?: string;
  inputFile?: string;
}

interface Subject {
  decisionId?: string;
  revision: string;
  rulePath: string;
  input: unknown;
  recorded?: Replayed;
}

/** The decision (or --input) to explain, its revision and its rule path, each checked before anything runs. */
async function subjectOf(context: Context, request: ExplainRequest): Promise<Subject> {
  const { settings } = context;
  const { assertDecisionId, findDecision, readInputFile, rulePathOf } = await import("../explain/find.ts");
  if (request.decisionId !== undefined && request.inputFile !== undefined) {
    throw new UserError("a decision id and --input both name what to explain", "pass one of them");
  }
  // --revision from the command line only: a build's POLICYSHIP_REVISION must not stand in for the recorded one.
  const named = context.explicit.has("revision") ? settings.revision : undefined;
  const flagPath =
    settings.decisionPath === undefined ? undefined : rulePathOf(settings.decisionPath, "--path");
  if (request.decisionId === undefined) {
    if (request.inputFile === undefined) {
      throw new UserError(
        "nothing to explain",
        "pass a decision id with --decisions <file|dir|s3://…>, or --input <file> --revision <rev>",
      );
    }
    const revision = named ?? settings.revision;
    if (!revision) throw new UserError("--input needs --revision", "pass the revision to evaluate it with");
    const input = await readInputFile(context.cwd, request.inputFile);
    return {
      revision: await resolveRevisionArgument(context, revision),
      rulePath: flagPath ?? "authz/allow",
      input,
    };
  }
  const decisionId = assertDecisionId(request.decisionId);
  if (!settings.decisions) {
    throw new UserError(
      `where decision ${decisionId} was logged is not given`,
      "pass --decisions <file|dir|s3://bucket/prefix>",
    );
  }
  // A bad --revision is refused before any log is read.
  const override = named === undefined ? undefined : await resolveRevisionArgument(context, named);
  const record = await findDecision(context, settings.decisions, decisionId);
  if (record.input === undefined) {
    // Replaying it with no input would explain some other request, and call the difference drift.
    throw new UserError(
      `decision ${decisionId} records no input (its log masked or dropped /input), so it cannot be replayed`,
      "explain the request itself with --input <file> --revision <rev>",
    );
  }
  const { recordedRevisionOf } = await import("./impact.ts");
  const { assertRecordedRevision } = await import("../impact/bundles.ts");
  const revision =
    override ??
    recordedRevisionOf(context, record, (recorded, id) => {
      try {
        return assertRecordedRevision(recorded, id);
      } catch (error) {
        // The log's word is refused; the user's own --revision is the way past it here, not impact's --base.
        if (!(error instanceof UserError)) throw error;
        throw new UserError(error.message, "pass --revision <rev> to explain it at a revision you name");
      }
    });
  if (revision === undefined) {
    throw new UserError(
      `decision ${decisionId} names no bundle revision (the engine was unreachable, or the bundle is not --bundle-name ${settings.bundleName})`,
      "pass --revision <rev>, or --bundle-name to pick the bundle",
    );
  }
  if (flagPath === undefined && record.path === undefined) {
    throw new UserError(`decision ${decisionId} records no path`, "pass --path <rule>, such as authz/allow");
  }
  return {
    decisionId,
    revision,
    rulePath: flagPath ?? rulePathOf(record.path as string, `decision ${decisionId} records path`),
    input: record.input,
    recorded: { defined: record.hasResult, result: record.result },
  };
}

/**
 * Why a decision came out as it did: finds it in the logs (stopping at the first match), fetches the
 * revision that made it as impact does (the out dir checked against the store's record, the store
 * verified, or a build from git), replays it with the real opa offline, and reads from OPA's trace the
 * rules whose bodies produced the value, with their source. With --candidate, the same for another revision.
 */
export async function explain(context: Context, request: ExplainRequest): Promise<ExplainResult> {
  const { settings } = context;
  const subject = await subjectOf(context, request);
  const [{ BundleResolver }, { offlineCapabilities }, { InputMask }, result, opa] = await Promise.all([
    import("../impact/bundles.ts"),
    import("../opa/capabilities.ts"),
    import("../impact/mask.ts"),
    import("../explain/result.ts"),
    locateOpaFor(context),
  ]);
  // Named on the command line, so resolved (and refused) before anything is evaluated.
  const candidateRevision = settings.candidate
    ? await resolveRevisionArgument(context, settings.candidate)
    : undefined;
  // explain has no --base: the revision is the one the decision recorded, or --revision's.
  const resolver = new BundleResolver(context, opa, {
    unknown:
      "fetch the history (fetch-depth: 0), configure the store it was published to (--bucket, --to or --registry), or put its bundle in --out",
    unbuildable:
      "fix the policies at that commit (--v0-compatible if they predate OPA 1.0), configure the store it was published to (--bucket, --to or --registry), or pass --revision <rev> to explain it under another revision",
  });
  let capabilities: OfflineCapabilities | undefined;
  try {
    capabilities = await offlineCapabilities(opa);
    // Everything shown derives from the recorded input, which may hold credentials: masked as impact masks.
    const masked = new InputMask(settings.mask).apply(subject.input);
    const { redact } = await import("../impact/mask.ts");
    const hide = <T>(value: T): T => redact(value, masked.secrets);
    const evaluate = (revision: string) =>
      explainRevision(context, opa, resolver, capabilities as OfflineCapabilities, subject, revision, hide);
    const base = await evaluate(subject.revision);
    const explained: ExplainResult = {
      decision_id: subject.decisionId ?? null,
      revision: subject.revision,
      path: subject.rulePath,
      recorded: subject.recorded
        ? {
            defined: subject.recorded.defined,
            ...(subject.recorded.defined ? { result: hide(subject.recorded.result) } : {}),
            outcome: (await import("../impact/report.ts")).classify(subject.recorded).outcome,
          }
        : null,
      replayed: base.shown.replayed,
      drift: subject.recorded ? result.differs(subject.recorded, base.replayed) : false,
      rules: base.shown.rules,
      input: masked.input,
    };
    if (candidateRevision) {
      const candidate = await evaluate(candidateRevision);
      const changed = result.differs(base.replayed, candidate.replayed);
      const { bundleChanges } = await import("../explain/difference.ts");
      const { bundleLimits } = await import("../settings.ts");
      const changes = await bundleChanges(
        opa,
        await resolver.bundleOf(subject.revision),
        await resolver.bundleOf(candidateRevision),
        bundleLimits(settings),
      );
      explained.candidate = {
        ...candidate.shown,
        changed,
        why: hide(result.whyTheyDiffer(base.shown, candidate.shown, changed, changes)),
        changes,
      };
    }
    if (settings.markdown) {
      const { renderExplainMarkdown } = await import("../explain/render.ts");
      await writeOutput(
        path.resolve(context.cwd, settings.markdown),
        renderExplainMarkdown(explained),
        settings.markdown,
      );
    }
    return explained;
  } finally {
    await Promise.all([resolver.dispose(), capabilities?.dispose()]);
  }
}

async function explainRevision(
  context: Context,
  opa: OpaBinary,
  resolver: BundleResolver,
  capabilities: OfflineCapabilities,
  subject: Subject,
  revision: string,
  hide: <T>(value: T) => T,
): Promise<{ replayed: Replayed; shown: RevisionExplanation }> {
  const [{ explainEvaluation }, { ruleSources }, { shownResult }, { bundleLimits }] = await Promise.all([
    import("../explain/trace.ts"),
    import("../explain/source.ts"),
    import("../explain/result.ts"),
    import("../settings.ts"),
  ]);
  const bundle = await resolver.bundleOf(revision);
  const { replayed, rules } = await explainEvaluation(opa, bundle, subject.rulePath, subject.input, {
    capabilities: capabilities.file,
  });
  const sources = await ruleSources(opa, bundle, rules, {
    limits: bundleLimits(context.settings),
    v0Compatible: context.settings.v0Compatible,
  });
  return {
    replayed,
    shown: {
      revision,
      replayed: shownResult(replayed, hide),
      rules: rules.map((rule, index) => ({ ...rule, source: sources[index] ?? [] })),
    },
  };
}

/** The `explain` command: its flags, help and examples, and how its result is printed. @internal: CLI only, kept out of the .d.ts */
export function defineExplain(program: Command, io: Io): Command {
  return addStoreOptions(program.command("explain"))
    .description("why a recorded decision came out as it did: the revision, the rules and their lines")
    .argument("[decision-id]", "the decision_id of the logged decision")
    .option("--decisions <source>", "where it was logged: a file, a directory or s3://bucket/prefix")
    .option("--input <file>", "explain this input document instead of a recorded decision (with --revision)")
    .option("--revision <rev>", "evaluate with this revision (default: the one the decision recorded)")
    .option("--candidate <rev>", "also explain the decision under this revision, and why the two differ")
    .option(
      "--path <rule>",
      "decision path such as authz/allow (default: the decision's own; authz/allow for --input)",
    )
    .option(
      "--mask <pointer>",
      "also erase this JSON Pointer (under /input) from everything shown (repeatable)",
      collect,
    )
    .option("--markdown <file>", "also write the explanation as markdown, for an incident ticket")
    .option("--out <dir>", "where build wrote bundles, searched first for the revision (default: dist)")
    .option("--policies <dir>", "policy directory, to build a revision from git (default: policies)")
    .option("--bundle-name <name>", "the bundle whose recorded revision made the decision (default: authz)")
    .option("--v0-compatible", "policies written before OPA 1.0")
    .addHelpText(
      "after",
      `
Examples:
  $ policyship explain 5f1c2e9a-6b1d-4c8e-9a51-0d2f7c3b8e14 --decisions decisions.ndjson
  $ policyship explain 5f1c2e9a-6b1d-4c8e-9a51-0d2f7c3b8e14 --decisions s3://acme-logs/authz/ \\
      --bucket acme-policies --region eu-west-1 --markdown incident.md
  $ policyship explain 5f1c2e9a-6b1d-4c8e-9a51-0d2f7c3b8e14 --decisions logs/ --candidate main --json
  $ policyship explain --input request.json --revision 3f2a9c1 --path authz/allow`,
    )
    .action(async (decisionId: string | undefined, options: { input?: string }, command: Command) => {
      const inputFile = options.input;
      // --input is this command's own argument, not a setting.
      command.setOptionValue("input", undefined);
      const context = await createContext(io, command);
      const result = await explain(context, { decisionId, inputFile });
      const { renderExplain } = await import("../explain/render.ts");
      print(io, context, result, renderExplain(result));
    });
}
