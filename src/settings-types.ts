/**
 * The settings as plain types, for the library entry: an app that imports "policyship" compiles against these
 * without zod installed. settings-schema.ts checks at compile time that they equal what its schema infers.
 */
import type { CONFIG_FORMATS, CREDENTIAL_MODES, FAIL_ON, TARGETS } from "./choices.ts";

type SigningAlgorithm =
  | "RS256"
  | "RS384"
  | "RS512"
  | "PS256"
  | "PS384"
  | "PS512"
  | "ES256"
  | "ES384"
  | "ES512"
  | "HS256"
  | "HS384"
  | "HS512";

/** Every setting as policyship.yaml, POLICYSHIP_* environment variables and flags give it: all optional. */
export interface SettingsInput {
  // build
  policies?: string;
  out?: string;
  revision?: string;
  allowDirty?: boolean;
  optimize?: number;
  target?: (typeof TARGETS)[number];
  entrypoints?: string[];
  signingKey?: string;
  signingAlg?: SigningAlgorithm;
  claimsFile?: string;
  v0Compatible?: boolean;
  ignore?: string[];
  // check
  fmt?: boolean;
  strict?: boolean;
  // test
  bundle?: string;
  coverageThreshold?: number;
  run?: string;
  // store
  bucket?: string;
  prefix?: string;
  region?: string;
  endpoint?: string;
  forcePathStyle?: boolean;
  profile?: string;
  to?: string;
  store?: string;
  registry?: string;
  insecureRegistry?: string[];
  registryTokenPath?: string;
  registryTokenEnv?: string;
  registryTokenScheme?: string;
  // OPA configuration
  bundleName?: string;
  serviceName?: string;
  serviceUrl?: string;
  credentials?: (typeof CREDENTIAL_MODES)[number];
  roleArn?: string;
  iamRole?: string;
  pollingMin?: number;
  pollingMax?: number;
  persist?: boolean;
  decisionLogs?: "console";
  status?: "console";
  verificationKey?: string;
  verificationKeyEnv?: string;
  keyId?: string;
  format?: (typeof CONFIG_FORMATS)[number];
  output?: string;
  // reading bundles
  bundleMaxEntries?: number;
  bundleMaxBytes?: number;
  bundleMaxFileBytes?: number;
  bundleMaxPathLength?: number;
  // tools
  opa?: string;
  opaEnv?: string[];
  limit?: number;
  // impact
  decisions?: string;
  base?: string;
  candidate?: string;
  candidateDir?: string;
  decisionPath?: string;
  failOn?: (typeof FAIL_ON)[number][];
  examples?: number;
  mask?: string[];
  showResults?: boolean;
  shadow?: boolean;
  markdown?: string;
  sample?: number;
  // status, prune and list
  instances?: string[];
  expect?: string;
  wait?: string;
  statusBundle?: string;
  keep?: number;
  olderThan?: string;
  protect?: string[];
  yes?: boolean;
  // diff
  patch?: boolean;
  exitCode?: boolean;
  // per-command switches
  verify?: boolean;
  dryRun?: boolean;
}

/** The merged settings a command runs with: every setting that has a default is always set. */
export interface Settings extends SettingsInput {
  policies: string;
  out: string;
  allowDirty: boolean;
  optimize: number;
  target: (typeof TARGETS)[number];
  entrypoints: string[];
  signingAlg: SigningAlgorithm;
  v0Compatible: boolean;
  fmt: boolean;
  strict: boolean;
  ignore: string[];
  prefix: string;
  forcePathStyle: boolean;
  insecureRegistry: string[];
  registryTokenScheme: string;
  bundleName: string;
  serviceName: string;
  credentials: (typeof CREDENTIAL_MODES)[number];
  pollingMin: number;
  pollingMax: number;
  persist: boolean;
  verificationKeyEnv: string;
  format: (typeof CONFIG_FORMATS)[number];
  opaEnv: string[];
  failOn: (typeof FAIL_ON)[number][];
  examples: number;
  mask: string[];
  showResults: boolean;
  shadow: boolean;
  patch: boolean;
  protect: string[];
  yes: boolean;
  exitCode: boolean;
  bundleMaxEntries: number;
  bundleMaxBytes: number;
  bundleMaxFileBytes: number;
  bundleMaxPathLength: number;
  limit: number;
  verify: boolean;
  dryRun: boolean;
}
