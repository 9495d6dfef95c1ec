// One page's event stream (text/event-stream). Events, each `data:` one JSON object:
//   points   {run, train: [[step, loss]], val: [[step, val_loss]], evals, summary}  lines appended to a followed run
//   reset    {run}           metrics.jsonl was rewritten (a resume): fetch the run's series again
//   removed  {run}           the run folder is gone
//   malformed {run, lines, count}  lines that are not metrics records (skipped)
//   runs     {runs, sweeps}  the run list, when it changed (checked every 2 s)
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RunData, RunDelta } from './run_data.js';
import type { RunStore } from './store.js';
import type { RunWatcher } from './watch.js';

const LIST_MS = 2000;
const PING_MS = 15000;

export function openStream(req: IncomingMessage, res: ServerResponse, ids: string[], store: RunStore, watcher: RunWatcher): () => void {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive' });
  const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  res.write('retry: 2000\n\n');

  const onDelta = (id: string, d: RunDelta, run: RunData) => {
    if (d.missing) return send('removed', { run: id });
    if (d.reset) return send('reset', { run: id });
    if (d.malformed.length) send('malformed', { run: id, lines: d.malformed.slice(-5), count: d.malformed.length });
    if (!d.train.length && !d.eval.length) return;
    send('points', {
      run: id,
      train: d.train.flatMap((p) => (p.loss === null ? [] : [[p.step, p.loss]])),
      val: d.eval.flatMap((p) => (p.valLoss === null ? [] : [[p.step, p.valLoss]])),
      evals: d.eval.length,
      summary: run.summary(),
    });
  };
  const unfollow = ids.map((id) => watcher.follow(id, onDelta));

  let lastList = '';
  const sendList = () => {
    const list = JSON.stringify(store.list());
    if (list !== lastList) {
      lastList = list;
      res.write(`event: runs\ndata: ${list}\n\n`);
    }
  };
  sendList();
  const listTimer = setInterval(sendList, LIST_MS);
  const ping = setInterval(() => res.write(': ping\n\n'), PING_MS);

  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    clearInterval(listTimer);
    clearInterval(ping);
    for (const u of unfollow) u();
    res.end();
  };
  req.on('close', close);
  return close;
}
