// Generates everything in src/gen from proto/ (and the gRPC packages' own
// .proto files), into `root` (default: this checkout):
//   - `buf generate`: ts-proto code (buf.gen.yaml, which cleans <root>/src/gen first);
//   - `buf build`: src/gen/descriptor-set.binpb, the FileDescriptorSet that gRPC
//     server reflection serves (src/doors/grpc/reflection.ts): proto/ with its
//     imports (google/protobuf/struct.proto, …), plus grpc/health/v1/health.proto
//     (from grpc-health-check, which implements the health service) and
//     grpc/reflection/v1{,alpha}/reflection.proto (from @grpc/reflection), each
//     under its real path, with source info so clients (grpcurl describe) show the comments.
// Run as a script: `node scripts/generate.mjs` (`npm run generate`).
// scripts/check-gen.mjs calls generate() with a temporary root and diffs.
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** This checkout (the folder holding package.json). */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** The descriptor set, relative to the checkout. */
export const DESCRIPTOR_SET = "src/gen/descriptor-set.binpb";

const require = createRequire(join(REPO, "package.json"));
const pkgDir = (name) => dirname(require.resolve(`${name}/package.json`));

/** Third-party .proto files served by reflection: real path → where the installed package ships it. */
const GRPC_PROTOS = {
  "grpc/health/v1/health.proto": join(pkgDir("grpc-health-check"), "proto/health/v1/health.proto"),
  "grpc/reflection/v1/reflection.proto": join(pkgDir("@grpc/reflection"), "build/proto/grpc/reflection/v1/reflection.proto"),
  "grpc/reflection/v1alpha/reflection.proto": join(pkgDir("@grpc/reflection"), "build/proto/grpc/reflection/v1alpha/reflection.proto"),
};

const buf = (args) =>
  execFileSync(join(REPO, "node_modules/.bin/buf"), args, { cwd: REPO, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });

/** Writes the generated tree under `root` (`<root>/src/gen/...`). Throws when buf fails. */
export function generate(root = REPO) {
  buf(["generate", "--output", root]);
  const scratch = mkdtempSync(join(tmpdir(), "spillway-descriptors-"));
  try {
    const grpcDir = join(scratch, "grpc-protos");
    for (const [path, source] of Object.entries(GRPC_PROTOS)) {
      mkdirSync(dirname(join(grpcDir, path)), { recursive: true });
      cpSync(source, join(grpcDir, path));
    }
    // An empty buf.yaml makes the folder a module of its own, not part of this workspace.
    writeFileSync(join(grpcDir, "buf.yaml"), "version: v2\n");
    buf(["build", "proto", "-o", join(scratch, "spillway.binpb")]);
    buf(["build", grpcDir, "-o", join(scratch, "grpc.binpb")]);
    // FileDescriptorSet is one repeated field: two encoded sets, concatenated, are their union.
    const set = Buffer.concat([readFileSync(join(scratch, "spillway.binpb")), readFileSync(join(scratch, "grpc.binpb"))]);
    mkdirSync(dirname(join(root, DESCRIPTOR_SET)), { recursive: true });
    writeFileSync(join(root, DESCRIPTOR_SET), set);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  generate();
  console.log(`regenerated src/gen (ts-proto + ${DESCRIPTOR_SET})`);
}
