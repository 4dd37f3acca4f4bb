/**
 * gRPC `Attach(stream_id, after_seq)`: a stored stream made over HTTP (a
 * background Response) is replayed after a seq and followed live over gRPC,
 * by the key that made it only.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Metadata, status } from "@grpc/grpc-js";
import OpenAI from "openai";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import type { Chunk } from "../src/gen/spillway/v1/chunk.js";
import { generateRequest, readAll, spillwayClient } from "./helpers/grpc.js";

const KEYS = [
  { key: "sk-grpc-attach-a1", name: "a" },
  { key: "sk-grpc-attach-b2", name: "b" },
];
const TEXT = Array.from({ length: 20 }, (_, i) => `g${i}`).join(" ");

const md = (key: string): Metadata => {
  const m = new Metadata();
  m.set("authorization", `Bearer ${key}`);
  return m;
};

describe("gRPC Attach", () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ auth: { keys: KEYS }, providers: { local: { type: "local", tokenDelayMs: 15 } } });
  });
  after(() => gw.close());

  it("replays after after_seq, follows live to the end; another key or a bad id is refused", async () => {
    const openai = new OpenAI({ apiKey: KEYS[0]!.key, baseURL: gw.baseUrl, maxRetries: 0 });
    const created = await openai.responses.create({ model: "local/echo", input: TEXT, background: true });
    const client = spillwayClient(gw.grpcAddress!);
    try {
      const r = await readAll(client.attach({ streamId: created.id, afterSeq: 2 }, md(KEYS[0]!.key)));
      assert.equal(r.error, undefined);
      const seqs = r.chunks.map((c) => c.seq);
      assert.equal(seqs[0], 3, "starts after after_seq");
      assert.deepEqual(seqs, seqs.map((_, i) => i + 3), "no gap, no duplicate");
      assert.equal(r.chunks.at(-1)!.payload?.$case, "finish");
      const all = await readAll(client.attach({ streamId: created.id.slice(5) }, md(KEYS[0]!.key)));
      const text = all.chunks.map((c) => (c.payload?.$case === "text" ? c.payload.value.text : "")).join("");
      assert.equal(text, (await openai.responses.retrieve(created.id)).output_text);
      const other = await readAll(client.attach({ streamId: created.id }, md(KEYS[1]!.key)));
      assert.equal(other.error?.code, status.NOT_FOUND);
      const bad = await readAll(client.attach({ streamId: "x" }, md(KEYS[0]!.key)));
      assert.equal(bad.error?.code, status.INVALID_ARGUMENT);
    } finally {
      client.close();
    }
  });

  it("Generate with x-spillway-resumable: a call lost mid-stream is resumed with Attach, exactly the rest", async () => {
    const client = spillwayClient(gw.grpcAddress!);
    try {
      const m = md(KEYS[0]!.key);
      m.set("x-spillway-resumable", "true");
      const call = client.generate(generateRequest("local/echo", TEXT), m);
      const got: Chunk[] = [];
      await new Promise<void>((resolve) => {
        call.on("data", (c: Chunk) => {
          got.push(c);
          if (got.length === 3) {
            call.cancel(); // the client loses the call
            resolve();
          }
        });
      });
      call.on("error", () => undefined);
      const last = got.at(-1)!;
      const rest = await readAll(client.attach({ streamId: last.streamId, afterSeq: last.seq }, md(KEYS[0]!.key)));
      assert.equal(rest.error, undefined);
      const all = [...got, ...rest.chunks];
      assert.deepEqual(all.map((c) => c.seq), all.map((_, i) => i), "no gap, no duplicate");
      const text = all.map((c) => (c.payload?.$case === "text" ? c.payload.value.text : "")).join("");
      assert.equal(text.replace(/\s+/g, " ").trim(), TEXT);
      assert.equal(all.at(-1)!.payload?.$case, "finish");
    } finally {
      client.close();
    }
  });
});
