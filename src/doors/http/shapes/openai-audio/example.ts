import { wavHeader } from "../../../../audio/wav.js";
import type { RouteExample } from "../../route.js";

const BOUNDARY = "spillway-example-boundary";

/**
 * A minimal valid transcription upload for `local/stt`: 0.1 s of silence as
 * a WAV `file` (used by the policy tests that run over every route).
 */
export function exampleForm(): RouteExample {
  const model = "local/stt";
  const pcm = Buffer.alloc(3200);
  const wav = Buffer.concat([wavHeader(16000, 1, pcm.length), pcm]);
  const head = `--${BOUNDARY}\r\ncontent-disposition: form-data; name="model"\r\n\r\n${model}\r\n--${BOUNDARY}\r\ncontent-disposition: form-data; name="file"; filename="a.wav"\r\ncontent-type: audio/wav\r\n\r\n`;
  const body = Buffer.concat([Buffer.from(head), wav, Buffer.from(`\r\n--${BOUNDARY}--\r\n`)]);
  return { model, contentType: `multipart/form-data; boundary=${BOUNDARY}`, body };
}
