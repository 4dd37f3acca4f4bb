import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Server } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { protoPath as healthProtoPath } from "grpc-health-check";

/**
 * The `proto/` folder of the repository: three levels up from this file
 * both in `src/doors/grpc/` and in the build output `dist/doors/grpc/`.
 */
export const PROTO_DIR = fileURLToPath(new URL("../../../proto/", import.meta.url));

/** The service file, relative to {@link PROTO_DIR}. */
const SERVICE_PROTO = "spillway/v1/service.proto";

/**
 * Adds gRPC server reflection (`grpc.reflection.v1` and `v1alpha`) to
 * `server`, describing `spillway.v1` (and the health service), so grpcurl
 * and friends work without the .proto files. ts-proto's output carries no
 * descriptors, so the descriptors are read from the .proto files with
 * @grpc/proto-loader. Returns false, adding nothing, when the .proto files
 * are not next to the code (a build shipped without `proto/`).
 */
export function addReflection(server: Pick<Server, "addService">, protoDir: string = PROTO_DIR): boolean {
  if (!existsSync(`${protoDir}/${SERVICE_PROTO}`)) return false;
  const pkg = loadSync([SERVICE_PROTO, healthProtoPath], { includeDirs: [protoDir] });
  new ReflectionService(pkg).addToServer(server);
  return true;
}
