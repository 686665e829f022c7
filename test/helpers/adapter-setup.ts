/**
 * Vitest global set-up: makes the WebGPU driver choice once, in the main process, and prints
 * it, so a log shows which adapter family each run used. The forked test processes inherit
 * the environment it sets and come to the same choice (adapter-choice.ts). Each vitest project
 * runs this; the choice and the line are made by the first.
 */
import { applyChoice, chooseAdapter, nodeProbe } from '../../src/platform/node/adapter-choice.ts';

const MADE = 'WEBSPARK_TEST_DRIVER';

export default function setup(): void {
  if (process.env[MADE]) return;
  const choice = chooseAdapter(nodeProbe());
  applyChoice(choice, process.env);
  process.env[MADE] = choice.kind;
  process.stdout.write(`\nWebGPU driver for this run: ${choice.kind}, chosen because ${choice.why}\n\n`);
}
