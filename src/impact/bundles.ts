import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { sha256File } from "../bundle/read.ts";
import type { Context } from "../context.ts";
import { FailureError, UserError } from "../errors.ts";
import { describeHead, gitEnvironment, resolveCommit } from "../git.ts";
import { opaBuild } from "../opa/commands.ts";
import type { OpaBinary } from "../opa/locate.ts";
import { printable } from "../printable.ts";
import { assertRevision } from "../revision.ts";
import { storeKind } from "../settings-access.ts";
import { objectKey, type Store } from "../store/store.ts";

/** What a decision log may record as a revision: a full commit SHA, never a path, an option or a prefix. */
export const COMMIT_SHA = /^[0-9a-f]{40}$/;

/** A recorded revision, or one line refusing it (it is never used as a path, a key or a git argument). */
export function assertRecordedRevision(revision: string, decisionId: string | undefined): string {
  if (COMMIT_SHA.test(revision)) return revision;
  throw new UserError(
    `decision ${printable(decisionId ?? "(no id)", 100)} records revision ${printable(JSON.stringify(revision), 100)}, which is not a full commit SHA`,
    "replay logs written by bundles policyship built, or pass --base <revision>",
  );
}

/**
 * The bundle of a revision, from what can vouch for it: the configured store (the local out dir's copy when
 * its digest is the published one), else a build of that commit from git into a temp dir. Each revision is
 * resolved once.
 */
export class BundleResolver {
  private readonly resolved = new Map<string, Promise<string>>();
  private scratch: Promise<string> | undefined;

  private store: Promise<Store | undefined> | undefined;

  constructor(
    private readonly context: Context,
    private readonly opa: OpaBinary,
    /** How the command's user gets past a revision it cannot find or build (each command has its own flags). */
    private readonly hints: { unknown?: string; unbuildable?: string } = {},
  ) {}

  /** The configured store (bucket, registry or directory), opened on first need; none when none is set. */
  private openStore(): Promise<Store | undefined> {
    this.store ??= storeKind(this.context.settings)
      ? import("../store/open.ts").then(({ openStore }) => openStore(this.context))
      : Promise.resolve(undefined);
    return this.store;
  }

  /** Removes what was downloaded or built for this run. */
  async dispose(): Promise<void> {
    const dir = await this.scratch?.catch(() => undefined);
    if (dir) await rm(dir, { recursive: true, force: true });
  }

  private dir(): Promise<string> {
    this.scratch ??= mkdtemp(path.join(os.tmpdir(), "policyship-impact-"));
    return this.scratch;
  }

  bundleOf(revision: string): Promise<string> {
    let found = this.resolved.get(revision);
    if (!found) {
      found = this.find(revision);
      this.resolved.set(revision, found);
    }
    return found;
  }

  /**
   * A local bundle is only a copy: anything in the checkout (a PR branch may commit dist/) could be planted
   * there to stand in for the base. So it is used only when its sha256 is the one the store recorded at
   * publish; otherwise the revision comes from the store (its bytes checked against that digest) or is
   * rebuilt from its commit.
   */
  private async find(revision: string): Promise<string> {
    const { settings, cwd, log } = this.context;
    assertRevision(revision);
    const local = path.resolve(cwd, settings.out, `${revision}.tar.gz`);
    const hasLocal = (await stat(local).catch(() => undefined))?.isFile() === true;
    const store = await this.openStore();
    const key = objectKey(settings.prefix, revision);
    if (store && (await this.cameWithCheckout(key))) {
      log.info(
        `${store.location}${key} is committed in this repository, so it cannot vouch for ${revision}: not used`,
      );
    } else if (store) {
      const recorded = (await store.head(key))?.metadata.sha256;
      if (recorded) {
        if (hasLocal && (await sha256File(local)).sha256 === recorded) return local;
        if (hasLocal)
          log.info(`${settings.out}/${revision}.tar.gz differs from the published bundle: not used`);
        const body = await store.get(key);
        const sha256 = createHash("sha256").update(body).digest("hex");
        if (sha256 !== recorded) {
          throw new FailureError(
            `${store.urlOf(key)} was changed after publishing: its sha256 is ${sha256}, publish recorded ${recorded}`,
            "do not trust it; publish the revision from its commit again or restore the object",
          );
        }
        const file = path.join(await this.dir(), `${revision}.tar.gz`);
        await writeFile(file, body);
        return file;
      }
    }
    const sha = COMMIT_SHA.test(revision) ? await resolveCommit(cwd, revision) : undefined;
    if (sha === revision) {
      if (hasLocal) log.debug(`${settings.out}/${revision}.tar.gz has no published digest: rebuilt from git`);
      return this.buildCommit(revision, sha);
    }
    throw new UserError(
      `revision ${revision} is neither published${store ? ` in ${store.location}` : ""} nor a commit this repository knows${hasLocal ? ` (${settings.out}/${revision}.tar.gz cannot be checked against either, so it is not used)` : ""}`,
      this.hints.unknown ?? "fetch the history (fetch-depth: 0), configure the store, or pass --base",
    );
  }

  /**
   * Whether a directory store's object (or its metadata) is tracked in the checkout: then a pull request
   * could have written both, bundle and digest, and the store is no more a witness than dist/ is.
   */
  private async cameWithCheckout(key: string): Promise<boolean> {
    const { settings, cwd } = this.context;
    if (storeKind(settings) !== "directory" || !settings.to) return false;
    const head = await describeHead(cwd);
    const object = path.resolve(cwd, settings.to, key);
    if (!head || path.relative(head.root, object).startsWith("..")) return false;
    const tracked = await new Promise<string | undefined>((resolve) => {
      execFile(
        "git",
        ["ls-files", "--cached", "-z", "--", object, `${object}.meta.json`],
        { cwd: head.root, encoding: "utf8" },
        (error, stdout) => resolve(error ? undefined : stdout),
      );
    });
    // A git that cannot answer is not taken for "untracked".
    return tracked === undefined || tracked !== "";
  }

  /** `git archive` of the policies at that commit, built by opa with the commit as revision. */
  private async buildCommit(revision: string, sha: string): Promise<string> {
    const { settings, cwd } = this.context;
    const head = await describeHead(cwd);
    if (!head) throw new UserError(`${cwd} is not a git repository`, "run impact in your repository");
    const policies = path.relative(head.root, path.resolve(cwd, settings.policies)) || ".";
    const tree = path.join(await this.dir(), `tree-${sha}`);
    await mkdir(tree, { recursive: true });
    const archive = await new Promise<Buffer>((resolve, reject) => {
      execFile(
        "git",
        ["archive", "--format=tar", sha, "--", policies],
        {
          cwd: head.root,
          env: gitEnvironment(process.env),
          encoding: "buffer",
          maxBuffer: 512 * 1024 * 1024,
        },
        (error, stdout, stderr) =>
          error
            ? reject(new UserError(`git archive ${sha} failed: ${String(stderr).trim().split("\n")[0]}`))
            : resolve(stdout),
      );
    });
    const { x } = await import("tar");
    const { Readable } = await import("node:stream");
    const { pipeline } = await import("node:stream/promises");
    await pipeline(Readable.from([archive]), x({ cwd: tree }));
    const output = path.join(await this.dir(), `${revision}-built.tar.gz`);
    const built = await opaBuild(this.opa, {
      policiesDir: path.join(tree, policies),
      output,
      revision: sha,
      optimize: 0,
      target: "rego",
      entrypoints: [],
      v0Compatible: settings.v0Compatible,
      ignore: settings.ignore,
    });
    if (built.exitCode !== 0) {
      throw new UserError(
        `cannot build revision ${revision} from git: ${describeOpaErrors(built.stdout || built.stderr, policies)}`,
        this.hints.unbuildable ?? "pass --base with a published revision or a bundle file",
      );
    }
    return output;
  }
}

/**
 * opa's errors as one line: its "N errors occurred:" heading says nothing, the errors under it do (the first
 * five, each with its file and line).
 */
export function describeOpaErrors(output: string, policies = "."): string {
  const errors = output
    .split("\n")
    .map((line) =>
      line
        .trim()
        .replace(/^error:\s*/i, "")
        .replace(/^load error: bundle \.:\s*/, "")
        .replace(/^\d+ errors? occurred:?\s*/, ""),
    )
    .filter((line) => line !== "");
  // Each error is "file:line: rego_..._error: ..." followed by the source line and a caret: those are noise.
  const located = errors
    .filter((line) => /:\d+: |rego_\w*error/.test(line))
    .map((line) =>
      line.replace(/^\.?\/?([\w./-]+\.(?:rego|json|ya?ml))(?=:)/, (_m, file) => path.join(policies, file)),
    );
  return summarize(located.length > 0 ? located : errors);
}

function summarize(errors: string[]): string {
  const shown = errors.slice(0, 5).join("; ");
  return errors.length > 5 ? `${shown}; and ${errors.length - 5} more` : shown || "opa printed nothing";
}
