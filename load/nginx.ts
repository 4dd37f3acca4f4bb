/**
 * nginx as a pure relay in front of the mock upstream: the floor a gateway's
 * CPU per request is compared with (issue 16). Debian's nginx-light at
 * /usr/sbin/nginx, one worker, started in the foreground with a config
 * generated into a temp dir: `proxy_pass` to the mock over a keep-alive
 * upstream pool, `proxy_buffering off` (each chunk goes on as it comes, as a
 * streaming gateway must), no access log. It relays bytes without reading
 * them: what any gateway that parses and re-emits events pays more is what
 * understanding the stream costs.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Proc } from "./procs.js";
import { sleep } from "./util.js";

/** Where the Debian package puts the binary. */
export const NGINX_BIN = "/usr/sbin/nginx";

/** Whether nginx is installed (the CPU benchmark's relay floor is skipped without it). */
export function nginxAvailable(bin = NGINX_BIN): boolean {
  return existsSync(bin);
}

/** A free TCP port on 127.0.0.1 (closed again before it is returned). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** The generated config: one worker, keep-alive to the mock, no buffering, no access log. */
export function nginxConfig(dir: string, port: number, upstreamPort: number): string {
  return `worker_processes 1;
daemon off;
master_process on;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_timeout 120s;
  keepalive_requests 1000000;
  upstream mock {
    server 127.0.0.1:${upstreamPort};
    keepalive 128;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
`;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/**
 * Starts nginx relaying to `upstreamPort`; resolves once it accepts
 * connections. Fails the run (not hangs it) when nginx exits or does not
 * listen within 10 s; `stop()` sends SIGTERM (a fast shutdown).
 */
export async function startNginx(upstreamPort: number, bin = NGINX_BIN): Promise<Proc & { port: number }> {
  const dir = mkdtempSync(join(tmpdir(), "spillway-nginx-"));
  const port = await freePort();
  const conf = join(dir, "nginx.conf");
  writeFileSync(conf, nginxConfig(dir, port, upstreamPort));
  // -e: the error log before the config is read (the compiled-in one may not be writable).
  const child = spawn(bin, ["-p", dir, "-c", conf, "-e", join(dir, "error.log")], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-4000)));
  child.stderr.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-4000)));
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`nginx exited (${child.exitCode}) before it listened: ${out}`);
    if (await accepts(port)) {
      return {
        child,
        port,
        async stop() {
          if (child.exitCode === null) child.kill("SIGTERM");
          await Promise.race([exited, sleep(10_000)]);
          if (child.exitCode === null) child.kill("SIGKILL");
          await exited;
        },
      };
    }
    await sleep(100);
  }
  child.kill("SIGKILL");
  throw new Error(`nginx did not listen on ${port} within 10 s: ${out}`);
}
