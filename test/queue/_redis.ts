// A private redis-server on 127.0.0.1 and a free port, without persistence,
// optionally with a password and TLS only, for the queue tests and
// bench/scale.ts (Debian packages redis-server, and openssl for TLS).

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createServer } from "node:net";
import { join } from "node:path";
import { findTool, installCommand, testTool } from "../../scripts/test-tools.mjs";

/** A running redis-server. */
export interface LocalRedis {
  port: number;
  /** redis://127.0.0.1:<port> (rediss:// with TLS; with the password when one was set). */
  url: string;
  stop(): Promise<void>;
}

function redisServerPath(): string {
  const tool = testTool("redis-server");
  const path = findTool(tool);
  if (path === undefined)
    throw new Error(`redis-server not found: install it with ${installCommand([tool])}`);
  return path;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

/**
 * Starts redis-server on 127.0.0.1 and a free port; resolves once it accepts connections.
 *
 * @example
 * const redis = await startRedis();
 * // ... redis.url ...
 * await redis.stop();
 */
export async function startRedis({
  password,
  tls,
}: {
  password?: string;
  /** Serve TLS only, with this certificate (see `selfSignedCertificate`). */
  tls?: { cert: string; key: string };
} = {}): Promise<LocalRedis> {
  const port = await freePort();
  const args = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
  if (tls) {
    args.push("--port", "0", "--tls-port", String(port), "--tls-auth-clients", "no");
    args.push("--tls-cert-file", tls.cert, "--tls-key-file", tls.key);
  } else args.push("--port", String(port));
  if (password) args.push("--requirepass", password);
  const child: ChildProcess = spawn(redisServerPath(), args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer) => {
      output += d.toString();
      if (output.includes("Ready to accept connections")) resolve();
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code) => reject(new Error(`redis-server exited with ${code}:\n${output}`)));
    child.once("error", reject);
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    port,
    url: `${tls ? "rediss" : "redis"}://${password ? `:${encodeURIComponent(password)}@` : ""}127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}

/**
 * A self-signed certificate for 127.0.0.1 (cert.pem, key.pem in `dir`), made with openssl; clients trust it
 * through NODE_EXTRA_CA_CERTS.
 */
export function selfSignedCertificate(dir: string): { cert: string; key: string } {
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  const r = spawnSync(
    "openssl",
    [
      ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"],
      ...["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
    ],
    { encoding: "utf8" },
  );
  if (r.status !== 0)
    throw new Error(
      `openssl could not make a test certificate (apt-get install openssl): ${r.stderr ?? r.error}`,
    );
  return { cert, key };
}
