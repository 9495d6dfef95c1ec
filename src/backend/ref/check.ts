// Argument checks shared by the reference kernels: they throw the same error classes as the native
// side (RangeError for bad sizes and values, TypeError for missing arrays).

export function need(ok: boolean, fn: string, msg: string): void {
  if (!ok) throw new RangeError(`${fn}: ${msg}`);
}

/** v must be an integer >= min. */
export function dim(fn: string, name: string, v: number, min = 0): void {
  if (!(Number.isInteger(v) && v >= min)) throw new RangeError(`${fn}: argument '${name}' must be an integer >= ${min}, got ${v}`);
}

/** a must be given and hold at least n elements. */
export function len(fn: string, name: string, a: ArrayLike<number> | null, n: number): void {
  if (!a) throw new TypeError(`${fn}: argument '${name}' is required`);
  if (a.length < n) throw new RangeError(`${fn}: '${name}' has ${a.length} elements, needs ${n}`);
}
