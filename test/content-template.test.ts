/**
 * The stream mapper's content template (providers/openai/content-template.ts):
 * chunks of one stream that differ only in their content are read without
 * JSON.parse, and every stream maps to the payloads the full mapping gives —
 * escapes, quotes and non-ASCII content, chunks that only look like the
 * template (extra fields in the delta, a finish, malformed JSON) and a
 * content that also appears elsewhere in the chunk.
 */
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { describe, it } from "node:test";
import { SpillwayError } from "../src/engine/errors.js";
import { Code } from "../src/engine/code.js";
import type { ChunkPayload } from "../src/engine/payload.js";
import { ContentTemplate } from "../src/providers/openai/content-template.js";
import { openAiStreamPayloads } from "../src/providers/openai/chat-stream.js";

const head = (id = "chatcmpl-1") => `{"id":"${id}","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":`;
const content = (text: string, id?: string) => `${head(id)}{"content":${JSON.stringify(text)}},"logprobs":null,"finish_reason":null}]}`;

async function map(events: string[]): Promise<ChunkPayload[]> {
  const body = new PassThrough();
  const it = openAiStreamPayloads(body, "p", new AbortController().signal, false);
  body.end(events.map((e) => `data: ${e}\n\n`).join(""));
  const out: ChunkPayload[] = [];
  for await (const p of it) out.push(p);
  return out;
}

const texts = (ps: ChunkPayload[]): string[] => ps.flatMap((p) => (p.$case === "text" ? [p.value.text] : []));
const ending = [`${head()}{},"logprobs":null,"finish_reason":"stop"}]}`, `{"id":"chatcmpl-1","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}`, "[DONE]"];

describe("content template", () => {
  it("learns the bytes around the content and reads other content from them, escapes included", () => {
    const t = ContentTemplate.learn(content("hello"), "hello");
    assert.ok(t);
    for (const s of ["x", "", 'a "quoted" word', "line\nbreak", "tab\there", "é ü 你好 🎉", "back\\slash", "\u0001"]) {
      assert.equal(t.match(content(s)), s, JSON.stringify(s));
    }
    assert.equal(t.match(content("x", "chatcmpl-2")), undefined, "other bytes around: a miss");
    assert.equal(t.match(`${head()}{"content":"a","reasoning_content":"r"},"logprobs":null,"finish_reason":null}]}`), undefined);
    assert.equal(t.match(`${head()}{"content":"a\u0001"},"logprobs":null,"finish_reason":null}]}`), undefined, "a raw control character is not JSON");
  });

  it("refuses to learn when the content appears twice", () => {
    assert.equal(ContentTemplate.learn(content("chatcmpl-1", "chatcmpl-1"), "chatcmpl-1"), undefined);
    assert.ok(ContentTemplate.learn(content("1"), "1"), "a number elsewhere is not the string literal");
  });

  it("a stream maps to the same payloads as the full mapping", async () => {
    const words = ["Hel", "lo", ' "you"', "\n", "é🎉", "", "\\", "end"];
    const ps = await map([`${head()}{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`, ...words.map((w) => content(w)), ...ending]);
    assert.deepEqual(texts(ps), words.filter(Boolean));
    assert.deepEqual(ps.map((p) => p.$case).slice(-2), ["finish", "usage"]);
  });

  it("chunks that only look like the template take the full path", async () => {
    const ps = await map([
      content("a"),
      content("b"),
      `${head()}{"content":"c","reasoning_content":"r"},"logprobs":null,"finish_reason":null}]}`,
      `${head()}{"content":"d"},"logprobs":null,"finish_reason":"length"}]}`,
      content("e", "chatcmpl-9"),
      "[DONE]",
    ]);
    assert.deepEqual(
      ps.map((p) => (p.$case === "text" || p.$case === "reasoning" ? `${p.$case}:${p.value.text}` : p.$case)),
      ["text:a", "text:b", "reasoning:r", "text:c", "text:d", "finish", "text:e"],
    );
  });

  it("a malformed chunk matching the template's ends still fails the stream", async () => {
    await assert.rejects(
      map([content("a"), content("b"), `${head()}{"content":"x\u0001y"},"logprobs":null,"finish_reason":null}]}`, ...ending]),
      (e: unknown) => e instanceof SpillwayError && e.code === Code.DataLoss,
    );
  });
});
