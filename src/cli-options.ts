import { type Command, InvalidArgumentError, Option } from "commander";
import { CONFIG_FORMATS, CREDENTIAL_MODES, TARGETS } from "./choices.ts";
import { HAS_URL_SCHEME } from "./url-scheme.ts";

/** Flag groups that several commands share; cli.ts composes them per command. */

export const collect = (value: string, previous: string[] = []) => [...previous, value];
/** A numeric flag: anything but a finite number is refused by commander, naming the flag. */
export const toNumber = (value: string): number => {
  const number = value.trim() === "" ? Number.NaN : Number(value);
  if (!Number.isFinite(number)) throw new InvalidArgumentError("expected a number");
  return number;
};

export function addBuildOptions(command: Command): Command {
  return command
    .option("--policies <dir>", "policy directory that becomes the bundle (default: policies)")
    .option("--out <dir>", "output directory (default: dist)")
    .option("--revision <id>", "bundle revision (default: full SHA of HEAD)")
    .option("--allow-dirty", "build with uncommitted changes as <sha>-dirty")
    .option("-O, --optimize <level>", "opa build optimization level 0–2", toNumber)
    .addOption(new Option("--target <target>", "bundle target").choices(TARGETS))
    .option("-e, --entrypoint <path>", "entrypoint such as authz/allow (repeatable; wasm needs one)", collect)
    .option("--signing-key <file>", "PEM private key (or HMAC secret) to sign the bundle")
    .option("--signing-alg <alg>", "signing algorithm (default: RS256)")
    .option("--claims-file <file>", "JSON file of extra claims for the signature")
    .option("--v0-compatible", "policies written before OPA 1.0")
    .option("--ignore <pattern>", "file or directory names to leave out (repeatable)", collect);
}

export function addTestOptions(command: Command): Command {
  return command
    .option("--coverage-threshold <pct>", "fail when coverage is below this percentage", toNumber)
    .option("--run <regex>", "only tests whose name matches");
}

export function addStoreOptions(command: Command): Command {
  return command
    .option("--bucket <name>", "S3 bucket")
    .option("--prefix <prefix>", "key prefix; objects are <prefix>/<rev>.tar.gz")
    .option("--region <region>", "AWS region (default: $AWS_REGION)")
    .option("--endpoint <url>", "S3-compatible endpoint (MinIO, R2, …); implies path-style")
    .option("--force-path-style", "path-style S3 URLs")
    .option("--profile <name>", "AWS profile")
    .option("--to <dir>", "publish to a local directory laid out like the bucket instead of S3")
    .option("--store <url>", "the store outright: oci://<registry>/<repository> or s3://<bucket>[/<prefix>]")
    .option("--registry <registry/repository>", "OCI registry repository; each revision is the tag <sha>")
    .option(
      "--insecure-registry <host>",
      "talk plain HTTP to this registry host (loopback registries always are; repeatable)",
      collect,
    );
}

export function addConfigOptions(command: Command): Command {
  // release also has build's flags; --signing-alg is one flag for both.
  if (!command.options.some((option) => option.long === "--signing-alg")) {
    command.option("--signing-alg <alg>", "algorithm of the bundle signature (default: RS256)");
  }
  return command
    .addOption(new Option("--format <format>", "config format (default: yaml)").choices(CONFIG_FORMATS))
    .option("-o, --output <file>", "write the config to a file instead of stdout")
    .option("--bundle-name <name>", "bundles.<name> in the config (default: authz)")
    .option("--service-url <url>", "plain HTTP(S) bundle server instead of S3 (with --to)")
    .addOption(
      new Option("--credentials <mode>", "how OPA signs S3 requests (default: environment)").choices(
        CREDENTIAL_MODES,
      ),
    )
    .option("--role-arn <arn>", "IAM role ARN for web-identity / assume-role")
    .option("--iam-role <name>", "IAM role name for metadata credentials")
    .option("--polling-min <seconds>", "bundle polling min delay (default: 60)", toNumber)
    .option("--polling-max <seconds>", "bundle polling max delay (default: 120)", toNumber)
    .option("--persist", "let OPA persist the bundle to disk")
    .addOption(new Option("--decision-logs <sink>", "decision logs").choices(["console"]))
    .addOption(new Option("--status <sink>", "status reports").choices(["console"]))
    .option("--verification-key <pem>", "public key OPA verifies the bundle signature with")
    .option(
      "--verification-key-env <name>",
      "with an HS* algorithm: the variable OPA reads the shared secret from (default: OPA_VERIFICATION_KEY)",
    )
    .option("--key-id <id>", "name of the verification key")
    .option("--registry-token-path <file>", "OCI: the file OPA reads its registry token from")
    .option("--registry-token-env <name>", "OCI: the variable OPA reads its registry token from")
    .option("--registry-token-scheme <scheme>", "OCI: scheme of that token (default: Bearer; ECR: Basic)");
}

/**
 * --no-fmt and --no-strict. The positive forms are declared first, hidden, so that commander leaves each
 * undefined unless given and policyship.yaml's `fmt:`/`strict:` still count.
 */
export function addCheckOptions(command: Command): Command {
  return command
    .addOption(new Option("--fmt").hideHelp())
    .option("--no-fmt", "skip opa fmt (setting fmt: false): release before reformatting")
    .addOption(new Option("--strict").hideHelp())
    .option("--no-strict", "opa check without --strict (setting strict: false)");
}

/** --instance <url> (repeatable): the OPA instances a command reads; the setting `instances`. */
export function addInstanceOptions(command: Command, description: string): Command {
  return command.option("--instance <url>", `${description} (repeatable)`, collect);
}

/** Printed once, whichever --opa URLs were given; it never repeats one (a URL may carry a password). */
export const OPA_URL_DEPRECATION =
  "policyship: --opa <url> is deprecated for instances — use --instance <url>";

/**
 * status and prune named OPA instances with --opa <url> before --instance existed, and still take them this
 * version: each --opa that is a URL becomes an --instance (after those given as --instance), with one notice on
 * stderr, so that stdout and --json stay the result. What is left of --opa is the opa binary, as on every command.
 * Call it before createContext.
 */
export function takeDeprecatedOpaUrls(command: Command, notice: (line: string) => void): void {
  let owner: Command | null = command;
  while (owner && !owner.options.some((option) => option.long === "--opa")) owner = owner.parent;
  if (!owner) return;
  const given = owner.getOptionValue("opa") as string | string[] | undefined;
  const values = given === undefined ? [] : Array.isArray(given) ? given : [given];
  const urls = values.filter((value) => HAS_URL_SCHEME.test(value));
  if (urls.length === 0) return;
  notice(OPA_URL_DEPRECATION);
  const binaries = values.filter((value) => !HAS_URL_SCHEME.test(value));
  owner.setOptionValueWithSource(
    "opa",
    binaries.length > 0 ? binaries : undefined,
    owner.getOptionValueSource("opa") ?? "cli",
  );
  const instances = (command.getOptionValue("instance") as string[] | undefined) ?? [];
  command.setOptionValueWithSource("instance", [...instances, ...urls], "cli");
}
