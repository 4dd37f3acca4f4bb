/**
 * gRPC server reflection as a stock reflection client uses it: one
 * reflection stream (v1 and v1alpha, through @grpc/reflection's own .proto),
 * every returned FileDescriptorProto decoded with @bufbuild/protobuf and built
 * into a registry whose imports are resolved only from what reflection
 * returned (file_by_filename for each missing dependency, as grpcurl and
 * grpcio-reflection do), then Generate, ListModels and a health check called
 * through clients made only from those descriptors.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  create,
  createFileRegistry,
  fromBinary,
  toBinary,
  type DescMessage,
  type DescService,
  type FileRegistry,
  type Message,
} from "@bufbuild/protobuf";
import { nestedTypes } from "@bufbuild/protobuf/reflect";
import { BinaryReader } from "@bufbuild/protobuf/wire";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import {
  credentials,
  loadPackageDefinition,
  makeGenericClientConstructor,
  type Client,
  type ClientDuplexStream,
  type ServiceDefinition,
} from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { SPILLWAY_SERVICE_NAME } from "../src/doors/grpc/grpc-door.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";

const require = createRequire(import.meta.url);
const REFLECTION_PROTOS = join(dirname(require.resolve("@grpc/reflection/package.json")), "build", "proto");

/** One reflection stream; `ask` sends a request and resolves with its response (responses come in order). */
class ReflectionSession {
  private readonly client: Client;
  private readonly call: ClientDuplexStream<object, any>;
  private readonly waiting: Array<{ resolve: (r: any) => void; reject: (e: Error) => void }> = [];

  constructor(address: string, version: "v1" | "v1alpha") {
    const def = loadSync(`grpc/reflection/${version}/reflection.proto`, { includeDirs: [REFLECTION_PROTOS], keepCase: true, oneofs: true, arrays: true });
    const pkg = loadPackageDefinition(def) as any;
    this.client = new pkg.grpc.reflection[version].ServerReflection(address, credentials.createInsecure());
    this.call = (this.client as any).ServerReflectionInfo();
    this.call.on("data", (r: any) => this.waiting.shift()?.resolve(r));
    this.call.on("error", (e: Error) => {
      for (const w of this.waiting.splice(0)) w.reject(e);
    });
  }

  ask(request: Record<string, unknown>): Promise<any> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.call.write({ host: "", ...request });
    });
  }

  /** The files of a file_descriptor_response, decoded; fails the test on an error response. */
  async files(request: Record<string, unknown>): Promise<FileDescriptorProto[]> {
    const r = await this.ask(request);
    assert.equal(r.message_response, "file_descriptor_response", `${JSON.stringify(request)} → ${JSON.stringify(r.error_response)}`);
    return r.file_descriptor_response.file_descriptor_proto.map((b: Buffer) => fromBinary(FileDescriptorProtoSchema, b));
  }

  /**
   * What a reflection client does: takes the file the first request
   * returns, fetches every import it was not given with file_by_filename,
   * and builds the registry from those files alone.
   */
  async registry(request: Record<string, unknown>): Promise<FileRegistry> {
    const known = new Map<string, FileDescriptorProto>();
    const [first, ...rest] = await this.files(request);
    assert.ok(first);
    for (const f of [first, ...rest]) known.set(f.name, f);
    const pending = [first];
    for (let f = pending.pop(); f; f = pending.pop()) {
      for (const dep of f.dependency) {
        if (known.has(dep)) continue;
        const [got] = await this.files({ file_by_filename: dep });
        assert.equal(got?.name, dep);
        known.set(dep, got);
        pending.push(got);
      }
    }
    // Imports first (createFileRegistry's resolver form mis-orders diamond imports, so sort here).
    const sorted: FileDescriptorProto[] = [];
    const visit = (f: FileDescriptorProto): void => {
      if (sorted.includes(f)) return;
      for (const dep of f.dependency) visit(known.get(dep)!);
      sorted.push(f);
    };
    visit(first);
    return createFileRegistry(create(FileDescriptorSetSchema, { file: sorted }));
  }

  close(): void {
    this.call.end();
    this.client.close();
  }
}

/** The encoded files of the committed descriptor set, by name (a FileDescriptorSet is one repeated field 1). */
function builtFiles(): Map<string, Uint8Array> {
  const reader = new BinaryReader(readFileSync(new URL("../src/gen/descriptor-set.binpb", import.meta.url)));
  const files = new Map<string, Uint8Array>();
  while (reader.pos < reader.len) {
    const [field] = reader.tag();
    assert.equal(field, 1);
    const bytes = reader.bytes();
    files.set(fromBinary(FileDescriptorProtoSchema, bytes).name, bytes);
  }
  return files;
}

/** A grpc-js service definition made only from a reflected service descriptor. */
function serviceDefinition(service: DescService): ServiceDefinition {
  const def: Record<string, unknown> = {};
  for (const m of service.methods) {
    const codec = (desc: DescMessage) => ({
      serialize: (msg: Message) => Buffer.from(toBinary(desc, msg)),
      deserialize: (b: Buffer) => fromBinary(desc, b),
    });
    const [req, res] = [codec(m.input), codec(m.output)];
    def[m.name] = {
      path: `/${service.typeName}/${m.name}`,
      requestStream: m.methodKind === "client_streaming" || m.methodKind === "bidi_streaming",
      responseStream: m.methodKind === "server_streaming" || m.methodKind === "bidi_streaming",
      requestSerialize: req.serialize,
      requestDeserialize: req.deserialize,
      responseSerialize: res.serialize,
      responseDeserialize: res.deserialize,
    };
  }
  return def as ServiceDefinition;
}

/** A generic client for `service` on `address`; its methods are named as in the .proto. */
function reflectedClient(service: DescService, address: string): any {
  const Ctor = makeGenericClientConstructor(serviceDefinition(service), service.name);
  return new Ctor(address, credentials.createInsecure());
}

describe("gRPC server reflection serves the real descriptors", () => {
  let gw: TestGateway;
  let session: ReflectionSession;
  before(async () => {
    gw = await startTestGateway();
    session = new ReflectionSession(gw.grpcAddress!, "v1");
  });
  after(async () => {
    session.close();
    await gw.close();
  });

  it("lists the Spillway, health and reflection services", async () => {
    const r = await session.ask({ list_services: "*" });
    const names: string[] = r.list_services_response.service.map((s: { name: string }) => s.name);
    for (const name of [SPILLWAY_SERVICE_NAME, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]) {
      assert.ok(names.includes(name), `list_services lacks ${name}: ${names.join(", ")}`);
    }
  });

  it("builds every listed service, with every message resolved, from reflection alone", async () => {
    const r = await session.ask({ list_services: "*" });
    for (const { name } of r.list_services_response.service as Array<{ name: string }>) {
      const registry = await session.registry({ file_containing_symbol: name });
      const service = registry.getService(name);
      assert.ok(service, `registry from reflection lacks ${name}`);
      for (const m of service.methods) {
        assert.ok(registry.getMessage(m.input.typeName), `${name}.${m.name} input ${m.input.typeName}`);
        assert.ok(registry.getMessage(m.output.typeName), `${name}.${m.name} output ${m.output.typeName}`);
      }
      for (const file of registry.files) {
        for (const type of nestedTypes(file)) {
          if (type.kind !== "message") continue;
          for (const field of type.fields) {
            const ref = field.message ?? field.enum;
            if (field.fieldKind === "message" || field.fieldKind === "enum") {
              assert.ok(ref && registry.get(ref.typeName), `${type.typeName}.${field.name} → unresolved type`);
            }
            // Type names are fully qualified (".google.protobuf.Struct"), as protoc writes them.
            if (field.proto.typeName) assert.ok(field.proto.typeName.startsWith("."), `${type.typeName}.${field.name}: ${field.proto.typeName}`);
          }
        }
      }
    }
  });

  it("file_by_filename serves spillway/v1/request.proto under its real name, with its imports", async () => {
    const protos = await session.files({ file_by_filename: "spillway/v1/request.proto" });
    assert.equal(protos[0]!.name, "spillway/v1/request.proto");
    assert.deepEqual([...protos[0]!.dependency].sort(), ["google/protobuf/struct.proto", "spillway/v1/chunk.proto"]);
    assert.deepEqual(protos.map((p) => p.name).sort(), ["google/protobuf/struct.proto", "spillway/v1/chunk.proto", "spillway/v1/request.proto"]);
    // Byte for byte the file buf compiled (src/gen/descriptor-set.binpb).
    const raw = await session.ask({ file_by_filename: "spillway/v1/request.proto" });
    const built = builtFiles().get("spillway/v1/request.proto");
    assert.ok(built && Buffer.from(built).equals(raw.file_descriptor_response.file_descriptor_proto[0]));
    const registry = await session.registry({ file_by_filename: "spillway/v1/request.proto" });
    const request = registry.getMessage("spillway.v1.GenerateRequest");
    assert.ok(request);
    // The .proto's own field names (proto-loader without keepCase turned them into camelCase).
    for (const name of ["max_tokens", "top_p", "tool_choice", "parallel_tool_calls", "upstream_headers"]) {
      assert.ok(request.fields.some((f) => f.name === name), `GenerateRequest has no field ${name}`);
    }
    // Map fields keep their real entry types; Struct's type names resolve to google.protobuf.
    const metadata = request.fields.find((f) => f.name === "metadata");
    assert.equal(metadata?.fieldKind, "map");
    assert.equal(metadata.proto.typeName, ".spillway.v1.GenerateRequest.MetadataEntry");
    assert.ok(request.proto.nestedType.some((n) => n.name === "MetadataEntry" && n.options?.mapEntry));
    const struct = registry.getMessage("google.protobuf.Struct")!;
    assert.ok(struct.proto.nestedType.some((n) => n.name === "FieldsEntry" && n.options?.mapEntry));
    assert.equal(struct.fields.find((f) => f.name === "fields")?.fieldKind, "map");
    assert.equal(registry.getFile("google/protobuf/struct.proto")?.proto.package, "google.protobuf");
  });

  it("file_by_filename serves the health proto, which describes the health service", async () => {
    const [health] = await session.files({ file_by_filename: "grpc/health/v1/health.proto" });
    assert.equal(health?.name, "grpc/health/v1/health.proto");
    assert.equal(health.package, "grpc.health.v1");
    const registry = await session.registry({ file_containing_symbol: "grpc.health.v1.Health" });
    assert.equal(registry.getService("grpc.health.v1.Health")?.file.proto.name, "grpc/health/v1/health.proto");
    const list = registry.getMessage("grpc.health.v1.HealthListResponse")!;
    assert.ok(list.proto.nestedType.some((n) => n.name === "StatusesEntry" && n.options?.mapEntry));
    const status = registry.getMessage("grpc.health.v1.HealthCheckResponse")!;
    const client = reflectedClient(registry.getService("grpc.health.v1.Health")!, gw.grpcAddress!);
    try {
      const res: any = await new Promise((resolve, reject) =>
        client.Check(create(registry.getMessage("grpc.health.v1.HealthCheckRequest")!, { service: "" }), (err: Error | null, r: unknown) =>
          err ? reject(err) : resolve(r),
        ),
      );
      assert.equal(res.$typeName, status.typeName);
      assert.equal(status.field["status"]!.enum!.value[res.status]!.name, "SERVING");
    } finally {
      client.close();
    }
  });

  it("calls Generate (local/echo) and ListModels through a client built only from reflected descriptors", async () => {
    const registry = await session.registry({ file_containing_symbol: SPILLWAY_SERVICE_NAME });
    const service = registry.getService(SPILLWAY_SERVICE_NAME)!;
    const client = reflectedClient(service, gw.grpcAddress!);
    try {
      const request = create(registry.getMessage("spillway.v1.GenerateRequest")!, {
        model: "local/echo",
        messages: [{ role: "user", content: "built from reflection" }],
      });
      const chunks = await new Promise<any[]>((resolve, reject) => {
        const got: any[] = [];
        const stream = client.Generate(request);
        stream.on("data", (c: any) => got.push(c));
        stream.on("error", reject);
        stream.on("end", () => resolve(got));
      });
      const cases = chunks.map((c) => c.payload.case);
      assert.equal(cases.at(-1), "finish");
      assert.ok(cases.includes("usage"), `chunks: ${cases.join(", ")}`);
      const text = chunks.filter((c) => c.payload.case === "text").map((c) => c.payload.value.text).join("");
      assert.equal(text, "built from reflection");
      const finishReason = registry.getEnum("spillway.v1.Finish.Reason")!;
      assert.equal(finishReason.value[chunks.at(-1).payload.value.reason]!.name, "REASON_STOP");

      const models: any = await new Promise((resolve, reject) =>
        client.ListModels(create(registry.getMessage("spillway.v1.ListModelsRequest")!), (err: Error | null, r: unknown) =>
          err ? reject(err) : resolve(r),
        ),
      );
      assert.ok(models.models.some((m: any) => m.id === "local/echo" && m.available));
    } finally {
      client.close();
    }
  });

  it("answers unknown names with NOT_FOUND, an empty request with INVALID_ARGUMENT, and keeps the stream open", async () => {
    for (const request of [
      { file_by_filename: "spillway_v1.proto" },
      { file_containing_symbol: "spillway.v1.Nope" },
      { file_containing_extension: { containing_type: "spillway.v1.GenerateRequest", extension_number: 100 } },
      { all_extension_numbers_of_type: "spillway.v1.Nope" },
    ]) {
      const r = await session.ask(request);
      assert.equal(r.message_response, "error_response", JSON.stringify(request));
      assert.equal(r.error_response.error_code, 5, JSON.stringify(request));
      assert.match(r.error_response.error_message, /spillway/);
    }
    const empty = await session.ask({});
    assert.equal(empty.error_response.error_code, 3);
    assert.match(empty.error_response.error_message, /message_request/);
    const numbers = await session.ask({ all_extension_numbers_of_type: "spillway.v1.GenerateRequest" });
    assert.equal(numbers.all_extension_numbers_response.base_type_name, "spillway.v1.GenerateRequest");
    assert.deepEqual(numbers.all_extension_numbers_response.extension_number, []);
    // Methods and fields are symbols too (grpcurl describes them).
    const [file] = await session.files({ file_containing_symbol: `${SPILLWAY_SERVICE_NAME}.Generate` });
    assert.equal(file?.name, "spillway/v1/service.proto");
    const [fieldFile] = await session.files({ file_containing_symbol: "spillway.v1.GenerateRequest.max_tokens" });
    assert.equal(fieldFile?.name, "spillway/v1/request.proto");
  });

  it("serves v1alpha with the same descriptors", async () => {
    const alpha = new ReflectionSession(gw.grpcAddress!, "v1alpha");
    try {
      const registry = await alpha.registry({ file_containing_symbol: SPILLWAY_SERVICE_NAME });
      assert.ok(registry.getService(SPILLWAY_SERVICE_NAME));
      assert.equal(registry.getFile("spillway/v1/request.proto")?.proto.name, "spillway/v1/request.proto");
    } finally {
      alpha.close();
    }
  });
});
