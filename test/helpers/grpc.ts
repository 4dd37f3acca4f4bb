/**
 * gRPC test helpers: the generated Spillway client, request builders with
 * every field set (ts-proto's encoders need them), stream collection that
 * keeps both the chunks and the final status, and health / reflection
 * clients built from the packages' own .proto files.
 */
import { dirname, join } from "node:path";
import { createRequire } from "node:module";
import {
  credentials,
  loadPackageDefinition,
  makeGenericClientConstructor,
  type Client,
  type ClientReadableStream,
  type Metadata,
  type ServiceError,
} from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { service as healthService } from "grpc-health-check";
import { AudioEncoding, type Chunk } from "../../src/gen/spillway/v1/chunk.js";
import type { GenerateRequest, Message, SynthesizeRequest, TranscribeConfig } from "../../src/gen/spillway/v1/request.js";
import { SpillwayServiceClient } from "../../src/gen/spillway/v1/service.js";
import { makeGenerateRequest, makeMessage } from "../../src/engine/requests.js";

/** A generated Spillway client on `address`, insecure. Close it with `client.close()`. */
export function spillwayClient(address: string, options: Record<string, unknown> = {}): SpillwayServiceClient {
  return new SpillwayServiceClient(address, credentials.createInsecure(), options);
}

/** A chat message with every field set. */
export function message(role: string, content: string): Message {
  return makeMessage({ role, content });
}

/** A GenerateRequest with every field set; `messages` defaults to one user message. */
export function generateRequest(model: string, content = "hello there", extra: Partial<GenerateRequest> = {}): GenerateRequest {
  return makeGenerateRequest({ model, messages: [message("user", content)], parallelToolCalls: undefined, extra: undefined, ...extra });
}

/** A SynthesizeRequest with every field set. */
export function synthesizeRequest(model: string, input: string, extra: Partial<SynthesizeRequest> = {}): SynthesizeRequest {
  return {
    model,
    input,
    voice: "",
    encoding: AudioEncoding.AUDIO_ENCODING_PCM_S16LE,
    speed: 0,
    sampleRate: 0,
    instructions: "",
    ...extra,
  };
}

/** A TranscribeConfig with every field set (16-bit PCM). */
export function transcribeConfig(model: string, sampleRate: number, extra: Partial<TranscribeConfig> = {}): TranscribeConfig {
  return {
    model,
    language: "",
    prompt: "",
    encoding: AudioEncoding.AUDIO_ENCODING_PCM_S16LE,
    sampleRate,
    filename: "",
    mimeType: "",
    live: false,
    ...extra,
  };
}

/** What a streaming call produced: every chunk, and its error when it did not end OK. */
export interface StreamResult {
  readonly chunks: Chunk[];
  readonly error: ServiceError | undefined;
}

/** Reads a response stream to its end (OK or not). */
export function readAll(stream: ClientReadableStream<Chunk>): Promise<StreamResult> {
  return new Promise((resolve) => {
    const chunks: Chunk[] = [];
    stream.on("data", (c: Chunk) => chunks.push(c));
    stream.on("error", (error: ServiceError) => resolve({ chunks, error }));
    stream.on("end", () => resolve({ chunks, error: undefined }));
  });
}

/** The trailing metadata value `key` of a failed call, as text. */
export function trailer(error: ServiceError, key: string): string | undefined {
  const v = (error.metadata as Metadata | undefined)?.get(key)[0];
  return v === undefined ? undefined : String(v);
}

type HealthClient = Client & {
  check(req: { service: string }, cb: (err: ServiceError | null, res: { status: string }) => void): void;
};

/** Runs `grpc.health.v1.Health/Check` for `service` (`""`: the whole server); resolves with the status name. */
export function healthCheck(address: string, service = ""): Promise<string> {
  const Ctor = makeGenericClientConstructor(healthService, "grpc.health.v1.Health");
  const client = new Ctor(address, credentials.createInsecure()) as unknown as HealthClient;
  return new Promise<string>((resolve, reject) => {
    client.check({ service }, (err, res) => (err ? reject(err) : resolve(res.status)));
  }).finally(() => client.close());
}

const require = createRequire(import.meta.url);

/** A `grpc.reflection.v1.ServerReflection` client made from @grpc/reflection's own .proto. */
function reflectionClient(address: string): Client & { ServerReflectionInfo(): any } {
  const protoDir = join(dirname(require.resolve("@grpc/reflection/package.json")), "build", "proto");
  const pkg = loadPackageDefinition(loadSync("grpc/reflection/v1/reflection.proto", { includeDirs: [protoDir] })) as any;
  return new pkg.grpc.reflection.v1.ServerReflection(address, credentials.createInsecure());
}

/** Asks the server over reflection: one request, its one response (proto-loader's camelCase objects). */
export function reflect(address: string, request: Record<string, unknown>): Promise<any> {
  const client = reflectionClient(address);
  return new Promise<any>((resolve, reject) => {
    const call = client.ServerReflectionInfo();
    call.on("data", (r: any) => {
      resolve(r);
      call.end();
    });
    call.on("error", reject);
    call.write(request);
  }).finally(() => client.close());
}
