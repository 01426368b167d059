import { describe, expect, it } from "vitest";
import { axisValues, gridSize, inShard, parseAxis, parseShard, pointCoords } from "../../src/core/grid.ts";
import { combine } from "../../src/core/vector.ts";
import { expectAllClose } from "../helpers.ts";

describe("grids", () => {
  it("parses min:max:num and spaces values like numpy.linspace", () => {
    expect(parseAxis("-1:1:51", "--x")).toEqual({ min: -1, max: 1, num: 51 });
    expectAllClose(axisValues({ min: -1, max: 1, num: 5 }), [-1, -0.5, 0, 0.5, 1]);
    expect(Array.from(axisValues({ min: 0.5, max: 0.5, num: 1 }))).toEqual([0.5]);
  });

  it("names the option and what was expected on bad axes", () => {
    expect(() => parseAxis("-1:1", "--x")).toThrow(/--x '-1:1': expected min:max:num like -1:1:51/);
    expect(() => parseAxis("-1:1:2.5", "--y")).toThrow(
      /--y '-1:1:2.5': the number of points must be a positive integer/,
    );
    expect(() => parseAxis("1:-1:5", "--x")).toThrow(/max must be greater than min/);
  });

  it("numbers 2D points row-major as i*ny + j, also on non-square grids", () => {
    const grid = { x: new Float64Array([0, 1]), y: new Float64Array([5, 6, 7]) };
    expect(gridSize(grid)).toBe(6);
    expect([0, 1, 2, 3, 4, 5].map((k) => pointCoords(grid, k))).toEqual([
      [0, 5],
      [0, 6],
      [0, 7],
      [1, 5],
      [1, 6],
      [1, 7],
    ]);
    expect(pointCoords({ x: new Float64Array([3, 4]), y: null }, 1)).toEqual([4]);
  });

  it("deals points to shards round-robin without overlap", () => {
    const shards = [0, 1, 2].map((index) => ({ index, count: 3 }));
    for (let k = 0; k < 20; k++) expect(shards.filter((s) => inShard(k, s)).length).toBe(1);
    expect(parseShard("2/3")).toEqual({ index: 2, count: 3 });
    expect(() => parseShard("3/3")).toThrow(/need 0 <= i < n, got i = 3, n = 3/);
    expect(() => parseShard("a/b")).toThrow(/--shard 'a\/b': expected i\/n/);
  });

  it("combines theta + a d1 + b d2", () => {
    const theta = new Float32Array([1, 2]);
    expectAllClose(combine(theta, [new Float32Array([1, 0]), new Float32Array([0, 1])], [2, -1]), [3, 1]);
    expect(() => combine(theta, [new Float32Array(3)], [1])).toThrow(
      /a direction has 3 values but theta has 2/,
    );
  });
});
