import { readFileSync } from "node:fs";
import { createFileRegistry, fromBinary, toBinary, type DescExtension, type DescFile, type DescMessage, type FileRegistry } from "@bufbuild/protobuf";
import { nestedTypes } from "@bufbuild/protobuf/reflect";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";

/**
 * The descriptor set `npm run generate` writes (scripts/generate.mjs): `proto/`
 * with its imports, plus the grpc health and reflection protos, each under its
 * real path. Two levels up from this file both in `src/doors/grpc/` and in
 * `dist/doors/grpc/` (scripts/copy-static.mjs copies it there).
 */
export const DESCRIPTOR_SET_URL = new URL("../../gen/descriptor-set.binpb", import.meta.url);

/**
 * Lookups over a set of real `FileDescriptorProto`s, answering what server
 * reflection asks. Every answer that names files returns the encoded file
 * first, then every file it depends on (transitively, each once), so a client
 * can build it without asking again.
 */
export interface DescriptorIndex {
  /** The registry the index was built from (every file resolved, with its dependencies). */
  readonly registry: FileRegistry;
  /** Fully-qualified names of every service in the set. */
  readonly services: readonly string[];
  /** The file named `name` (e.g. `spillway/v1/request.proto`) with its dependencies; undefined when unknown. */
  fileByName(name: string): Uint8Array[] | undefined;
  /**
   * The file declaring `symbol` (a service, method, message, field, oneof,
   * enum, enum value or extension, fully qualified, e.g. `spillway.v1.Chunk`
   * or `spillway.v1.SpillwayService.Generate`; a leading dot is ignored) with
   * its dependencies; undefined when unknown.
   */
  fileContainingSymbol(symbol: string): Uint8Array[] | undefined;
  /** The file declaring extension `number` of message `extendee`, with its dependencies; undefined when none. */
  fileContainingExtension(extendee: string, number: number): Uint8Array[] | undefined;
  /** The extension numbers declared for message `extendee` (often none); undefined when no such message. */
  extensionNumbers(extendee: string): number[] | undefined;
}

/** Every symbol a file declares, fully qualified, including methods, fields, oneofs and enum values. */
function* symbols(file: DescFile): Generator<string> {
  for (const type of nestedTypes(file)) {
    yield type.typeName;
    switch (type.kind) {
      case "service":
        for (const m of type.methods) yield `${type.typeName}.${m.name}`;
        break;
      case "message":
        for (const f of type.fields) yield `${type.typeName}.${f.name}`;
        for (const o of type.oneofs) yield `${type.typeName}.${o.name}`;
        break;
      case "enum": {
        // Enum values are scoped as siblings of their enum (C++ scoping rules).
        const scope = type.typeName.slice(0, type.typeName.length - type.name.length);
        for (const v of type.values) yield `${scope}${v.name}`;
        break;
      }
      case "extension":
        break;
    }
  }
}

/**
 * Builds the index over `registry`. Throws when two files declare one symbol
 * (a registry built from a valid descriptor set never does).
 */
export function createDescriptorIndex(registry: FileRegistry): DescriptorIndex {
  const encoded = new Map<DescFile, Uint8Array>();
  const bySymbol = new Map<string, DescFile>();
  const byName = new Map<string, DescFile>();
  for (const file of registry.files) {
    encoded.set(file, toBinary(FileDescriptorProtoSchema, file.proto));
    byName.set(file.proto.name, file);
    for (const s of symbols(file)) {
      const other = bySymbol.get(s);
      if (other && other !== file) throw new Error(`descriptor set: ${s} is declared in both ${other.proto.name} and ${file.proto.name}`);
      bySymbol.set(s, file);
    }
  }
  const withDependencies = (file: DescFile | undefined): Uint8Array[] | undefined => {
    if (!file) return undefined;
    const seen = new Set<DescFile>([file]);
    const queue = [file];
    for (let i = 0; i < queue.length; i++) {
      for (const dep of queue[i]!.dependencies) {
        if (!seen.has(dep)) {
          seen.add(dep);
          queue.push(dep);
        }
      }
    }
    return queue.map((f) => encoded.get(f)!);
  };
  const extensionsOf = (extendee: DescMessage): DescExtension[] =>
    [...registry].filter((t): t is DescExtension => t.kind === "extension" && t.extendee === extendee);
  return {
    registry,
    services: [...registry].filter((t) => t.kind === "service").map((t) => t.typeName),
    fileByName: (name) => withDependencies(byName.get(name)),
    fileContainingSymbol: (symbol) => withDependencies(bySymbol.get(symbol.startsWith(".") ? symbol.slice(1) : symbol)),
    fileContainingExtension(extendee, number) {
      const message = registry.getMessage(extendee);
      return withDependencies(message && registry.getExtensionFor(message, number)?.file);
    },
    extensionNumbers(extendee) {
      const message = registry.getMessage(extendee);
      return message && extensionsOf(message).map((e) => e.number);
    },
  };
}

/**
 * Reads an encoded `FileDescriptorSet` and indexes it. Throws (naming the
 * path) when the file is missing, is not a descriptor set, or a file's
 * dependency is not in the set.
 */
export function loadDescriptorIndex(path: string | URL = DESCRIPTOR_SET_URL): DescriptorIndex {
  const set = fromBinary(FileDescriptorSetSchema, readFileSync(path));
  let registry: FileRegistry;
  try {
    registry = createFileRegistry(set);
  } catch (err) {
    throw new Error(`descriptor set ${String(path)}: ${(err as Error).message}`);
  }
  return createDescriptorIndex(registry);
}
