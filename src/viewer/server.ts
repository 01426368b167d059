// The `losscape view` server: the built viewer app and a three-route JSON API
// over the surfaces and analyses under the given folders and files (see api.ts). It serves
// nothing else: app files come from a list made at start, surfaces from the
// catalog by opaque id, so no part of a request path ever becomes a file path.
// Bound to 127.0.0.1 by default; then requests naming another host are refused
// too (a DNS-rebinding page cannot read the API). No request crashes it: a
// missing or corrupt file is a JSON error naming the file and the reason.

import { readdirSync, readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { extname, join, relative, sep } from "node:path";
import type { ApiError, SurfaceList } from "./api.ts";
import { ensureViewerBuild } from "./build.ts";
import { SurfaceCatalog } from "./catalog.ts";

/** Options of `startViewer`. */
export interface ViewerOptions {
  /** Folders (searched for .h5 surfaces and .json analyses) and such files to serve. */
  paths: readonly string[];
  /** Interface to listen on; anything but loopback exposes the files to the network. */
  host?: string;
  /** Port; 0 picks a free one. */
  port?: number;
  /** A built app folder (default: build it on demand, see build.ts). */
  appDir?: string;
  /** Progress messages (the app build). */
  log?: (line: string) => void;
}

/** A running viewer. */
export interface Viewer {
  /** The page's address, e.g. "http://127.0.0.1:41234/". */
  url: string;
  /** The surfaces served now (the folders are rescanned). */
  list(): SurfaceList;
  /** Stops listening and drops open connections. */
  close(): Promise<void>;
}

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json; charset=utf-8",
  ".woff2": "font/woff2",
};

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** The app's files by URL path ("/", "/assets/index-abc.js"), read once. Vite's manifest is left out. */
function appFiles(dir: string): Map<string, { body: Buffer; type: string }> {
  const files = new Map<string, { body: Buffer; type: string }>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.name.startsWith(".")) continue;
      const full = join(d, e.name);
      if (e.isDirectory()) walk(full);
      else if (e.isFile()) {
        const url = `/${relative(dir, full).split(sep).join("/")}`;
        files.set(url, {
          body: readFileSync(full),
          type: CONTENT_TYPES[extname(e.name)] ?? "application/octet-stream",
        });
      }
    }
  };
  walk(dir);
  const index = files.get("/index.html");
  if (index === undefined) throw new Error(`startViewer(): 'appDir' ${dir} has no index.html`);
  files.set("/", index);
  return files;
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, head = false): void {
  res.writeHead(status, {
    "Content-Type": type,
    "Content-Length": Buffer.byteLength(body),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
  });
  res.end(head ? undefined : body);
}

function sendJson(res: ServerResponse, status: number, value: unknown, head = false): void {
  send(res, status, "application/json; charset=utf-8", JSON.stringify(value), head);
}

function sendError(res: ServerResponse, status: number, error: ApiError, head = false): void {
  sendJson(res, status, error, head);
}

/** A path that tries to leave the served tree: "..", backslashes, NUL, after percent-decoding. */
function isTraversal(decoded: string): boolean {
  return /(^|[/\\])\.\.([/\\]|$)/.test(decoded) || decoded.includes("\\") || decoded.includes("\0");
}

/**
 * Serves the viewer app and the surfaces under `paths` until `close()`.
 * Builds the app first when no build of the current sources exists.
 *
 * @example
 * const viewer = await startViewer({ paths: ["runs/"] });
 * console.log(`open ${viewer.url}`);
 * await viewer.close();
 */
export async function startViewer({
  paths,
  host = "127.0.0.1",
  port = 0,
  appDir,
  log = () => {},
}: ViewerOptions): Promise<Viewer> {
  if (paths.length === 0) throw new Error("startViewer(): 'paths' is empty, expected folders or .h5 files");
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`startViewer(): 'port' is ${port}, expected an integer in 0..65535`);
  }
  const catalog = new SurfaceCatalog(paths);
  const app = appFiles(appDir ?? (await ensureViewerBuild({ log })));
  const loopbackOnly = isLoopback(host);

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const head = req.method === "HEAD";
    if (req.method !== "GET" && !head) {
      res.setHeader("Allow", "GET, HEAD");
      sendError(res, 405, { error: `method ${req.method} not allowed; the viewer is read-only` });
      return;
    }
    if (loopbackOnly && req.headers.host !== undefined) {
      const name = req.headers.host.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1");
      if (!isLoopback(name)) {
        sendError(res, 403, {
          error: `host '${req.headers.host}' refused; this viewer answers on localhost only`,
        });
        return;
      }
    }
    const raw = req.url ?? "/";
    let decoded: string;
    try {
      decoded = decodeURIComponent(raw);
    } catch {
      sendError(res, 400, { error: "malformed percent-encoding in the request path" }, head);
      return;
    }
    if (!raw.startsWith("/") || isTraversal(decoded)) {
      sendError(res, 403, { error: "path refused: the viewer serves only its own files" }, head);
      return;
    }
    const url = new URL(raw, "http://viewer.invalid");
    if (url.pathname === "/api/surfaces") {
      sendJson(res, 200, catalog.list(), head);
      return;
    }
    if (url.pathname === "/api/surface") {
      const id = url.searchParams.get("id");
      if (id === null || id === "") {
        sendError(res, 400, { error: "missing query parameter 'id' (from /api/surfaces)" }, head);
      } else if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) {
        sendError(
          res,
          403,
          { error: "surface ids are opaque names from /api/surfaces; paths are refused" },
          head,
        );
      } else {
        const answer = catalog.surface(id);
        if (answer.ok) sendJson(res, 200, answer.surface, head);
        else sendError(res, answer.status, answer.error, head);
      }
      return;
    }
    if (url.pathname === "/api/analysis") {
      const id = url.searchParams.get("id");
      if (id === null || id === "") {
        sendError(res, 400, { error: "missing query parameter 'id' (from /api/surfaces, 'analyses')" }, head);
      } else if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) {
        sendError(
          res,
          403,
          { error: "analysis ids are opaque names from /api/surfaces; paths are refused" },
          head,
        );
      } else {
        const answer = catalog.analysis(id);
        if (answer.ok) sendJson(res, 200, answer.analysis, head);
        else sendError(res, answer.status, answer.error, head);
      }
      return;
    }
    const file = app.get(url.pathname);
    if (file === undefined) {
      sendError(res, 404, { error: `not found: ${url.pathname}` }, head);
      return;
    }
    send(res, 200, file.type, file.body, head);
  };

  const server = createServer((req, res) => {
    try {
      handle(req, res);
    } catch (e) {
      // A bug must cost one request, never the server.
      if (!res.headersSent) sendError(res, 500, { error: `internal error: ${(e as Error).message}` });
      else res.destroy();
    }
  });
  await new Promise<void>((done, fail) => {
    server.once("error", fail);
    server.listen(port, host, () => {
      server.off("error", fail);
      done();
    });
  });
  const address = server.address() as AddressInfo;
  const shown = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
  const url = `http://${shown.includes(":") ? `[${shown}]` : shown}:${address.port}/`;
  return {
    url,
    list: () => catalog.list(),
    close: () =>
      new Promise<void>((done) => {
        server.close(() => done());
        server.closeAllConnections();
      }),
  };
}
