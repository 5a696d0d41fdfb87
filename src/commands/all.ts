import { defineBuild } from "./build.ts";
import { defineCheck } from "./check.ts";
import { defineConfig } from "./config.ts";
import { defineDiff } from "./diff.ts";
import { defineDoctor } from "./doctor.ts";
import { defineExplain } from "./explain.ts";
import { defineImpact } from "./impact.ts";
import { defineInit } from "./init.ts";
import { defineList } from "./list.ts";
import { definePrune } from "./prune.ts";
import { definePublish } from "./publish.ts";
import { defineRelease } from "./release.ts";
import { defineRollback } from "./rollback.ts";
import { defineStatus } from "./status.ts";
import { defineTest } from "./test.ts";
import { defineVerify } from "./verify.ts";

/**
 * Every command's definition by name, for what needs them all (help, no command, a misspelt one): one
 * import of this module costs less at start-up than one import per command (docs/perf/P2.md). src/cli.ts
 * lists the same names, in --help order, and checks that the two lists agree.
 */
export const DEFINITIONS = {
  build: defineBuild,
  test: defineTest,
  check: defineCheck,
  publish: definePublish,
  config: defineConfig,
  release: defineRelease,
  rollback: defineRollback,
  list: defineList,
  verify: defineVerify,
  diff: defineDiff,
  impact: defineImpact,
  explain: defineExplain,
  status: defineStatus,
  prune: definePrune,
  init: defineInit,
  doctor: defineDoctor,
};
