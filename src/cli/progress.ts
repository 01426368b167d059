// Progress display for long work: a live bar on a terminal, plain lines in CI
// logs and pipes (done/total, rate, time left), so both stay readable.

import { SingleBar } from "cli-progress";

/** A running progress display. */
export interface Progress {
  /** Sets the amount done so far, with an optional detail shown after the counts ("loss 0.42"). */
  update(done: number, detail?: string): void;
  /** Ends the display and prints a final line. */
  stop(): void;
}

/** Options of a progress display. */
export interface ProgressOptions {
  /** Unit of work, plural ("points", "samples"). */
  unit?: string;
  /** Plain lines instead of a live bar (default: when CI is set or stderr is not a terminal). */
  plain?: boolean;
  /** Seconds between plain lines (default 5). */
  every?: number;
  /** Where to write (default process.stderr). */
  stream?: NodeJS.WriteStream;
}

/** "1m 05s" style duration. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
}

/**
 * Starts a progress display for `total` units of work.
 *
 * @example
 * const bar = startProgress("surface", 2601, { unit: "points" });
 * bar.update(10);
 * bar.stop();
 */
export function startProgress(label: string, total: number, options: ProgressOptions = {}): Progress {
  const stream = options.stream ?? process.stderr;
  const plain = options.plain ?? (Boolean(process.env.CI) || !stream.isTTY);
  const unit = options.unit ?? "items";
  const every = (options.every ?? 5) * 1000;
  const started = performance.now();
  let done = 0;
  let detail = "";
  const line = (): string => {
    const secs = (performance.now() - started) / 1000;
    const rate = secs > 0 ? done / secs : 0;
    const left = rate > 0 ? (total - done) / rate : Number.NaN;
    return `${label}: ${done}/${total} ${unit} (${((100 * done) / Math.max(total, 1)).toFixed(1)} %)${detail ? `, ${detail}` : ""}, ${rate.toFixed(2)} ${unit}/s, ${formatDuration(secs)} elapsed, ${formatDuration(left)} left`;
  };
  if (plain) {
    let last = started;
    return {
      update(n, d) {
        done = n;
        detail = d ?? "";
        const now = performance.now();
        if (now - last >= every) {
          last = now;
          stream.write(`${line()}\n`);
        }
      },
      stop() {
        stream.write(`${line()}\n`);
      },
    };
  }
  const bar = new SingleBar(
    {
      format: `${label} [{bar}] {value}/{total} ${unit} {detail}| {rate} ${unit}/s | ETA {eta_formatted}`,
      stream,
      hideCursor: true,
      etaBuffer: 50,
    },
    undefined,
  );
  bar.start(total, 0, { rate: "0", detail: "" });
  return {
    update(n, d) {
      done = n;
      const secs = (performance.now() - started) / 1000;
      bar.update(n, { rate: secs > 0 ? (n / secs).toFixed(2) : "0", detail: d ? `| ${d} ` : "" });
    },
    stop() {
      bar.stop();
    },
  };
}
