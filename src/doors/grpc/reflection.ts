import { existsSync } from "node:fs";
import { create, fromBinary, toBinary, type DescMessage, type Message } from "@bufbuild/protobuf";
import { status, type Server, type ServerDuplexStream, type ServiceDefinition } from "@grpc/grpc-js";
import { DESCRIPTOR_SET_URL, loadDescriptorIndex, type DescriptorIndex } from "./descriptor-index.js";

/** The reflection protocol versions served; both use the same messages in their own package. */
const VERSIONS = ["grpc.reflection.v1", "grpc.reflection.v1alpha"] as const;

/** A `ServerReflectionRequest`, as @bufbuild/protobuf decodes it from the reflection descriptors. */
interface ReflectionRequest extends Message {
  host: string;
  messageRequest:
    | { case: "fileByFilename" | "fileContainingSymbol" | "allExtensionNumbersOfType" | "listServices"; value: string }
    | { case: "fileContainingExtension"; value: { containingType: string; extensionNumber: number } }
    | { case: undefined; value?: undefined };
}

/** The `message_response` of a `ServerReflectionResponse`, as an init object for `create`. */
type ReflectionAnswer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
  | { case: "listServicesResponse"; value: { service: Array<{ name: string }> } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

const notFound = (message: string): ReflectionAnswer => ({
  case: "errorResponse",
  value: { errorCode: status.NOT_FOUND, errorMessage: message },
});

const files = (found: Uint8Array[] | undefined, missing: string): ReflectionAnswer =>
  found ? { case: "fileDescriptorResponse", value: { fileDescriptorProto: found } } : notFound(missing);

/**
 * Answers one reflection request from `index`. Unknown names get an
 * `error_response` with NOT_FOUND naming what was asked (the stream goes on),
 * a request with no `message_request` INVALID_ARGUMENT, as grpc-go's server does.
 */
export function answer(index: DescriptorIndex, req: ReflectionRequest): ReflectionAnswer {
  const r = req.messageRequest;
  switch (r.case) {
    case "listServices":
      return { case: "listServicesResponse", value: { service: index.services.map((name) => ({ name })) } };
    case "fileByFilename":
      return files(index.fileByName(r.value), `file_by_filename: no file named "${r.value}"`);
    case "fileContainingSymbol":
      return files(index.fileContainingSymbol(r.value), `file_containing_symbol: no symbol "${r.value}"`);
    case "fileContainingExtension": {
      const { containingType, extensionNumber } = r.value;
      return files(
        index.fileContainingExtension(containingType, extensionNumber),
        `file_containing_extension: no extension ${extensionNumber} of "${containingType}"`,
      );
    }
    case "allExtensionNumbersOfType": {
      const numbers = index.extensionNumbers(r.value);
      return numbers
        ? { case: "allExtensionNumbersResponse", value: { baseTypeName: r.value, extensionNumber: numbers } }
        : notFound(`all_extension_numbers_of_type: no message type "${r.value}"`);
    }
    default:
      return {
        case: "errorResponse",
        value: { errorCode: status.INVALID_ARGUMENT, errorMessage: "message_request: none of its fields is set" },
      };
  }
}

/** The grpc-js definition of `<pkg>.ServerReflection`, (de)serialized with the reflection descriptors in `index`. */
function reflectionDefinition(index: DescriptorIndex, pkg: string): ServiceDefinition {
  const message = (name: string): DescMessage => {
    const desc = index.registry.getMessage(`${pkg}.${name}`);
    if (!desc) throw new Error(`descriptor set lacks ${pkg}.${name}: run \`npm run generate\``);
    return desc;
  };
  const request = message("ServerReflectionRequest");
  const response = message("ServerReflectionResponse");
  return {
    ServerReflectionInfo: {
      path: `/${pkg}.ServerReflection/ServerReflectionInfo`,
      requestStream: true,
      responseStream: true,
      requestSerialize: (m: Message) => Buffer.from(toBinary(request, m)),
      requestDeserialize: (b: Buffer) => fromBinary(request, b),
      responseSerialize: (m: Message) => Buffer.from(toBinary(response, m)),
      responseDeserialize: (b: Buffer) => fromBinary(response, b),
    },
  };
}

/** Serves one reflection stream: each request gets its answer in order; the client's end ends it. */
function serveStream(index: DescriptorIndex, pkg: string, call: ServerDuplexStream<ReflectionRequest, Message>): void {
  const response = index.registry.getMessage(`${pkg}.ServerReflectionResponse`)!;
  call.on("data", (req: ReflectionRequest) => {
    call.write(create(response, { validHost: req.host, originalRequest: req, messageResponse: answer(index, req) }));
  });
  call.on("end", () => call.end());
  // A client that goes away mid-stream: nothing to clean up, but the error must not go unhandled.
  call.on("error", () => undefined);
}

let cached: { path: string; index: DescriptorIndex } | undefined;

/**
 * Adds gRPC server reflection (`grpc.reflection.v1` and `v1alpha`) to
 * `server`, serving the real `FileDescriptorProto`s of the descriptor set
 * (default {@link DESCRIPTOR_SET_URL}, generated from `proto/` by `npm run
 * generate`): `spillway/v1/*.proto` with `google/protobuf/struct.proto`, the
 * health proto and the reflection protos, under their real file names, so
 * grpcurl, grpcio-reflection and protobuf registries can build them. The set
 * is read once per process. Returns false, adding nothing, when the file is
 * missing (a build shipped without it); throws when it is unreadable.
 */
export function addReflection(server: Pick<Server, "addService">, path: string | URL = DESCRIPTOR_SET_URL): boolean {
  if (!existsSync(path)) return false;
  const key = String(path);
  if (cached?.path !== key) cached = { path: key, index: loadDescriptorIndex(path) };
  const { index } = cached;
  for (const pkg of VERSIONS) {
    server.addService(reflectionDefinition(index, pkg), {
      ServerReflectionInfo: (call: ServerDuplexStream<ReflectionRequest, Message>) => serveStream(index, pkg, call),
    });
  }
  return true;
}
