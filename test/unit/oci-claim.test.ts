import { describe, expect, it } from "vitest";
import { claimTagOf, type TagAccess, writeTagOnce } from "../../src/store/oci/claim.ts";

/** The claim protocol against an in-memory registry: tags name manifests, which are their digests here. */
function registry() {
  const tags = new Map<string, string>();
  const access: TagAccess<{ digest: string }> = {
    put: async (reference, manifest) => {
      tags.set(reference, manifest.toString());
    },
    read: async (reference) => (tags.has(reference) ? { digest: tags.get(reference) as string } : undefined),
    tags: async () => [...tags.keys()],
    remove: async (digest) => {
      for (const [tag, named] of tags) if (named === digest) tags.delete(tag);
    },
    name: (reference) => `r/p:${reference}`,
  };
  return { tags, access };
}

const digest = (hex: string) => `sha256:${hex.repeat(64)}`;
const write = (
  access: TagAccess<{ digest: string }>,
  hex: string,
  timing: { settleMs: number; signal?: AbortSignal } = { settleMs: 1 },
) =>
  writeTagOnce(
    access,
    "rev",
    Buffer.from(digest(hex)),
    digest(hex),
    {
      manifest: Buffer.from(`claim-${hex}`),
      digest: `claim-${hex}`,
    },
    timing,
  );

describe("writing a revision's tag once", () => {
  it("alone: writes the tag, and leaves no claim behind", async () => {
    const { tags, access } = registry();
    expect(await write(access, "b")).toEqual({ created: true });
    expect([...tags]).toEqual([["rev", digest("b")]]);
  });

  it("an existing tag is the answer, whoever wrote it", async () => {
    const { tags, access } = registry();
    tags.set("rev", digest("a"));
    expect(await write(access, "b")).toEqual({ created: false, existing: { digest: digest("a") } });
    expect(tags.get("rev")).toBe(digest("a"));
  });

  it("behind a claim that sorts first: waits for that publisher's tag and reports it, never writes", async () => {
    const { tags, access } = registry();
    tags.set(claimTagOf("rev", digest("a")), "claim-a");
    setTimeout(() => tags.set("rev", digest("a")), 50);
    expect(await write(access, "b")).toEqual({ created: false, existing: { digest: digest("a") } });
  });

  it("ahead of another claim: writes the tag", async () => {
    const { tags, access } = registry();
    tags.set(claimTagOf("rev", digest("c")), "claim-c");
    expect(await write(access, "b")).toEqual({ created: true });
    expect(tags.get("rev")).toBe(digest("b"));
  });

  it("two racers at once: exactly one writes", async () => {
    const { tags, access } = registry();
    const results = await Promise.all([
      write(access, "e", { settleMs: 20 }),
      write(access, "d", { settleMs: 20 }),
    ]);
    expect(results.map((result) => result.created)).toEqual([false, true]);
    expect(tags.get("rev")).toBe(digest("d"));
  });

  it("a claim left by a publisher that died is one clear failure that says how to clear it", async () => {
    const { tags, access } = registry();
    tags.set(claimTagOf("rev", digest("a")), "claim-a");
    await expect(
      writeTagOnce(
        access,
        "rev",
        Buffer.from(digest("b")),
        digest("b"),
        { manifest: Buffer.from("x"), digest: "x" },
        {
          settleMs: 1,
          winnerTimeoutMs: 100,
        },
      ),
    ).rejects.toThrow(/claimed it \(r\/p:rev\.claim\.a{16}\) but has not written it in 0 s/);
    expect(tags.has("rev")).toBe(false);
  });

  it("interrupted while its claim settles: never writes the tag, removes its claim, and the next publish writes it", async () => {
    const { tags, access } = registry();
    const interrupt = new AbortController();
    const written = write(access, "b", { settleMs: 5_000, signal: interrupt.signal });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect([...tags.keys()]).toEqual([claimTagOf("rev", digest("b"))]);
    interrupt.abort(new Error("interrupted"));
    await expect(written).rejects.toThrow("interrupted");
    expect(tags.size).toBe(0);
    // A claim left behind by another build of the revision would sort first half the time and hold this up.
    expect(await write(access, "c")).toEqual({ created: true });
    expect([...tags]).toEqual([["rev", digest("c")]]);
  });

  it("interrupted before it starts: writes nothing", async () => {
    const { tags, access } = registry();
    await expect(
      write(access, "b", { settleMs: 1, signal: AbortSignal.abort(new Error("interrupted")) }),
    ).rejects.toThrow("interrupted");
    expect(tags.size).toBe(0);
  });

  it("refuses a revision too long for its claim tag before writing anything", async () => {
    const { tags, access } = registry();
    const long = "r".repeat(106);
    await expect(
      writeTagOnce(access, long, Buffer.from("m"), digest("b"), { manifest: Buffer.from("c"), digest: "c" }),
    ).rejects.toThrow(/revision r{106} is too long to publish to an OCI registry \(at most 105 characters\)/);
    expect(tags.size).toBe(0);
  });
});
