import { hash, randomBytes } from "node:crypto";
import type { Opa } from "../opa/commands.ts";
import { type RecordedDecision, releaseInput } from "./decisions.ts";
import { DigestTable } from "./digest-table.ts";
import { type Replayed, replay } from "./evaluate.ts";
import { HotEntries } from "./hot-entries.ts";
import { type InputReads, mergeReads, projectInput, readsOfBundle } from "./projection.ts";
import type { ImpactReport } from "./report.ts";

/** Distinct inputs per opa process: large enough that process start-up is noise, small enough to stay in memory. */
const BATCH_SIZE = 5_000;
/** Records read ahead of the report: they wait, in order, for the evaluations they need. */
const WINDOW = 20_000;
/** Windows read but not yet reported: bounds the records held (each ~1 KB once its input is released). */
const WINDOWS_AHEAD = 6;
/** Projected inputs remembered as text, the hot ones: a hit costs no digest. */
const HOT_ENTRIES = 50_000;
/** Distinct replayed results kept once and shared, so the cache holds references, not copies. */
const MAX_INTERNED = 10_000;
/** Distinct (base, candidate) result pairs looked up by their text; past it each evaluation keeps its own. */
const MAX_PAIRS_INDEXED = 100_000;

export interface ReplayerOptions {
  capabilities: string;
  /** Batches (each one opa process for the base and one for the candidate) evaluated at once. */
  parallel: number;
  /** Projected inputs kept by text, per generation (default 50,000); every other one is found by digest. */
  hotEntries?: number;
  /** Distinct inputs per opa process (default 5,000). */
  batchSize?: number;
}

/** One distinct projected input of one (revision, rule) group: evaluated once, shared by every record. */
interface Entry {
  input: unknown;
  /** sha256 of the projected input's text, truncated to 128 bits: its key in the group's digests. */
  digest?: Uint32Array;
  /** The digest as its key in the group's pending map, until evaluated. */
  pendingName?: string;
  before?: Replayed;
  after?: Replayed;
  /** Settles when the entry's batch has been evaluated; undefined once it has. */
  pending?: Promise<void>;
}

/** The evaluation of the entries queued in a group, settled once they are launched and evaluated. */
interface Batch {
  entries: Entry[];
  done: Promise<void>;
  settle: (evaluated: Promise<void>) => void;
}

interface Group {
  revision: string;
  rulePath: string;
  bundle: Promise<string>;
  reads: Promise<InputReads>;
  /** Once `reads` has settled. */
  readsValue?: InputReads;
  /** The hot projected inputs, by their text. */
  hot: HotEntries<Entry>;
  /** Every projected input evaluated, by digest → its (base, candidate) pair in Replayer.pairs. */
  digests: DigestTable;
  /** Projected inputs queued or being evaluated, by digest (base64). */
  pending: Map<string, Entry>;
  queued?: Batch;
}

interface Window {
  items: { record: RecordedDecision; revision: string; entry: Entry }[];
  waits: Set<Promise<void>>;
}

/**
 * Replays recorded decisions against their base and the candidate, evaluating each distinct input once:
 * inputs are projected onto what the base and candidate policies can read (projection.ts), and records
 * whose projections are equal share one evaluation. Batches run `parallel` at a time while the next records
 * are read; the report still sees every record, in the order read.
 */
export class Replayer {
  private readonly groups = new Map<string, Group>();
  private readonly readsOf = new Map<string, Promise<InputReads>>();
  private readonly interned = new Map<string, Replayed>();
  /** Each distinct (base, candidate) result pair evaluated, held once. */
  private readonly pairs: Entry[] = [];
  private readonly pairIndex = new Map<string, number>();
  private window: Window = { items: [], waits: new Set() };
  private reported: Promise<void>[] = [];
  private running = 0;
  private readonly slots: (() => void)[] = [];
  /** Distinct inputs evaluated (each against the base and the candidate). */
  evaluated = 0;
  /** Prefixed to each input's text before it is hashed (entryOf). */
  private readonly salt = randomBytes(16).toString("base64");

  constructor(
    private readonly opa: Opa,
    private readonly bundleOf: (revision: string) => Promise<string>,
    private readonly candidate: string,
    private readonly report: ImpactReport,
    private readonly options: ReplayerOptions,
  ) {}

  /**
   * Queues a record behind the evaluation it needs. Returns a promise only when the caller must wait (the
   * policies' reads are not known yet, a batch is full, or a window closes): a day of logs is millions of
   * records, and an await for each costs more than the rest of its bookkeeping.
   */
  add(record: RecordedDecision, revision: string, rulePath: string): Promise<void> | undefined {
    const group = this.groupOf(revision, rulePath);
    if (!group.readsValue) {
      return group.reads.then((reads) => {
        group.readsValue = reads;
        return this.add(record, revision, rulePath);
      });
    }
    const projected = projectInput(record.input, group.readsValue);
    const key = JSON.stringify(projected ?? null);
    releaseInput(record);
    let entry = group.hot.get(key);
    let full = false;
    if (!entry) {
      entry = this.entryOf(group, key, projected);
      group.hot.set(key, entry);
      full =
        group.queued !== undefined && group.queued.entries.length >= (this.options.batchSize ?? BATCH_SIZE);
    }
    this.window.items.push({ record, revision, entry });
    if (entry.pending) this.window.waits.add(entry.pending);
    const windowFull = this.window.items.length >= WINDOW;
    if (!full && !windowFull) return undefined;
    return (async () => {
      if (full) await this.launch(group);
      if (windowFull) await this.closeWindow();
    })();
  }

  /** Evaluates what is left and reports every record; rejects with the first evaluation's failure. */
  async finish(): Promise<void> {
    await this.closeWindow();
    await this.launchAll();
    await Promise.all(this.reported);
  }

  /**
   * The entry of a projected input that is not hot: its evaluated pair, the entry already queued for it, or
   * a new one queued. Inputs are told apart by 128 bits of sha256 over a secret drawn for this run and the
   * input's text: requests logged before the run cannot have been crafted to collide, so none passes for
   * another; and a day of distinct inputs takes 20 bytes each rather than its text.
   */
  private entryOf(group: Group, key: string, projected: unknown): Entry {
    const bytes = hash("sha256", this.salt + key, "buffer");
    const digest = new Uint32Array(bytes.buffer, bytes.byteOffset, 4).slice();
    const pair = group.digests.get(digest);
    if (pair !== undefined) return this.pairs[pair] as Entry;
    const name = bytes.toString("base64", 0, 16);
    let entry = group.pending.get(name);
    if (!entry) {
      const batch = group.queued ?? this.newBatch(group);
      entry = { input: projected, digest, pendingName: name, pending: batch.done };
      group.pending.set(name, entry);
      batch.entries.push(entry);
    }
    return entry;
  }

  private newBatch(group: Group): Batch {
    let settle: (evaluated: Promise<void>) => void = () => {};
    const done = new Promise<void>((resolve) => {
      settle = resolve;
    });
    // Marked handled here: a failure is raised when the window that needs it is reported.
    done.catch(() => {});
    group.queued = { entries: [], done, settle };
    return group.queued;
  }

  private async launchAll(): Promise<void> {
    for (const group of this.groups.values()) await this.launch(group);
  }

  private groupOf(revision: string, rulePath: string): Group {
    const name = `${revision}\u0000${rulePath}`;
    let group = this.groups.get(name);
    if (!group) {
      const bundle = this.bundleOf(revision);
      const reads = Promise.all([
        bundle.then((file) => this.bundleReads(file)),
        this.bundleReads(this.candidate),
      ]).then(([a, b]) => mergeReads(a, b));
      group = {
        revision,
        rulePath,
        bundle,
        reads,
        hot: new HotEntries<Entry>(this.options.hotEntries ?? HOT_ENTRIES),
        digests: new DigestTable(),
        pending: new Map(),
      };
      this.groups.set(name, group);
    }
    return group;
  }

  private bundleReads(file: string): Promise<InputReads> {
    let reads = this.readsOf.get(file);
    if (!reads) {
      reads = readsOfBundle(this.opa, file);
      this.readsOf.set(file, reads);
    }
    return reads;
  }

  /** Starts evaluating a group's queued entries once a slot is free (the reader waits for it meanwhile). */
  private async launch(group: Group): Promise<void> {
    const batch = group.queued;
    group.queued = undefined;
    if (!batch) return;
    await this.slot();
    batch.settle(
      this.evaluate(group, batch.entries).finally(() => {
        this.running--;
        this.slots.shift()?.();
      }),
    );
  }

  private slot(): Promise<void> {
    if (this.running < this.options.parallel) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.slots.push(() => {
        this.running++;
        resolve();
      });
    });
  }

  private async evaluate(group: Group, entries: Entry[]): Promise<void> {
    const inputs = entries.map((entry) => entry.input);
    const options = { capabilities: this.options.capabilities };
    const base = await group.bundle;
    const [before, after] = await Promise.all([
      replay(this.opa, base, group.rulePath, inputs, options),
      replay(this.opa, this.candidate, group.rulePath, inputs, options),
    ]);
    for (const [i, entry] of entries.entries()) {
      const beforeKey = this.keyOf(before[i] as Replayed);
      const afterKey = this.keyOf(after[i] as Replayed);
      entry.before = this.intern(before[i] as Replayed, beforeKey);
      entry.after = this.intern(after[i] as Replayed, afterKey);
      entry.input = undefined;
      entry.pending = undefined;
      group.digests.add(entry.digest as Uint32Array, this.pairOf(entry, `${beforeKey}\u0000${afterKey}`));
      group.pending.delete(entry.pendingName as string);
      entry.digest = undefined;
      entry.pendingName = undefined;
    }
    this.evaluated += entries.length;
  }

  /** The index in `pairs` of an entry's (base, candidate) results, keyed by their text: an equal pair's, or its own. */
  private pairOf(entry: Entry, key: string): number {
    const known = this.pairIndex.get(key);
    if (known !== undefined) return known;
    this.pairs.push(entry);
    if (this.pairIndex.size < MAX_PAIRS_INDEXED) this.pairIndex.set(key, this.pairs.length - 1);
    return this.pairs.length - 1;
  }

  private keyOf(replayed: Replayed): string {
    return JSON.stringify([replayed.defined, replayed.result, replayed.error ?? null]);
  }

  /** One shared object per distinct result, so that the report classifies each once. */
  private intern(replayed: Replayed, key: string): Replayed {
    const known = this.interned.get(key);
    if (known) return known;
    if (this.interned.size < MAX_INTERNED) this.interned.set(key, replayed);
    return replayed;
  }

  /**
   * Queues the window's report behind the one before it and the batches it needs. Batches are launched
   * full; a part-filled one is launched only when the reader must wait for the oldest window (so few
   * small opa processes start), and then all are, so that the window waited for can complete.
   */
  private async closeWindow(): Promise<void> {
    const window = this.window;
    this.window = { items: [], waits: new Set() };
    if (window.items.length === 0) return;
    const previous = this.reported.at(-1) ?? Promise.resolve();
    const reported = Promise.all([previous, ...window.waits]).then(() => {
      for (const { record, revision, entry } of window.items) {
        this.report.add(record, revision, entry.before as Replayed, entry.after as Replayed);
      }
    });
    reported.catch(() => {});
    this.reported.push(reported);
    if (this.reported.length > WINDOWS_AHEAD) {
      await this.launchAll();
      await this.reported.shift();
    }
  }
}
