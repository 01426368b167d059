// Viewer commands: `view` serves the interactive viewer over surface files,
// `report` writes the same views as one self-contained HTML file. Both call
// the library (src/viewer) and report; the app is built on demand.

import type { Command } from "@commander-js/extra-typings";
import { InvalidArgumentError } from "@commander-js/extra-typings";
import { writeFileAtomic } from "../formats/atomic.ts";
import { renderReport } from "../viewer/report.ts";
import { startViewer } from "../viewer/server.ts";

function port(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || n > 65535) {
    throw new InvalidArgumentError(
      `--port expects an integer in 0..65535 (0 = any free port), got '${text}'`,
    );
  }
  return n;
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}

/** Adds `losscape view` and `losscape report` to the program. */
export function registerViewCommands(program: Command): void {
  program
    .command("view")
    .description("interactive viewer of surface files in the browser (3D, contours, slices, comparison)")
    .argument(
      "<paths...>",
      "folders (searched for .h5 surfaces and connect/spectrum/sharpness .json files) and such files",
    )
    .option(
      "--host <host>",
      "interface to listen on; other than localhost exposes the files to the network",
      "127.0.0.1",
    )
    .option("--port <n>", "port (0 = any free port)", port, 8050)
    .action(async (paths, o) => {
      let viewer: Awaited<ReturnType<typeof startViewer>>;
      try {
        viewer = await startViewer({ paths, host: o.host, port: o.port, log: (l) => console.log(l) });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "EADDRINUSE") {
          throw new Error(
            `port ${o.port} on ${o.host} is in use; pick another with --port (0 = any free port)`,
          );
        }
        throw e;
      }
      if (!isLoopback(o.host)) {
        console.log(`warning: listening on ${o.host}: anyone who can reach it can read these surfaces`);
      }
      const { surfaces, analyses } = viewer.list();
      const bad = [...surfaces, ...analyses].filter((s) => s.status === "error");
      for (const s of bad) console.log(`warning: ${s.error}`);
      const good = analyses.filter((a) => a.status === "ok").length;
      console.log(
        `${surfaces.filter((s) => s.status === "ok").length} surface(s)${good > 0 ? ` and ${good} analysis file(s)` : ""} under ${paths.join(", ")}`,
      );
      console.log(`losscape viewer at ${viewer.url} (Ctrl-C to stop)`);
      await new Promise<void>((stop) => {
        process.once("SIGINT", () => stop());
        process.once("SIGTERM", () => stop());
      });
      await viewer.close();
    });

  program
    .command("report")
    .description(
      "write one self-contained HTML file (no server needed) with the viewer and the surfaces' data",
    )
    .argument(
      "<paths...>",
      "folders (searched for .h5 surfaces and connect/spectrum/sharpness .json files) and such files",
    )
    .requiredOption("--out <file>", "HTML file to write, e.g. report.html")
    .option("--title <text>", "title of the page", "losscape report")
    .action(async (paths, o) => {
      const { html, summary } = await renderReport({ paths, title: o.title, log: (l) => console.log(l) });
      for (const error of summary.errors) console.log(`warning: ${error}`);
      if (summary.surfaces === 0 && summary.analyses === 0)
        throw new Error(`no readable surface or analysis file under ${paths.join(", ")}; nothing written`);
      writeFileAtomic(o.out, html);
      console.log(
        `wrote ${o.out}: ${summary.surfaces} surface(s)${summary.analyses > 0 ? `, ${summary.analyses} analysis file(s)` : ""}; open it in a browser`,
      );
    });
}
