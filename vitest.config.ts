import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          sequence: { groupOrder: 1 },
          globalSetup: ["test/helpers/global-setup.ts"],
          testTimeout: 90_000,
          hookTimeout: 90_000,
          // Two cores: each file starts real opa/git processes; more workers only queue.
          maxWorkers: 2,
        },
      },
    ],
  },
});
