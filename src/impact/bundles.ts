import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Context } from "../context.ts";
import { UserError } from "../errors.ts";
import { describeHead, gitEnvironment, resolveCommit } from "../git.ts";
import { opaBuild } from "../opa/commands.ts";
import type { OpaBinary } from "../opa/locate.ts";
import { storeKind } from "../settings.ts";
import { REVISION_PATTERN } from "../settings-schema.ts";
import { objectKey, type Store } from "../store/store.ts";

/**
 * The bundle of a recorded revision, found the cheapest way: the local out dir, then the configured store,
 * then a build of that commit from git into a temp dir. Each revision is resolved once.
 */
export class BundleResolver {
  private readonly resolved = new Map<string, Promise<string>>();
  private scratch: Promise<string> | undefined;

  private store: Promise<Store | undefined> | undefined;

  constructor(
    private readonly context: Context,
    private readonly opa: OpaBinary,
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

  private async find(revision: string): Promise<string> {
    const { settings, cwd } = this.context;
    const local = path.resolve(cwd, settings.out, `${revision}.tar.gz`);
    if ((await stat(local).catch(() => undefined))?.isFile()) return local;
    const store = await this.openStore();
    if (store && REVISION_PATTERN.test(revision)) {
      const key = objectKey(settings.prefix, revision);
      if (await store.head(key)) {
        const file = path.join(await this.dir(), `${revision}.tar.gz`);
        await writeFile(file, await store.get(key));
        return file;
      }
    }
    const sha = await resolveCommit(cwd, revision.replace(/-dirty$/, ""));
    if (sha) return this.buildCommit(revision, sha);
    throw new UserError(
      `revision ${revision} is neither in ${settings.out}/, nor published, nor a commit this repository knows`,
      "fetch the history (fetch-depth: 0), configure the store, or pass --base",
    );
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
        `cannot build revision ${revision} from git: ${(built.stdout || built.stderr).trim().split("\n")[0]}`,
        "pass --base with a published revision or a bundle file",
      );
    }
    return output;
  }
}
