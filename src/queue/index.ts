// The distributed sweep queue (Redis + BullMQ): workers on any number of machines train sweep
// points through the same runJob as a local sweep; run folders on a shared file system hold the results.
export { QUEUE_NAME, DEFAULT_TIMINGS, redactUrl, redisOptions, checkRedis, QueueUrlError, type QueueTimings } from './connection.js';
export { validateJob, relativeRunDir, jobIdFor, JobRefused, type QueueJobData } from './job_data.js';
export { startQueueWorker, type QueueWorker, type QueueWorkerOptions, type WorkerEvent, type JobProgress, type JobResult } from './worker.js';
export { SweepQueue, type SweepQueueOptions, type EnqueueOptions, type EnqueueReport, type QueuedJob, type QueuedState } from './sweep_queue.js';
export { QueueExecutor, type QueueExecutorOptions } from './queue_executor.js';
export { sweepQueueStatus, type QueuedPointStatus } from './status.js';
