/**
 * The entries of the projected inputs seen lately, by text: two generations of at most `size` each, the
 * older dropped whole when the newer fills (an entry met again moves to the newer). Cheaper per look-up
 * than a least-recently-used list, which a day of logs pays millions of times; a dropped entry is still
 * found by its digest.
 */
export class HotEntries<Entry> {
  private young = new Map<string, Entry>();
  private old = new Map<string, Entry>();

  constructor(private readonly size: number) {}

  get(key: string): Entry | undefined {
    const entry = this.young.get(key);
    if (entry !== undefined) return entry;
    const older = this.old.get(key);
    if (older !== undefined) this.set(key, older);
    return older;
  }

  set(key: string, entry: Entry): void {
    if (this.young.size >= this.size) {
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(key, entry);
  }
}
