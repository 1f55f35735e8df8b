import type { CommandContext } from './command';

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(r).padStart(2, '0')}` : `${m}:${String(r).padStart(2, '0')}`;
}

/**
 * Progress of long work on stderr: a redrawn bar on a terminal, otherwise a plain line at most every
 * `intervalMs` (and at the end), so logs stay readable in CI.
 */
export class ProgressBar {
  private lastPrint = 0;
  private drawn = false;

  constructor(
    private readonly context: Pick<CommandContext, 'stderr' | 'isTTY'>,
    private readonly label: string,
    private readonly intervalMs = 5000,
  ) {}

  update(done: number, total: number, details: string): void {
    const now = Date.now();
    const percent = total > 0 ? Math.min(100, Math.floor((100 * done) / total)) : 100;
    if (this.context.isTTY) {
      const width = 24;
      const filled = total > 0 ? Math.round((width * Math.min(done, total)) / total) : width;
      this.context.stderr(`\r${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(percent).padStart(3)}% ${done}/${total} ${details}\x1b[K`);
      this.drawn = true;
    } else if (now - this.lastPrint >= this.intervalMs || done >= total) {
      this.context.stderr(`${this.label} ${done}/${total} (${percent}%) ${details}\n`);
      this.lastPrint = now;
    }
  }

  /** Ends the bar's line before other output. */
  end(): void {
    if (this.drawn) this.context.stderr('\n');
    this.drawn = false;
  }
}
