// Reads a growing text file line by line from where it last stopped: each read() returns only the
// complete lines appended since the previous one (a partial last line waits for its newline).
// When the file is replaced (new inode) or shrinks, as a resumed run rewrites metrics.jsonl, read()
// starts over from the beginning and says so with `reset`.
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';

export interface TailRead {
  lines: string[];
  /** The file was replaced or truncated: `lines` start from its beginning again. */
  reset: boolean;
  /** The file does not exist (any more). */
  missing: boolean;
}

const CHUNK = 1 << 20;

export class FileTail {
  private offset = 0;
  private ino = -1;
  private partial = '';
  // keeps a UTF-8 character cut by the writer's (or our chunk's) boundary until its last byte comes
  private decoder = new StringDecoder('utf8');

  constructor(readonly path: string) {}

  private restart(ino: number): void {
    this.ino = ino;
    this.offset = 0;
    this.partial = '';
    this.decoder = new StringDecoder('utf8');
  }

  read(): TailRead {
    let reset = false;
    let st;
    try {
      st = statSync(this.path);
    } catch {
      return { lines: [], reset: false, missing: true };
    }
    if (st.ino !== this.ino || st.size < this.offset) {
      reset = this.ino !== -1;
      this.restart(st.ino);
    }
    if (st.size === this.offset) return { lines: [], reset, missing: false };
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch {
      return { lines: [], reset, missing: true };
    }
    const parts: string[] = [];
    try {
      // the open file may already be a newer one than the stat saw: trust the descriptor
      const fst = fstatSync(fd);
      if (fst.ino !== this.ino) {
        reset = true;
        this.restart(fst.ino);
      }
      const buf = Buffer.allocUnsafe(CHUNK);
      for (;;) {
        const n = readSync(fd, buf, 0, CHUNK, this.offset);
        if (n <= 0) break;
        this.offset += n;
        parts.push(this.decoder.write(buf.subarray(0, n)));
      }
    } finally {
      closeSync(fd);
    }
    const text = this.partial + parts.join('');
    const cut = text.lastIndexOf('\n');
    if (cut < 0) {
      this.partial = text;
      return { lines: [], reset, missing: false };
    }
    this.partial = text.slice(cut + 1);
    return { lines: text.slice(0, cut).split('\n').filter((l) => l.trim() !== ''), reset, missing: false };
  }
}
