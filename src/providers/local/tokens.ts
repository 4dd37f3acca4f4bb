const TOKEN = /\s*\S+/g;

/**
 * Splits text into the local engines' tokens: each word with the white space
 * before it, so joining the tokens gives back the text (trailing white space
 * aside). A deliberate stand-in for a real tokenizer: simple and deterministic.
 */
export function splitTokens(text: string): string[] {
  return text.match(TOKEN) ?? [];
}

/** Counts tokens the way {@link splitTokens} splits them. */
export function countTokens(text: string): number {
  let n = 0;
  TOKEN.lastIndex = 0;
  while (TOKEN.exec(text) !== null) n++;
  return n;
}
