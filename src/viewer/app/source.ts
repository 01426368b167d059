/// <reference lib="dom" />
// Where the page gets its surfaces: the `losscape view` server's JSON API, or
// the data a `losscape report` embedded in the page. Both answer the same
// questions with the same shapes (see ../api.ts); errors carry the file's
// name and the reason, for the page to show.

import {
  type AnalysisJson,
  type ApiError,
  REPORT_DATA_ELEMENT,
  type ReportData,
  type SurfaceJson,
  type SurfaceList,
} from "../api.ts";

/** The page's view of the data, whatever its origin. */
export interface DataSource {
  /** The report's title; null when served live. */
  title: string | null;
  /** The surfaces (and unreadable files) on offer. */
  list(): Promise<SurfaceList>;
  /** One surface; rejects with the file's name and the reason. */
  surface(id: string): Promise<SurfaceJson>;
  /** One analysis (connect, spectrum, sharpness); rejects with the file's name and the reason. */
  analysis(id: string): Promise<AnalysisJson>;
}

function isApiError(v: unknown): v is ApiError {
  return typeof v === "object" && v !== null && typeof (v as ApiError).error === "string";
}

function failure(e: ApiError): Error {
  const named = e.file === undefined || e.error.includes(e.file) ? e.error : `${e.file}: ${e.error}`;
  return new Error(named);
}

async function getJson<T>(url: string): Promise<T> {
  let res: Response;
  try {
    res = await fetch(url, { headers: { Accept: "application/json" } });
  } catch (e) {
    throw new Error(
      `the viewer server does not answer (${(e as Error).message}); is 'losscape view' still running?`,
    );
  }
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    throw new Error(`${url}: the server answered ${res.status} without JSON`);
  }
  if (!res.ok || isApiError(body)) {
    throw failure(isApiError(body) ? body : { error: `${url}: status ${res.status}` });
  }
  return body as T;
}

/** The live API of `losscape view`. */
function apiSource(): DataSource {
  return {
    title: null,
    list: () => getJson<SurfaceList>("api/surfaces"),
    surface: (id) => getJson<SurfaceJson>(`api/surface?id=${encodeURIComponent(id)}`),
    analysis: (id) => getJson<AnalysisJson>(`api/analysis?id=${encodeURIComponent(id)}`),
  };
}

/** The data embedded by `losscape report`. */
function reportSource(data: ReportData): DataSource {
  return {
    title: data.title,
    list: async () => data.list,
    surface: async (id) => {
      const s = data.surfaces[id];
      if (s === undefined) throw new Error(`the report holds no surface with id '${id}'`);
      if (isApiError(s)) throw failure(s);
      return s;
    },
    analysis: async (id) => {
      const a = data.analyses?.[id];
      if (a === undefined) throw new Error(`the report holds no analysis with id '${id}'`);
      if (isApiError(a)) throw failure(a);
      return a;
    },
  };
}

/**
 * The report's embedded data when the page is a report, else the server's API.
 *
 * @example
 * const source = openSource(document);
 * const { surfaces } = await source.list();
 */
export function openSource(doc: Document): DataSource {
  const el = doc.getElementById(REPORT_DATA_ELEMENT);
  if (el?.textContent) return reportSource(JSON.parse(el.textContent) as ReportData);
  return apiSource();
}
