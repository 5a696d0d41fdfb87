// make demo: the whole story on this machine, no Docker. Starts MinIO, releases a throwaway clone of
// policies/, runs OPA on the rendered config and the example app behind the enforcer, changes the policy,
// releases again, runs the new revision in shadow beside the old one and reports where they disagree,
// promotes it, and rolls back — printing OPA's active revision at every step. Stops what it started.
// `--store oci` (make demo STORE=oci) keeps the revisions in a local OCI registry instead of MinIO.
import { execFileSync } from "node:child_process";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { startMinio } from "../test/helpers/minio.ts";
import { type RunningOpa, startOpaServer } from "../test/helpers/opa-server.ts";
import { freePort } from "../test/helpers/ports.ts";
import { type Started, startProcess } from "../test/helpers/processes.ts";
import { startRegistry } from "../test/helpers/registry.ts";
import { repoRoot, toolPath } from "../test/helpers/tools.ts";

async function waitForAnswer(url: string, app: Started) {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (!app.alive()) throw new Error(`the example app exited: ${app.output()}`);
    if (
      await fetch(url).then(
        () => true,
        () => false,
      )
    )
      return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} did not answer within 15 s`);
}

// Bold only on a terminal, and never with NO_COLOR (https://no-color.org).
const bold = process.stdout.isTTY && !process.env.NO_COLOR;
const say = (message: string) =>
  process.stdout.write(bold ? `\x1b[1m[demo]\x1b[0m ${message}\n` : `[demo] ${message}\n`);
const cleanups: (() => Promise<unknown>)[] = [];
const storeFlag = process.argv.indexOf("--store");
const storeKind = storeFlag >= 0 ? process.argv[storeFlag + 1] : "s3";
if (storeKind !== "s3" && storeKind !== "oci") {
  process.stderr.write(`[demo] --store takes s3 or oci, not ${storeKind}\n`);
  process.exit(2);
}
const useRegistry = storeKind === "oci";

async function main() {
  say("starting MinIO on a free loopback port …");
  const minio = await startMinio();
  cleanups.push(minio.stop);
  const bucket = "policyship-demo";
  await new S3Client({
    endpoint: minio.endpoint,
    region: minio.region,
    forcePathStyle: true,
    credentials: { accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey },
  }).send(new CreateBucketCommand({ Bucket: bucket }));
  say(`MinIO at ${minio.endpoint}, bucket ${bucket}`);
  const aws = {
    AWS_ACCESS_KEY_ID: minio.accessKeyId,
    AWS_SECRET_ACCESS_KEY: minio.secretAccessKey,
    AWS_REGION: minio.region,
  };

  const repo = await mkdtemp(path.join(os.tmpdir(), "policyship-demo-"));
  cleanups.push(() => rm(repo, { recursive: true, force: true }));
  const gitEnv = {
    ...process.env,
    GIT_AUTHOR_NAME: "Demo",
    GIT_AUTHOR_EMAIL: "demo@example.com",
    GIT_COMMITTER_NAME: "Demo",
    GIT_COMMITTER_EMAIL: "demo@example.com",
  };
  const git = (...args: string[]) =>
    execFileSync("git", args, { cwd: repo, env: gitEnv, encoding: "utf8" }).trim();
  git("init", "--quiet", "--initial-branch=main");
  await cp(path.join(repoRoot, "policies"), path.join(repo, "policies"), { recursive: true });
  git("add", "--all");
  git("commit", "--quiet", "-m", "initial policies");
  const revisionA = git("rev-parse", "HEAD");
  say(`throwaway clone of policies/ in ${repo}, commit A = ${revisionA.slice(0, 12)}`);

  let where = ["--bucket", bucket, "--endpoint", minio.endpoint, "--prefix", "demo"];
  if (useRegistry) {
    say("starting CNCF Distribution's registry on a free loopback port …");
    const registry = await startRegistry();
    cleanups.push(registry.stop);
    where = ["--store", `oci://${registry.host}/demo/policies`];
    say(`registry at ${registry.host}, repository demo/policies`);
  }
  const store = [...where, "--polling-min", "1", "--polling-max", "2"];
  /** Runs the CLI in the clone and shows its output; `quiet` returns it unshown (a check, not a step). */
  const policyship = (args: string[], options: { quiet?: boolean } = {}) => {
    if (!options.quiet) say(`$ policyship ${args.join(" ")}`);
    const output = execFileSync(toolPath("node"), [path.join(repoRoot, "bin/policyship.js"), ...args], {
      cwd: repo,
      env: { ...process.env, ...aws },
      encoding: "utf8",
      stdio: ["ignore", "pipe", options.quiet ? "pipe" : "inherit"],
    });
    if (!options.quiet)
      for (const line of output.trimEnd().split("\n")) process.stdout.write(`    ${line}\n`);
    return output;
  };

  let opa: RunningOpa | undefined;
  let shadowOpa: RunningOpa | undefined;
  let app: Started | undefined;
  let appUrl = "";
  const startOpa = async (configFile: string) => {
    const started = await startOpaServer(["--config-file", configFile], { env: aws, waitForBundles: true });
    const status = (await (await fetch(`${started.url}/v1/status`)).json()) as {
      result: { bundles: { authz: { active_revision: string } } };
    };
    say(`OPA ${started.url} active revision: ${status.result.bundles.authz.active_revision}`);
    return started;
  };
  /** OPA on `configFile` and the app in front of it; with `shadowConfig`, a second OPA the app shadows. */
  const startStack = async (
    configFile: string,
    appRevision: string,
    shadow?: { configFile: string; decisionLog: string },
  ) => {
    await app?.stop();
    await opa?.stop();
    await shadowOpa?.stop();
    shadowOpa = undefined;
    opa = await startOpa(configFile);
    if (shadow) shadowOpa = await startOpa(shadow.configFile);
    const port = await freePort();
    appUrl = `http://127.0.0.1:${port}`;
    app = startProcess(toolPath("node"), [path.join(repoRoot, "examples/orders-app/server.mjs")], {
      ...process.env,
      PORT: String(port),
      OPA_URL: opa.url,
      APP_REVISION: appRevision,
      DECISION_LOG: shadow?.decisionLog ?? path.join(repo, "decisions.ndjson"),
      ...(shadowOpa ? { SHADOW_OPA_URL: shadowOpa.url } : {}),
    });
    // /health is behind the enforcer too: under a revision mismatch it answers 503, which still means "up".
    await waitForAnswer(`${appUrl}/health`, app);
    say(
      `orders-app ${appUrl} (expects policy revision ${appRevision.slice(0, 12)}${shadowOpa ? `; shadows ${shadowOpa.url}` : ""})`,
    );
  };
  cleanups.push(async () => {
    await app?.stop();
    await opa?.stop();
    await shadowOpa?.stop();
  });
  // The post-deploy step: did the rollout land on OPA?
  const rollout = (revision: string) =>
    policyship(["status", "--instance", opa?.url ?? "", "--expect", revision.slice(0, 12), "--wait", "30s"]);

  const request = async (method: string, route: string, user?: string) => {
    const response = await fetch(`${appUrl}${route}`, {
      method,
      headers: user ? { "x-api-key": `${user}-key` } : {},
    });
    const body = (await response.json()) as { message?: unknown };
    const verdict = response.status < 400 ? "allow" : response.status >= 500 ? "error" : "deny ";
    const detail = response.status < 400 ? "" : ` ${JSON.stringify(body.message)}`;
    say(
      `  ${verdict} ${response.status}  ${method.padEnd(6)} ${route.padEnd(15)} as ${(user ?? "anonymous").padEnd(9)}${detail}`,
    );
    return response.status;
  };
  const requests = async () => {
    await request("GET", "/orders");
    await request("GET", "/orders", "bob");
    await request("POST", "/orders", "bob");
    await request("POST", "/orders", "carol");
    await request("DELETE", "/admin/users/7", "alice");
  };

  say("— release A —");
  policyship(["release", ...store, "-o", "opa-A.yaml"]);
  await startStack(path.join(repo, "opa-A.yaml"), revisionA);
  rollout(revisionA);
  await requests();

  say("— change the policy: readers may now create orders —");
  const dataFile = path.join(repo, "policies/data.json");
  const data = JSON.parse(await readFile(dataFile, "utf8"));
  data.roles.reader.push({ methods: ["POST"], prefix: "/orders" });
  await writeFile(dataFile, `${JSON.stringify(data, null, 2)}\n`);
  const testFile = path.join(repo, "policies/authz_test.rego");
  const tests = await readFile(testFile, "utf8");
  await writeFile(
    testFile,
    tests
      .replace("test_reader_may_not_write_orders if {", "test_reader_may_write_orders if {")
      .replace(
        '\td.allow == false\n\td.status == 403\n\td.message == "bob may not POST /orders"',
        "\td.allow",
      ),
  );
  git("commit", "--quiet", "--all", "-m", "readers may create orders");
  const revisionB = git("rev-parse", "HEAD");
  say(`commit B = ${revisionB.slice(0, 12)}`);
  say("— before merging B: which of the requests A served would B decide differently? —");
  await app?.stop(); // the decision log is complete once the app has stopped
  policyship(["impact", "--decisions", "decisions.ndjson", ...where, "--markdown", "impact.md"]);
  policyship(["release", ...store, "-o", "opa-B.yaml"]);

  say("— B in shadow: the app still enforces A, and logs each request B would decide differently —");
  await startStack(path.join(repo, "opa-A.yaml"), revisionA, {
    configFile: path.join(repo, "opa-B.yaml"),
    decisionLog: path.join(repo, "shadow.ndjson"),
  });
  await requests();
  await app?.stop(); // the decision log is complete once the app has stopped
  const shadowed = policyship(["impact", "--shadow", "--decisions", "shadow.ndjson", "--json"], {
    quiet: true,
  });
  const report = JSON.parse(shadowed) as { changed: number; flips: { deny_to_allow: number } };
  policyship(["impact", "--shadow", "--decisions", "shadow.ndjson"]);
  // Only bob's POST /orders: the readiness check and the other requests agree.
  if (report.changed !== 1 || report.flips.deny_to_allow !== 1) {
    throw new Error(`expected exactly 1 disagreement in shadow, a deny → allow; got ${shadowed}`);
  }

  say("— promote B: deploy the app at B's SHA —");
  await startStack(path.join(repo, "opa-B.yaml"), revisionB);
  rollout(revisionB);
  const flipped = await request("POST", "/orders", "bob");
  if (flipped !== 201) throw new Error(`expected bob's POST to be allowed at B, got ${flipped}`);

  say("— the app at B against OPA still at A is refused (revision guard) —");
  await startStack(path.join(repo, "opa-A.yaml"), revisionB);
  await request("GET", "/orders", "bob");

  say("— roll back to A —");
  policyship(["rollback", revisionA.slice(0, 8), ...store, "-o", "opa-rollback.yaml"]);
  await startStack(path.join(repo, "opa-rollback.yaml"), revisionA);
  rollout(revisionA);
  const restored = await request("POST", "/orders", "bob");
  if (restored !== 403) throw new Error(`expected bob's POST to be denied after rollback, got ${restored}`);
  policyship(["list", ...where]);
  say("done: release, change, shadow, promote and rollback, each pinned to its commit.");
}

const stopAll = async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
};
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    void stopAll().finally(() => process.exit(130));
  });
}
main()
  .then(stopAll)
  .catch(async (error: Error) => {
    process.stderr.write(`[demo] failed: ${error.message}\n`);
    await stopAll();
    process.exitCode = 1;
  });
