/** The `webspark` command line: dispatches to one module per command. */
import { parseArgs, type Args } from './args.ts';

interface Command {
  summary: string;
  run(args: Args): Promise<number>;
}

const commands: Record<string, Command> = {
  info: {
    summary: 'show the WebGPU adapter, its limits and features',
    run: async (args) => (await import('./info.ts')).info(args),
  },
  pretrain: {
    summary: 'SparK pre-training (default: resnet18 at 64 px on the bundled sample shard)',
    run: async (args) => (await import('./pretrain.ts')).pretrain(args),
  },
  reconstruct: {
    summary: 'masked reconstructions from a checkpoint: PNG grid, --json prints the loss',
    run: async (args) => (await import('./reconstruct.ts')).reconstruct(args),
  },
  'export-encoder': {
    summary: 'the encoder alone as safetensors with timm-style keys: `--checkpoint FILE --out FILE`',
    run: async (args) => (await import('./export-encoder.ts')).exportEncoderCommand(args),
  },
  eval: {
    summary: 'k-NN / linear-probe accuracy of a frozen encoder: `--checkpoint FILE --data SPEC --protocol knn|linear`',
    run: async (args) => (await import('./eval.ts')).evalCommand(args),
  },
  finetune: {
    summary: 'fine-tune a classifier on labelled images: `--checkpoint FILE|--random-init --data SPEC [--label-fraction F] --out DIR`',
    run: async (args) => (await import('./finetune.ts')).finetuneCommand(args),
  },
  predict: {
    summary: 'top-5 classes of images under a fine-tuned classifier: `--checkpoint classifier.safetensors IMAGE... [--json]`',
    run: async (args) => (await import('./predict.ts')).predictCommand(args),
  },
  bench: {
    summary: 'benchmarks: `bench [kernels|data|tfjs|variants|tune|encoder|train] [--json FILE] [--quick] [--autotune]`',
    run: async (args) => (await import('./bench.ts')).bench(args),
  },
};

function usage(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(16)} ${c.summary}`);
  return `usage: webspark <command> [options]\n\ncommands:\n${lines.join('\n')}\n`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`webspark: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  try {
    return await command.run(parseArgs(rest));
  } catch (err) {
    process.stderr.write(`webspark ${name}: ${(err as Error).message}\n`);
    if (process.env.WEBSPARK_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    return 1;
  }
}
