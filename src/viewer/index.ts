// losscape/viewer: the interactive viewer and the self-contained HTML report (docs/viewer.md).

export { writeReport } from "./report.ts";
export { startViewer } from "./server.ts";
