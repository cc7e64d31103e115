/**
 * Progress bars with ETA for every long-running command, plus JSONL metrics next to them.
 * The bar goes to stderr (so stdout stays machine-readable) and is silent when stderr is not a TTY,
 * where it prints a plain line every few seconds instead.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
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
 * On resume from the checkpoint of `step`: cuts the metrics file at its first record past that step (or at a torn
 * line), so the steps the resumed run replays are not listed twice, and appends what was cut to `sideFile`
 * (default `<name>.discarded.jsonl` next to it) for anyone who wants the killed run's tail. Returns the number of
 * lines moved.
 */
export function truncateMetricsAfter(path: string, step: number, sideFile?: string): number {
  if (!existsSync(path)) return 0;
  const lines = readFileSync(path, 'utf8').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  let cut = lines.length;
  for (let i = 0; i < lines.length; i++) {
    let rec: { step?: unknown };
    try {
      rec = JSON.parse(lines[i]!) as { step?: unknown };
    } catch {
      cut = i;
      break;
    }
    if (typeof rec.step === 'number' && rec.step > step) {
      cut = i;
      break;
    }
  }
  const moved = lines.slice(cut);
  if (moved.length === 0) return 0;
  const side = sideFile ?? join(dirname(path), `${basename(path, '.jsonl')}.discarded.jsonl`);
  appendFileSync(side, `${moved.join('\n')}\n`);
  const kept = lines.slice(0, cut);
  writeFileSync(path, kept.length ? `${kept.join('\n')}\n` : '');
  return moved.length;
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
