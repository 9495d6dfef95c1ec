/** A problem with the data a run was given; `path` names the file or folder at fault. */
export class CorpusError extends Error {
  constructor(message: string, readonly path?: string) {
    super(message);
    this.name = 'CorpusError';
  }
}
