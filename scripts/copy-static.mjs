// Copies what the compiled code (dist/) reads from disk next to it: the
// playground's static files (the playground route) and the descriptor set that
// gRPC server reflection serves (src/doors/grpc/reflection.ts).
import { cpSync } from "node:fs";

cpSync("src/doors/http/playground", "dist/doors/http/playground", { recursive: true });
cpSync("src/gen/descriptor-set.binpb", "dist/gen/descriptor-set.binpb");
