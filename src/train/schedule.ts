/** Learning-rate schedules: linear warm-up, then cosine decay to minLr (or constant). */
export interface ScheduleConfig {
  lr: number;
  minLr: number;
  warmup: number;
  steps: number;
  schedule: 'cosine' | 'constant';
}

/** Learning rate for 0-based step `step`. */
export function learningRate(c: ScheduleConfig, step: number): number {
  if (c.warmup > 0 && step < c.warmup) return (c.lr * (step + 1)) / c.warmup;
  if (c.schedule === 'constant') return c.lr;
  const span = Math.max(1, c.steps - c.warmup);
  const t = Math.min(1, (step - c.warmup) / span);
  return c.minLr + 0.5 * (c.lr - c.minLr) * (1 + Math.cos(Math.PI * t));
}
