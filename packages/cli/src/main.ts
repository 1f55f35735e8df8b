import { S2CPNetError } from '@s2cpnet/core';
import type { Command, CommandContext } from './command';
import { ExitCode } from './command';
import { commands } from './commands/index';
import { VERSION } from './version';

function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    `s2cpnet ${VERSION}: remote-sensing image captioning (S²CPNet) on TensorFlow.js`,
    '',
    'Usage: s2cpnet <command> [options]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Global options: --backend tensorflow|webgpu|wasm|cpu (or S2CPNET_BACKEND), --threads N (or S2CPNET_THREADS), --help, --version',
    "Run 's2cpnet <command> --help' for a command's options.",
    '',
  ].join('\n');
}

/** Removes the global flags from argv and returns them. */
export function takeGlobalFlags(argv: string[]): { rest: string[]; backend?: string; threads?: number } {
  const rest: string[] = [];
  let backend: string | undefined;
  let threads: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    if (flag === '--backend' || flag === '--threads') {
      const value = inline ?? argv[++i];
      if (value === undefined) throw new S2CPNetError('CONFIG', `${flag} needs a value`);
      if (flag === '--backend') backend = value;
      else {
        threads = Number(value);
        if (!Number.isInteger(threads) || threads < 1) throw new S2CPNetError('CONFIG', `--threads must be a positive integer, found ${JSON.stringify(value)}`);
      }
    } else rest.push(arg);
  }
  return { rest, backend, threads };
}

/** Runs the CLI with `argv` (without node and script). Returns the exit code; never calls process.exit. */
export async function main(argv: string[], partial: Partial<CommandContext> = {}): Promise<number> {
  const context: CommandContext = {
    stdout: partial.stdout ?? ((t) => process.stdout.write(t)),
    stderr: partial.stderr ?? ((t) => process.stderr.write(t)),
    isTTY: partial.isTTY ?? Boolean(process.stderr.isTTY),
    cwd: partial.cwd ?? process.cwd(),
    signal: partial.signal ?? new AbortController().signal,
  };
  try {
    const { rest, backend, threads } = takeGlobalFlags(argv);
    context.backend = { backend, threads };
    const [name, ...args] = rest;
    if (!name || name === '--help' || name === '-h' || name === 'help') {
      context.stdout(usage());
      return name ? ExitCode.ok : ExitCode.usage;
    }
    if (name === '--version' || name === '-v') {
      context.stdout(`${VERSION}\n`);
      return ExitCode.ok;
    }
    const command: Command | undefined = commands.find((c) => c.name === name);
    if (!command) {
      context.stderr(`s2cpnet: unknown command ${JSON.stringify(name)}; commands: ${commands.map((c) => c.name).join(', ')}\n`);
      return ExitCode.usage;
    }
    if (args.includes('--help') || args.includes('-h')) {
      context.stdout(`${command.summary}\n\nUsage: ${command.usage}\n`);
      return ExitCode.ok;
    }
    return await command.run(args, context);
  } catch (error) {
    return reportError(error, context);
  }
}

export function reportError(error: unknown, context: CommandContext): number {
  if (S2CPNetError.isInstance(error)) {
    context.stderr(`s2cpnet: error: ${error.message}\n`);
    return error.code === 'INTERRUPTED' ? ExitCode.interrupted : error.code === 'CONFIG' ? ExitCode.usage : ExitCode.badInput;
  }
  const code = (error as { code?: string } | null)?.code;
  if (error instanceof TypeError && code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    context.stderr(`s2cpnet: error: ${error.message}\n`);
    return ExitCode.usage;
  }
  if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
    context.stderr(`s2cpnet: error: ${(error as Error).message}\n`);
    return ExitCode.usage;
  }
  context.stderr(`s2cpnet: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  return ExitCode.failure;
}
