/**
 * The headers the official SDKs built by Stainless (openai, @anthropic-ai/sdk)
 * send from a browser, which CORS must allow by name (`access-control-allow-headers`
 * takes no wildcard for them).
 */
export const STAINLESS_HEADERS: readonly string[] = [
  "x-stainless-arch",
  "x-stainless-lang",
  "x-stainless-os",
  "x-stainless-package-version",
  "x-stainless-retry-count",
  "x-stainless-runtime",
  "x-stainless-runtime-version",
  "x-stainless-timeout",
  "x-stainless-helper-method",
  "x-stainless-stream-helper",
];
