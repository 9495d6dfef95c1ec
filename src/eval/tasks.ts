// A task by name or path: an existing file is read as JSONL (task_format.ts); otherwise the name
// must be a built-in task (builtin_tasks.ts). A file's items keep file order (so `--limit N` takes its
// first N test lines); built-in tasks serve their test items in a fixed shuffled order.
import { existsSync } from 'node:fs';
import { loadTaskFile, TaskFormatError, type Task } from './task_format.js';
import { builtinTask, isBuiltinTask, BUILTIN_TASK_NAMES, TaskUnavailableError, type BuiltinTaskOptions } from './builtin_tasks.js';

/** Throws TaskFormatError for an unknown name or a bad file, TaskUnavailableError for a built-in task whose data is missing. */
export function resolveTask(nameOrPath: string, o: BuiltinTaskOptions = {}): Task {
  if (existsSync(nameOrPath)) return loadTaskFile(nameOrPath);
  if (isBuiltinTask(nameOrPath)) return builtinTask(nameOrPath, o);
  throw new TaskFormatError(`task '${nameOrPath}' is neither a file nor a built-in task (${BUILTIN_TASK_NAMES.join(', ')})`);
}

/**
 * Several tasks; a built-in task whose data is not installed (TaskUnavailableError) is left out and
 * reported through `onNotice` rather than failing the others. Any other problem throws.
 */
export function resolveTasks(namesOrPaths: string[], onNotice: (message: string) => void, o: BuiltinTaskOptions = {}): Task[] {
  const out: Task[] = [];
  for (const n of namesOrPaths) {
    try {
      out.push(resolveTask(n, o));
    } catch (e) {
      if (!(e instanceof TaskUnavailableError)) throw e;
      onNotice(e.message);
    }
  }
  return out;
}
