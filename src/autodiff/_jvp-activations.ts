// Forward-mode (JVP) rules for more ops (activations), merged into the registry by jvp.ts.
// Internal to src/autodiff. Imports from jvp.ts must stay type-only (jvp.ts imports this file).

import type { JvpRule } from "./jvp.ts";

/** Forward-mode rules of this file, by op type. */
export const ACTIVATIONS_JVP_RULES: Readonly<Record<string, JvpRule>> = {};
