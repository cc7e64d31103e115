/** Learning-rate schedules as pure functions of the step (so resume is exact). */

export interface ScheduleOptions {
  /** Peak learning rate. */
  lr: number;
  /** Linear warmup steps from 0 to lr. */
  warmupSteps?: number;
  /** Total steps (end of decay). */
  totalSteps: number;
  /** Final lr as a fraction of the peak (cosine/linear decay floor). */
  minRatio?: number;
}

function check(o: ScheduleOptions): void {
  if (!(o.lr >= 0)) throw new Error(`schedule: lr must be >= 0, got ${o.lr}`);
  if (!Number.isInteger(o.totalSteps) || o.totalSteps <= 0)
    throw new Error(`schedule: totalSteps must be a positive integer, got ${o.totalSteps}`);
  const w = o.warmupSteps ?? 0;
  if (!Number.isInteger(w) || w < 0 || w > o.totalSteps)
    throw new Error(`schedule: warmupSteps must be in [0, totalSteps], got ${w}`);
}

/** Linear warmup to lr over warmupSteps, then `decay(t)` ∈ [0, 1] of the way from lr down to the floor. */
function warmupThen(o: ScheduleOptions, decay: (t: number) => number): (step: number) => number {
  check(o);
  const w = o.warmupSteps ?? 0;
  const floor = (o.minRatio ?? 0) * o.lr;
  return (step) => {
    if (step < w) return (o.lr * (step + 1)) / w;
    const t = Math.min(1, (step - w) / Math.max(1, o.totalSteps - w));
    return floor + (o.lr - floor) * decay(t);
  };
}

/** Linear warmup then cosine decay to minRatio·lr. `step` counts from 0. */
export function cosineSchedule(o: ScheduleOptions): (step: number) => number {
  return warmupThen(o, (t) => 0.5 * (1 + Math.cos(Math.PI * t)));
}

/** Linear warmup then linear decay to minRatio·lr. */
export function linearSchedule(o: ScheduleOptions): (step: number) => number {
  return warmupThen(o, (t) => 1 - t);
}

/** Linear warmup then constant. */
export function constantSchedule(
  o: Omit<ScheduleOptions, 'totalSteps'> & { totalSteps?: number },
): (step: number) => number {
  const w = o.warmupSteps ?? 0;
  return (step) => (step < w ? (o.lr * (step + 1)) / w : o.lr);
}
