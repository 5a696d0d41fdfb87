import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/** Records read between two collections: ~60 MB of parsed lines garbage on the example corpus. */
const RECORDS_PER_COLLECTION = 100_000;

/**
 * Keeps a long replay's heap near what it holds. A day of logs is gigabytes of lines parsed and dropped;
 * V8 lets the old generation grow to about four times its live size between collections when garbage comes
 * that fast (250–350 MB for impact's ~60 MB), which is memory the runner never gets back. Collecting every
 * RECORDS_PER_COLLECTION records costs tens of milliseconds each time. V8's `gc` is exposed as jest and
 * others do it: the flag set at run time, the function taken from a fresh context.
 */
export function heapKeeper(): (records: number) => void {
  setFlagsFromString("--expose-gc");
  const collect = runInNewContext("gc") as () => void;
  let next = RECORDS_PER_COLLECTION;
  return (records) => {
    if (records < next) return;
    next = records + RECORDS_PER_COLLECTION;
    collect();
  };
}
