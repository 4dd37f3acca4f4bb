/**
 * A forward proxy on loopback for the transport tests: absolute-form HTTP
 * requests are forwarded, CONNECT is tunnelled, and the name `upstream.test`
 * (unknown to DNS) resolves to 127.0.0.1, so a call that reaches a fake by
 * that name went through the proxy.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { connect, type Socket } from "node:net";

/** A host name only the proxy knows (it maps it to 127.0.0.1). */
export const NAMED = "upstream.test";

/** A forward proxy on loopback and what went through it. */
export interface FakeProxy {
  readonly url: string;
  /** What went through: `GET http://host:port/path` for absolute-form requests, `CONNECT host:port` for tunnels. */
  readonly log: string[];
  close(): Promise<void>;
}

/** A forward proxy: absolute-form HTTP requests are forwarded, CONNECT is tunnelled; `upstream.test` resolves to 127.0.0.1. */
export async function startFakeProxy(): Promise<FakeProxy> {
  const log: string[] = [];
  const sockets = new Set<Socket>();
  const hostOf = (h: string): string => (h === NAMED ? "127.0.0.1" : h);
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    log.push(`${req.method} ${req.url}`);
    const u = new URL(req.url!);
    const up = httpRequest({ host: hostOf(u.hostname), port: u.port, method: req.method, path: `${u.pathname}${u.search}`, headers: { ...req.headers, host: u.host } }, (r) => {
      res.writeHead(r.statusCode!, r.headers);
      r.pipe(res);
    });
    up.on("error", () => res.destroy());
    res.on("close", () => up.destroy());
    req.pipe(up);
  });
  server.on("connect", (req: IncomingMessage, client: Socket, head: Buffer) => {
    log.push(`CONNECT ${req.url}`);
    const [host, port] = req.url!.split(":");
    const up = connect(Number(port), hostOf(host!), () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length) up.write(head);
      up.pipe(client);
      client.pipe(up);
    });
    const done = (): void => {
      up.destroy();
      client.destroy();
    };
    up.on("error", done);
    client.on("error", done);
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    log,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}


/**
 * Runs `fn` with the process environment changed by `vars` (undefined
 * deletes), then puts it back: the proxy variables are read when a gateway
 * builds its providers, so a test sets them for one gateway's start only.
 */
export async function withEnv<T>(vars: Readonly<Record<string, string | undefined>>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(vars)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
