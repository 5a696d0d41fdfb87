import { LRUCache } from "lru-cache";
import type { Opa } from "../opa/commands.ts";
import type { RecordedDecision } from "./decisions.ts";
import { type Replayed, replay } from "./evaluate.ts";
import { type InputReads, mergeReads, projectInput, readsOfBundle } from "./projection.ts";
import type { ImpactReport } from "./report.ts";

/** Distinct inputs per opa process: large enough that process start-up is noise, small enough to stay in memory. */
const BATCH_SIZE = 5_000;
/** Records read ahead of the report: they wait, in order, for the evaluations they need. */
const WINDOW = 20_000;
/** Windows read but not yet reported: bounds the records held while opa works. */
const WINDOWS_AHEAD = 3;
/** Evaluated inputs remembered: a projected input seen again is not evaluated again. */
const CACHE_ENTRIES = 400_000;
/** Distinct replayed results kept once and shared, so the cache holds references, not copies. */
const MAX_INTERNED = 10_000;

export interface ReplayerOptions {
  capabilities: string;
  /** Batches (each one opa process for the base and one for the candidate) evaluated at once. */
  parallel: number;
}

/** One distinct projected input of one (revision, rule) group: evaluated once, shared by every record. */
interface Entry {
  input: unknown;
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
  cache: LRUCache<string, Entry>;
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
  private window: Window = { items: [], waits: new Set() };
  private reported: Promise<void>[] = [];
  private running = 0;
  private readonly slots: (() => void)[] = [];
  /** Distinct inputs evaluated (each against the base and the candidate). */
  evaluated = 0;

  constructor(
    private readonly opa: Opa,
    private readonly bundleOf: (revision: string) => Promise<string>,
    private readonly candidate: string,
    private readonly report: ImpactReport,
    private readonly options: ReplayerOptions,
  ) {}

  async add(record: RecordedDecision, revision: string, rulePath: string): Promise<void> {
    const group = this.groupOf(revision, rulePath);
    const reads = await group.reads;
    const projected = projectInput(record.input, reads);
    const key = JSON.stringify(projected ?? null);
    let entry = group.cache.get(key);
    if (!entry) {
      const batch = group.queued ?? this.newBatch(group);
      entry = { input: projected, pending: batch.done };
      group.cache.set(key, entry);
      batch.entries.push(entry);
      if (batch.entries.length >= BATCH_SIZE) await this.launch(group);
    }
    this.window.items.push({ record, revision, entry });
    if (entry.pending) this.window.waits.add(entry.pending);
    if (this.window.items.length >= WINDOW) await this.closeWindow();
  }

  /** Evaluates what is left and reports every record; rejects with the first evaluation's failure. */
  async finish(): Promise<void> {
    await this.closeWindow();
    await this.launchAll();
    await Promise.all(this.reported);
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
        cache: new LRUCache({ max: CACHE_ENTRIES }),
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
      entry.before = this.intern(before[i] as Replayed);
      entry.after = this.intern(after[i] as Replayed);
      entry.input = undefined;
      entry.pending = undefined;
    }
    this.evaluated += entries.length;
  }

  /** One shared object per distinct result, so that the report classifies each once. */
  private intern(replayed: Replayed): Replayed {
    const key = JSON.stringify([replayed.defined, replayed.result, replayed.error ?? null]);
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
