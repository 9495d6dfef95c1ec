// A task by name or path: an existing file is read as JSONL (task_format.ts); otherwise the name
// must be a built-in task (builtin_tasks.ts).
import { existsSync } from 'node:fs';
import { loadTaskFile, TaskFormatError, type Task } from './task_format.js';
import { builtinTask, BUILTIN_TASK_NAMES, type BuiltinTaskName } from './builtin_tasks.js';

export function resolveTask(nameOrPath: string): Task {
  if (existsSync(nameOrPath)) return loadTaskFile(nameOrPath);
  if ((BUILTIN_TASK_NAMES as readonly string[]).includes(nameOrPath)) return builtinTask(nameOrPath as BuiltinTaskName);
  throw new TaskFormatError(`task '${nameOrPath}' is neither a file nor a built-in task (${BUILTIN_TASK_NAMES.join(', ')})`);
}
