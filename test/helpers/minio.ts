import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { freePort, waitForHttpOk } from "./ports.ts";
import { startProcess } from "./processes.ts";
import { toolPath } from "./tools.ts";

export interface MinioInfo {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

export interface RunningMinio extends MinioInfo {
  stop: () => Promise<void>;
}

/** Starts a real MinIO on a free loopback port with a temp data dir and random root credentials. */
export async function startMinio(options: { region?: string } = {}): Promise<RunningMinio> {
  const region = options.region ?? "us-east-1";
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "policyship-minio-"));
  const [port, consolePort] = [await freePort(), await freePort()];
  const accessKeyId = `ps${randomBytes(8).toString("hex")}`;
  const secretAccessKey = randomBytes(24).toString("base64url");
  const endpoint = `http://127.0.0.1:${port}`;
  const server = startProcess(
    toolPath("minio"),
    [
      "server",
      dataDir,
      "--quiet",
      "--address",
      `127.0.0.1:${port}`,
      "--console-address",
      `127.0.0.1:${consolePort}`,
    ],
    {
      ...process.env,
      MINIO_ROOT_USER: accessKeyId,
      MINIO_ROOT_PASSWORD: secretAccessKey,
      MINIO_BROWSER: "off",
      MINIO_UPDATE: "off",
      MINIO_REGION: region,
    },
  );
  const stop = async () => {
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    await waitForHttpOk(`${endpoint}/minio/health/ready`, 30_000, server.alive);
  } catch (error) {
    await stop();
    throw new Error(`MinIO did not start: ${(error as Error).message}\n${server.output()}`);
  }
  return { endpoint, accessKeyId, secretAccessKey, region, stop };
}
