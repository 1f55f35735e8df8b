/** What a command may touch: its output streams and whether stderr is a terminal (for progress bars). */
export interface CommandContext {
  /** Machine-readable results (JSON with --json) and tables go here. */
  stdout: (text: string) => void;
  /** Logs, progress and errors go here. */
  stderr: (text: string) => void;
  /** True when stderr is a terminal: draw a progress bar; else print plain progress lines. */
  isTTY: boolean;
  /** Working directory that relative paths are resolved against. */
  cwd: string;
  /** Aborted on Ctrl-C; long work saves its state and stops. */
  signal: AbortSignal;
  /** Global `--backend` / `--threads` flags, for commands that run TensorFlow.js. */
  backend?: { backend?: string; threads?: number };
}

/** One verb of the `s2cpnet` command. `run` returns the process exit code. */
export interface Command {
  name: string;
  summary: string;
  usage: string;
  run(argv: string[], context: CommandContext): Promise<number>;
}

/** Exit codes shared by every command. */
export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  badInput: 3,
  interrupted: 130,
} as const;
