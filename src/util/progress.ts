/**
 * Progress bars with ETA for every long-running command, plus JSONL metrics next to them.
 * The bar goes to stderr (so stdout stays machine-readable) and is silent when stderr is not a TTY,
 * where it prints a plain line every few seconds instead.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import cliProgress from 'cli-progress';

export interface ProgressOptions {
  /** Label shown before the bar. */
  label: string;
  /** Total number of units (steps, samples...). */
  total: number;
  /** Disable all output (tests). */
  quiet?: boolean;
}

export class Progress {
  private bar: cliProgress.SingleBar | null = null;
  private lastPlain = 0;
  private readonly start = Date.now();
  private value = 0;
  private extra = '';
  private printedFinal = false;

  constructor(private readonly opts: ProgressOptions) {
    if (opts.quiet) return;
    if (process.stderr.isTTY) {
      this.bar = new cliProgress.SingleBar(
        {
          format: `${opts.label} [{bar}] {percentage}% {value}/{total} | ETA {eta_formatted} | {extra}`,
          stream: process.stderr,
          hideCursor: true,
          etaBuffer: 50,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(opts.total, 0, { extra: '' });
    }
  }

  /** Advance to `value` (absolute) and show `extra` (e.g. "loss 1.23"). */
  update(value: number, extra = ''): void {
    this.value = value;
    this.extra = extra;
    if (this.opts.quiet) return;
    if (this.bar) {
      this.bar.update(value, { extra });
      return;
    }
    const now = Date.now();
    const final = value >= this.opts.total && !this.printedFinal;
    if (now - this.lastPlain > 5000 || final) {
      if (final) this.printedFinal = true;
      this.lastPlain = now;
      process.stderr.write(`${this.opts.label} ${value}/${this.opts.total} ETA ${this.eta()} ${extra}\n`);
    }
  }

  increment(by = 1, extra = this.extra): void {
    this.update(this.value + by, extra);
  }

  /** Seconds remaining, formatted, from the average rate so far. */
  eta(): string {
    const elapsed = (Date.now() - this.start) / 1000;
    if (this.value <= 0) return '?';
    const rest = (elapsed / this.value) * (this.opts.total - this.value);
    return formatSeconds(rest);
  }

  stop(): void {
    this.bar?.stop();
    this.bar = null;
  }
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  const sec = Math.round(s % 60);
  return m > 0 ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

/** Appends one JSON object per line; creates the folder. Each record gets a wall-clock timestamp. */
export class MetricsWriter {
  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
  }

  write(record: Record<string, unknown>): void {
    appendFileSync(this.path, `${JSON.stringify({ time: new Date().toISOString(), ...record })}\n`);
  }
}

/**
 * The records a MetricsWriter wrote (none when the file does not exist yet). A line that is not JSON — the torn last
 * line of a run killed mid-write — is skipped, so reports can read the metrics of interrupted runs.
 */
export function readMetricsFile(path: string): Array<Record<string, unknown>> {
  if (!existsSync(path)) return [];
  const out: Array<Record<string, unknown>> = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      // a torn last line of an interrupted run
    }
  }
  return out;
}
