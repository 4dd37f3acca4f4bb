/** Reads SSE responses in tests with eventsource-parser (a maintained parser, not ours). */
import { createParser, type EventSourceMessage } from "eventsource-parser";

/** Parses a whole SSE text into its events. */
export function parseSse(text: string): EventSourceMessage[] {
  const out: EventSourceMessage[] = [];
  const p = createParser({ onEvent: (e) => out.push(e) });
  p.feed(text);
  return out;
}

/** POSTs JSON and returns the raw response. */
export function postJson(url: string, body: unknown, init: RequestInit = {}): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...(init.headers as Record<string, string>) },
    body: typeof body === "string" ? body : JSON.stringify(body),
    ...(init.signal ? { signal: init.signal } : {}),
  });
}

/** Reads an SSE response as it arrives, calling `onEvent` per event; resolves at the end. */
export async function readSse(res: Response, onEvent: (e: EventSourceMessage) => void | "stop"): Promise<void> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let stop = false;
  const p = createParser({
    onEvent: (e) => {
      if (onEvent(e) === "stop") stop = true;
    },
  });
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    p.feed(decoder.decode(value, { stream: true }));
    if (stop) {
      await reader.cancel();
      return;
    }
  }
}
