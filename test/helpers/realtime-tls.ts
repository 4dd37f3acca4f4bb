/** A self-signed certificate for 127.0.0.1, localhost and upstream.test (the proxy fake's name), made with openssl at test time. */
import { execFileSync } from "node:child_process";
import { join } from "node:path";

/** Paths of a PEM certificate and its key. */
export interface TestCert {
  readonly certFile: string;
  readonly keyFile: string;
}

/** Writes `cert.pem` and `key.pem` into `dir` (openssl must be installed). */
export function makeSelfSignedCert(dir: string): TestCert {
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  execFileSync(
    "openssl",
    [
      "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
      "-subj", "/CN=localhost",
      "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:upstream.test",
      "-keyout", keyFile, "-out", certFile,
    ],
    { stdio: "ignore" },
  );
  return { certFile, keyFile };
}
