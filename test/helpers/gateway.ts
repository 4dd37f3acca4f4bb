/** Starts a real gateway in this process on free loopback ports, for end-to-end tests. */
import { applyEnv, parseConfig } from "../../src/config/load.js";
import { startGateway, type Gateway, type GatewayOptions } from "../../src/gateway.js";

/** A gateway under test and the URLs to reach it. */
export interface TestGateway {
  readonly gateway: Gateway;
  /** `http://127.0.0.1:PORT` */
  readonly origin: string;
  /** `http://127.0.0.1:PORT/v1`, the base URL for OpenAI clients. */
  readonly baseUrl: string;
  /** `127.0.0.1:PORT` of the gRPC door, for grpc-js clients (`undefined` when it is off). */
  readonly grpcAddress: string | undefined;
  close(): Promise<void>;
}

/**
 * Starts a gateway with `raw` settings (the config file's shape) on port 0,
 * the local echo model at full speed unless `raw` says otherwise.
 */
export async function startTestGateway(raw: Record<string, any> = {}, options: GatewayOptions = {}): Promise<TestGateway> {
  const merged: Record<string, any> = {
    ...raw,
    http: { host: "127.0.0.1", port: 0, ...raw["http"] },
    grpc: { host: "127.0.0.1", port: 0, ...raw["grpc"] },
    providers: { local: { type: "local", tokenDelayMs: 0 }, ...raw["providers"] },
  };
  const config = parseConfig(applyEnv(merged, {}));
  const gateway = await startGateway(config, options);
  const origin = `http://127.0.0.1:${gateway.httpPort}`;
  const grpcAddress = gateway.grpcPort === undefined ? undefined : `127.0.0.1:${gateway.grpcPort}`;
  return { gateway, origin, baseUrl: `${origin}/v1`, grpcAddress, close: () => gateway.close() };
}
