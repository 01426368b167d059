// Reverse-mode rules for more ops (activations), merged into the registry by gradient.ts.
// Internal to src/autodiff.

import type { Rule } from "./_rules.ts";

/** Reverse-mode rules of this file, by op type. */
export const ACTIVATIONS_RULES: Readonly<Record<string, Rule>> = {};
