// Option parsers for the CLI: each names the option, what was expected and what came.

import { InvalidArgumentError } from "@commander-js/extra-typings";

/** A positive integer option. */
export function positiveInt(option: string) {
  return (text: string): number => {
    const n = Number(text);
    if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < 1) {
      throw new InvalidArgumentError(`${option} expects a positive integer, got '${text}'`);
    }
    return n;
  };
}

/** A non-negative integer option (seeds). */
export function nonNegativeInt(option: string) {
  return (text: string): number => {
    const n = Number(text);
    if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n)) {
      throw new InvalidArgumentError(`${option} expects a non-negative integer, got '${text}'`);
    }
    return n;
  };
}

/** A positive number option. */
export function positiveNumber(option: string) {
  return (text: string): number => {
    const n = Number(text);
    if (text.trim() === "" || !Number.isFinite(n) || n <= 0) {
      throw new InvalidArgumentError(`${option} expects a positive number, got '${text}'`);
    }
    return n;
  };
}

/** A number option that may be 0 but not negative. */
export function nonNegativeNumber(option: string) {
  return (text: string): number => {
    const n = Number(text);
    if (text.trim() === "" || !Number.isFinite(n) || n < 0) {
      throw new InvalidArgumentError(`${option} expects a number >= 0, got '${text}'`);
    }
    return n;
  };
}

/** A shape like "3,32,32" or "3x32x32". */
export function shape(option: string) {
  return (text: string): number[] => {
    const parts = text.split(/[,x]/).map((s) => s.trim());
    const dims = parts.map(Number);
    if (parts.length === 0 || !dims.every((d, i) => /^\d+$/.test(parts[i]!) && d > 0)) {
      throw new InvalidArgumentError(`${option} expects a shape like 3,32,32, got '${text}'`);
    }
    return dims;
  };
}

/** One of a fixed set of choices. */
export function oneOf<T extends string>(option: string, choices: readonly T[]) {
  return (text: string): T => {
    if (!(choices as readonly string[]).includes(text)) {
      throw new InvalidArgumentError(`${option} expects one of ${choices.join(", ")}, got '${text}'`);
    }
    return text as T;
  };
}

/** A regular expression matched against parameter names (JavaScript syntax, unanchored). */
export function regex(option: string) {
  return (text: string): RegExp => {
    if (text.trim() === "") throw new InvalidArgumentError(`${option} expects a regular expression, got ''`);
    try {
      return new RegExp(text);
    } catch (e) {
      throw new InvalidArgumentError(
        `${option} expects a regular expression, got '${text}' (${(e as Error).message})`,
      );
    }
  };
}

/** An integer option, negative ones too (--ignore-index -100). */
export function integer(option: string) {
  return (text: string): number => {
    const n = Number(text);
    if (!/^-?\d+$/.test(text.trim()) || !Number.isSafeInteger(n)) {
      throw new InvalidArgumentError(`${option} expects an integer, got '${text}'`);
    }
    return n;
  };
}
