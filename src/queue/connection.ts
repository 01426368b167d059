// Where the queue lives: redis:// and rediss:// (TLS) URLs parsed into the
// connection options BullMQ and ioredis take, and the redaction that keeps a
// password out of every line losscape prints or stores.

import { isIP } from "node:net";

/**
 * A parsed queue URL: the Redis server, its credentials and database, and a printable form without the password.
 *
 * @example
 * const c = parseQueueUrl("rediss://:s3cret@redis.lab:6380/2");
 * c.display; // "rediss://:***@redis.lab:6380/2"
 */
export interface QueueConnection {
  readonly host: string;
  readonly port: number;
  /** ACL user (Redis 6+); absent for the default user. */
  readonly username?: string;
  readonly password?: string;
  /** Database number (the URL path, default 0). */
  readonly db: number;
  /** Whether to connect with TLS (`rediss://`). */
  readonly tls: boolean;
  /** PEM certificates of the CAs to trust for TLS, instead of Node's defaults (NODE_EXTRA_CA_CERTS adds to those). */
  readonly ca?: string;
  /** The URL with the password replaced by `***`, for logs and messages. */
  readonly display: string;
}

/**
 * Which queue: the Redis server, the BullMQ queue name and the key prefix. Workers serve one queue name; a
 * surface is submitted to one.
 *
 * @example
 * const target: QueueTarget = { connection: parseQueueUrl("redis://127.0.0.1:6379"), name: "surfaces" };
 */
export interface QueueTarget {
  /** Parsed queue URL. */
  connection: QueueConnection;
  /** BullMQ queue name (default "surfaces"). */
  name?: string;
  /** Prefix of every Redis key (default "losscape"). */
  prefix?: string;
}

/** Options of `parseQueueUrl`. */
export interface ParseQueueUrlOptions {
  /** Password to use when the URL has none (e.g. from an environment variable, to keep it out of `ps`). */
  password?: string;
  /** PEM certificates of the CAs to trust for `rediss://` instead of Node's defaults (a private CA). */
  ca?: string;
  /** Name of the argument in error messages (default "queue URL"). */
  option?: string;
}

/** What a queue URL looks like, for error messages. */
const URL_SYNTAX = "redis://[user[:password]@]host[:port][/db] or rediss://... (TLS)";

/**
 * Parses a `redis://` or `rediss://` URL. Errors name the argument and never contain the password.
 *
 * @example
 * parseQueueUrl("redis://127.0.0.1:6379"); // { host: "127.0.0.1", port: 6379, db: 0, tls: false, ... }
 * parseQueueUrl("redis://worker@redis.lab", { password: process.env.LOSSCAPE_REDIS_PASSWORD });
 */
export function parseQueueUrl(
  text: string,
  { password, ca, option = "queue URL" }: ParseQueueUrlOptions = {},
): QueueConnection {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`${option} '${redactUrlText(text)}' is not a URL; expected ${URL_SYNTAX}`);
  }
  const shown = redactUrlText(text);
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
    throw new Error(`${option} '${shown}' has scheme '${url.protocol.slice(0, -1)}'; expected ${URL_SYNTAX}`);
  }
  if (url.search || url.hash) {
    throw new Error(`${option} '${shown}' has a query or fragment; expected ${URL_SYNTAX}`);
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  if (!host) throw new Error(`${option} '${shown}' has no host; expected ${URL_SYNTAX}`);
  const port = url.port === "" ? 6379 : Number(url.port);
  const path = url.pathname.replace(/^\//, "");
  if (path !== "" && !/^\d+$/.test(path)) {
    throw new Error(`${option} '${shown}' has path '/${path}'; the path is a database number like /0`);
  }
  const db = path === "" ? 0 : Number(path);
  const username = url.username ? decodeURIComponent(url.username) : undefined;
  const secret = url.password ? decodeURIComponent(url.password) : password || undefined;
  const tls = url.protocol === "rediss:";
  const hostPart = host.includes(":") ? `[${host}]` : host;
  const credentials = username || secret ? `${username ?? ""}${secret ? ":***" : ""}@` : "";
  return {
    host,
    port,
    ...(username ? { username } : {}),
    ...(secret ? { password: secret } : {}),
    db,
    tls,
    ...(tls && ca ? { ca } : {}),
    display: `${tls ? "rediss" : "redis"}://${credentials}${hostPart}:${port}/${db}`,
  };
}

/**
 * Replaces the password of a Redis URL inside any text with `***` (also when the text is not a valid URL).
 *
 * @example
 * redactUrlText("--queue redis://:pw@host:6379"); // "--queue redis://:***@host:6379"
 */
export function redactUrlText(text: string): string {
  // Up to the last "@" of the URL: an unencoded "@" in a password must not leak its tail.
  return text.replace(/(rediss?:\/\/[^:@/\s]*):\S*@/g, "$1:***@");
}

/**
 * Removes the connection's password from a text (an error message, a command line): every occurrence of it,
 * plain or percent-encoded, and the password part of any Redis URL in it.
 *
 * @example
 * redact(`WRONGPASS for ${url}`, connection); // "WRONGPASS for redis://:***@host:6379"
 */
export function redact(text: string, connection: Pick<QueueConnection, "password">): string {
  let out = redactUrlText(text);
  const secret = connection.password;
  if (secret) {
    for (const form of new Set([secret, encodeURIComponent(secret)])) out = out.split(form).join("***");
  }
  return out;
}

/**
 * The options ioredis (and BullMQ's `connection`) take for this server. `maxRetriesPerRequest: null` is what
 * BullMQ's blocking connections require.
 *
 * @example
 * new Redis(redisOptions(parseQueueUrl("redis://127.0.0.1:6379")));
 */
export function redisOptions(c: QueueConnection): {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  tls?: { servername?: string; ca?: string };
  maxRetriesPerRequest: null;
} {
  return {
    host: c.host,
    port: c.port,
    db: c.db,
    ...(c.username ? { username: c.username } : {}),
    ...(c.password ? { password: c.password } : {}),
    // SNI needs a host name; for an IP address TLS verifies the certificate's IP SAN instead.
    ...(c.tls
      ? { tls: { ...(isIP(c.host) ? {} : { servername: c.host }), ...(c.ca ? { ca: c.ca } : {}) } }
      : {}),
    maxRetriesPerRequest: null,
  };
}
