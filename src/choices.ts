/** The fixed choices of settings, shared by the zod schema and commander's flags without loading zod. */
export const CREDENTIAL_MODES = [
  "environment",
  "metadata",
  "web-identity",
  "profile",
  "assume-role",
  "sso",
] as const;
export const TARGETS = ["rego", "wasm"] as const;
export const CONFIG_FORMATS = ["yaml", "json"] as const;
export const FAIL_ON = ["deny-to-allow", "allow-to-deny", "changed", "to-error"] as const;
