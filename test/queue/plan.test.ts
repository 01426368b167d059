import { describe, expect, it } from "vitest";
import { randomDirection } from "../../src/core/directions.ts";
import { axisValues } from "../../src/core/grid.ts";
import { loadDataset } from "../../src/data/load.ts";
import type { Engine } from "../../src/engine/engine.ts";
import { jobIdentity } from "../../src/landscape/surface.ts";
import { parseQueueUrl, redact, redactUrlText, redisOptions } from "../../src/queue/connection.ts";
import {
  chunkJobId,
  chunkPoints,
  decodeValues,
  encodeValues,
  identityDifferences,
  parsePlan,
  planIdentity,
} from "../../src/queue/plan.ts";
import { zooModel } from "../../src/zoo/zoo.ts";

describe("queue URLs", () => {
  it("parse host, port, database, user and password, and display them without the password", () => {
    const c = parseQueueUrl("redis://alice:p%40ss@10.0.0.5:6380/3");
    expect(c).toEqual({
      host: "10.0.0.5",
      port: 6380,
      db: 3,
      username: "alice",
      password: "p@ss",
      tls: false,
      display: "redis://alice:***@10.0.0.5:6380/3",
    });
    expect(parseQueueUrl("redis://127.0.0.1")).toMatchObject({ port: 6379, db: 0, tls: false });
    expect(parseQueueUrl("redis://[::1]:7000").display).toBe("redis://[::1]:7000/0");
  });

  it("use TLS for rediss:// and take the password from the options when the URL has none", () => {
    const c = parseQueueUrl("rediss://redis.example:6380", { password: "from-env" });
    expect(c.tls).toBe(true);
    expect(c.password).toBe("from-env");
    expect(c.display).toBe("rediss://:***@redis.example:6380/0");
    expect(redisOptions(c).tls).toEqual({ servername: "redis.example" });
    expect(redisOptions(parseQueueUrl("redis://h")).tls).toBeUndefined();
    expect(redisOptions(parseQueueUrl("rediss://127.0.0.1", { ca: "PEM" })).tls).toEqual({ ca: "PEM" });
  });

  it("reject other schemes, paths and queries, naming the option and never echoing the password", () => {
    expect(() => parseQueueUrl("http://h:1", { option: "--queue" })).toThrow(
      /--queue 'http:\/\/h:1' has scheme 'http'; expected redis:\/\//,
    );
    expect(() => parseQueueUrl("redis://:hunter2@h/x")).toThrow(/path '\/x'; the path is a database number/);
    expect(() => parseQueueUrl("redis://:hunter2@h/x")).not.toThrow(/hunter2/);
    expect(() => parseQueueUrl("redis://h?tls=1")).toThrow(/has a query or fragment/);
    expect(() => parseQueueUrl("not a url :hunter2@")).toThrow(/is not a URL/);
  });

  it("redact passwords from any text, in URLs (even with an unencoded @) and verbatim", () => {
    expect(redactUrlText("--queue redis://:p@ss@host:1 --x 1")).toBe("--queue redis://:***@host:1 --x 1");
    expect(redactUrlText("rediss://bob:pw@h and redis://h:6379/0")).toBe(
      "rediss://bob:***@h and redis://h:6379/0",
    );
    expect(redact("WRONGPASS for s3cr3t", { password: "s3cr3t" })).toBe("WRONGPASS for ***");
  });
});

describe("plans and results", () => {
  it("chunks are consecutive index ranges holding only the points still to do", () => {
    expect(chunkPoints([0, 1, 2, 5, 9], 4)).toEqual([
      { chunk: 0, points: [0, 1, 2] },
      { chunk: 1, points: [5] },
      { chunk: 2, points: [9] },
    ]);
    expect(chunkPoints([3, 4], 1)).toEqual([
      { chunk: 3, points: [3] },
      { chunk: 4, points: [4] },
    ]);
    expect(chunkJobId("abc", 4, 2)).toBe("abc.4.2");
    expect(() => chunkPoints([1], 0)).toThrow(/'size' must be a positive integer, got 0/);
  });

  it("values survive the wire bit for bit, NaN and infinities included", () => {
    const a = [0.1 + 0.2, Number.NaN, -0, Number.POSITIVE_INFINITY, 5e-324];
    const back = decodeValues(encodeValues({ train_loss: a }), a.length, "r").train_loss!;
    expect(Array.from(back).every((v, i) => Object.is(v, a[i]))).toBe(true);
    expect(() => decodeValues(encodeValues({ train_loss: a }), 4, "result 1-0")).toThrow(
      /result 1-0: 'train_loss' holds 40 bytes, expected 32/,
    );
  });

  it("planIdentity equals jobIdentity of the same inputs, so files from both paths resume each other", () => {
    const model = zooModel("mlp", { seed: 2, hidden: [8] });
    const train = loadDataset("fashion-mnist", "train", { subset: { count: 20 }, seed: 1 });
    const d = randomDirection(model.initial, model.params, { seed: 3 });
    const grid = { x: axisValues({ min: -1, max: 1, num: 3 }), y: null };
    const shard = { index: 1, count: 3 };
    const engine = { model } as unknown as Engine;
    const expected = jobIdentity({
      engine,
      theta: model.initial,
      directions: [d],
      grid,
      train,
      path: "",
      dirFile: "",
      shard,
      evaluate: { loss: "mse" },
    });
    expect(planIdentity({ model, theta: model.initial, directions: [d], train, loss: "mse", shard })).toEqual(
      expected,
    );
  });

  it("identity differences name each field with both values, ignoring the shard", () => {
    const a = {
      model_hash: "a",
      directions_hash: "d",
      train_hash: "t",
      test_hash: "none",
      loss: "mse",
      shard: "0/2",
    };
    expect(identityDifferences(a, { ...a, model_hash: "b", shard: "all" })).toEqual([
      "model_hash is a in the plan but b here",
    ]);
  });

  it("a malformed plan record is refused with what is wrong", () => {
    expect(() => parsePlan("{", "plan p")).toThrow(/plan p: not JSON/);
    expect(() => parsePlan('{"version":2}', "plan p")).toThrow(
      /plan p: version is 2, this losscape reads version 1/,
    );
    expect(() => parsePlan('{"version":1,"model":{}}', "plan p")).toThrow(/'model.spec' must be a string/);
  });
});
