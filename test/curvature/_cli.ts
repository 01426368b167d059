// A losscape entry point with only the hessian command, as src/cli/main.ts registers it, so its
// tests run the command end to end in a child process.

import { Command } from "@commander-js/extra-typings";
import { registerHessianCommand } from "../../src/cli/hessian.ts";

const program = new Command().name("losscape").showHelpAfterError();
registerHessianCommand(program);
try {
  await program.parseAsync(process.argv);
} catch (e) {
  console.error(`losscape: ${(e as Error).message}`);
  process.exit(1);
}
