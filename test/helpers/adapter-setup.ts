/**
 * Vitest global set-up: makes the WebGPU driver choice once, in the main process, and prints
 * it, so a log shows which adapter family each run used. The forked test processes inherit
 * the environment it sets and come to the same choice (adapter-choice.ts).
 */
import { applyChoice, chooseAdapter, nodeProbe } from '../../src/platform/node/adapter-choice.ts';

export default function setup(): void {
  const choice = chooseAdapter(nodeProbe());
  applyChoice(choice, process.env);
  process.stdout.write(`\nWebGPU driver for this run: ${choice.kind}, chosen because ${choice.why}\n\n`);
}
