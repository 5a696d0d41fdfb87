import type { TestProject } from "vitest/node";
import { type MinioInfo, startMinio } from "./minio.ts";

declare module "vitest" {
  export interface ProvidedContext {
    minio: MinioInfo;
  }
}

/** One MinIO for the whole integration run; each test file makes its own bucket. */
export default async function setup(project: TestProject) {
  const minio = await startMinio();
  project.provide("minio", {
    endpoint: minio.endpoint,
    accessKeyId: minio.accessKeyId,
    secretAccessKey: minio.secretAccessKey,
    region: minio.region,
  });
  return async () => {
    await minio.stop();
  };
}
