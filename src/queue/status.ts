// `moelab sweep status --queue`: each point's run folder (the truth) next to its queue job (where
// it waits or which worker trains it, at what step), readable from any machine.
import { requireManifest, runDirOf, type ManifestPoint } from '../study/manifest.js';
import { pointStatus, type PointStatus } from '../study/status.js';
import type { SweepQueue, QueuedJob } from './sweep_queue.js';

export interface QueuedPointStatus {
  point: ManifestPoint;
  status: PointStatus;
  queued: QueuedJob;
}

export async function sweepQueueStatus(queue: SweepQueue, sweepDir: string): Promise<QueuedPointStatus[]> {
  const m = requireManifest(sweepDir);
  const out: QueuedPointStatus[] = [];
  for (const point of m.points) {
    const dir = runDirOf(sweepDir, point.hash);
    const id = queue.idOf({ hash: point.hash, config: point.config, dir });
    out.push({ point, status: pointStatus(dir, point.steps), queued: await queue.inspect(id) });
  }
  return out;
}
