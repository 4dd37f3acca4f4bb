/** Settings every HTTP upstream provider (OpenAI-compatible, Anthropic) shares. */
export interface UpstreamProviderOptions {
  /** Prefix of its model ids (`openai`, `anthropic`, `groq`, …). */
  readonly name: string;
  /** Where the upstream's API lives (each provider says whether `/v1` is included). */
  readonly baseUrl: string;
  /** One key; omitted for servers that need none. */
  readonly apiKey?: string | undefined;
  /** Several keys, picked by weight; a key the upstream refuses rests a while. */
  readonly apiKeys?: ReadonlyArray<{ key: string; name?: string | undefined; weight?: number | undefined }> | undefined;
  /** Extra headers for every upstream request. */
  readonly headers?: Readonly<Record<string, string>> | undefined;
  /** Models to list in `/v1/models`; when absent the upstream's own list is fetched. */
  readonly models?: readonly string[] | undefined;
  /** Time to first chunk (ms); the engine's default when absent. */
  readonly timeoutMs?: number | undefined;
}
