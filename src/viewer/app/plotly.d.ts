// The few plotly.js calls the viewer makes (the dist bundle ships no types).

declare module "plotly.js-gl3d-dist-min" {
  /** A div Plotly has drawn into, with its event emitter and internal layout. */
  export interface PlotlyElement extends HTMLDivElement {
    on(event: string, handler: (event: PlotlyEvent) => void): void;
    removeAllListeners(event?: string): void;
  }
  /** Click/hover/relayout payloads, loosely typed. */
  export interface PlotlyEvent {
    points?: {
      x: number;
      y: number;
      curveNumber: number;
      pointNumber: number | number[];
      pointIndex?: number;
      customdata?: unknown;
      data?: { name?: string };
    }[];
    [key: string]: unknown;
  }
  const Plotly: {
    react(
      root: HTMLElement,
      data: Record<string, unknown>[],
      layout?: Record<string, unknown>,
      config?: Record<string, unknown>,
    ): Promise<PlotlyElement>;
    relayout(root: HTMLElement, update: Record<string, unknown>): Promise<PlotlyElement>;
    purge(root: HTMLElement): void;
    Plots: { resize(root: HTMLElement): Promise<void> | void };
  };
  export default Plotly;
}
