import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEnforcer, type DecisionEvent } from "../../src/enforcer/index.ts";
import { buildBundles, CONFORMANCE_DIR, CONFORMANCE_ENTRYPOINT } from "../helpers/enforcer-fixtures.ts";
import { type RunningOpa, startOpaServer } from "../helpers/opa-server.ts";
import { startSwitchingProxy } from "../helpers/switching-proxy.ts";

const allowInput = {
  request: { http: { method: "GET", path: "/bool-allow", headers: {}, querystring: {} } },
  client_ip: "127.0.0.1",
};

/** A round-robin load balancer on loopback: request n goes to upstream n mod 2, as during a rollout. */
function roundRobin(upstreams: string[]) {
  let next = 0;
  return startSwitchingProxy(() => upstreams[next++ % upstreams.length] as string);
}

let oldOpa: RunningOpa;
let newOpa: RunningOpa;
let balancer: Awaited<ReturnType<typeof roundRobin>>;

beforeAll(async () => {
  const [old, fresh] = await Promise.all([
    buildBundles(CONFORMANCE_DIR, "rev-old", CONFORMANCE_ENTRYPOINT),
    buildBundles(CONFORMANCE_DIR, "rev-new", CONFORMANCE_ENTRYPOINT),
  ]);
  [oldOpa, newOpa] = await Promise.all([
    startOpaServer(["--bundle", old.rego]),
    startOpaServer(["--bundle", fresh.rego]),
  ]);
  balancer = await roundRobin([newOpa.url, oldOpa.url]);
});
afterAll(async () => {
  await balancer?.close();
  await Promise.all([oldOpa?.stop(), newOpa?.stop()]);
});

describe("each decision carries the revision that produced it", () => {
  it("behind a balancer with two revisions, every answer from the other revision is a 503 on that request", async () => {
    const events: DecisionEvent[] = [];
    const enforcer = createEnforcer({
      opa: { url: balancer.url, path: CONFORMANCE_ENTRYPOINT },
      expectedRevision: "rev-new",
      log: () => {},
      onDecision: (event) => events.push(event),
    });
    try {
      await enforcer.ready();
      const decisions = [];
      for (let i = 0; i < 10; i++) decisions.push(await enforcer.decide(allowInput));
      // Alternating upstreams: new, old, new, old …
      expect(decisions.map((d) => d.status)).toEqual([200, 503, 200, 503, 200, 503, 200, 503, 200, 503]);
      expect(decisions.map((d) => d.revision)).toEqual(
        Array.from({ length: 10 }, (_, i) => (i % 2 ? "rev-old" : "rev-new")),
      );
      expect(events.map((e) => e.revision)).toEqual(decisions.map((d) => d.revision));
    } finally {
      await enforcer.close();
    }
  });

  it("without expectedRevision the decision still names the revision that answered", async () => {
    const enforcer = createEnforcer({ opa: { url: oldOpa.url, path: CONFORMANCE_ENTRYPOINT } });
    try {
      expect(await enforcer.decide(allowInput)).toMatchObject({ allow: true, revision: "rev-old" });
    } finally {
      await enforcer.close();
    }
  });
});
