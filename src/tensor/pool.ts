/**
 * The buffer pool: Float32Array storage that ops take their outputs, saved activations, gradients and
 * temporaries from, so a training step reuses the previous step's memory instead of fresh arrays.
 * A fresh multi-megabyte Float32Array is zero-filled by V8 and, being fresh mmap'd pages, page-faults
 * on the first touch of every 4 KiB; in steady state a pooled step takes no new pages at all.
 *
 * Ownership (who may hand a buffer back, and when):
 * - Only buffers taken inside a step scope (`stepScope`, opened by the trainer around one optimizer
 *   step) are pooled outputs. Outside a scope `alloc` returns a fresh `new Float32Array` that nothing
 *   ever recycles, so tensors a user holds (eval, generation, tests, custom loops) are never reused.
 * - Inside a scope, the autograd engine releases each intermediate gradient once it is consumed and
 *   each op output's storage once the op's own backward has run (every consumer ran before it).
 *   Gradients adopted by leaves (`.grad`) escape the scope; the trainer releases them after the
 *   optimizer dropped them (zeroGrad). Everything else taken in the scope (outputs no backward reached,
 *   op-internal saved state) is released when the scope closes, normally or by an exception. So
 *   nothing created inside a scope may be read after it closes; plain values (numbers) may leave it.
 * - `scratch` buffers are an op's private temporaries (pooled in or out of a scope): the op releases
 *   them itself and never lets them leave.
 * - Parameters, optimizer state, creation functions (zeros, full, tensor) and anything a module
 *   keeps are never pooled.
 *
 * Contents: `alloc` and `scratch` hand buffers out dirty (every caller's kernel writes every element);
 * `allocZeroed` zero-fills, for kernels that accumulate (indexAdd, scatterAdd, sumInto, partial copies).
 *
 * Size classes: a request of n >= MIN_POOLED elements is served from the class rounded up to 8 steps
 * per power of two (n <= cap < n * 9/8), as a length-n view, so varying sizes (MoE capacity drops)
 * still hit while a buffer wastes under 12.5%. Smaller requests are not pooled (they cost no pages).
 * Memory bound: a new buffer is made only when its class has no free one, so the buffers of a class
 * (live + free) never outnumber the most that were live at once: the pool holds at most
 * sum over classes of (peak live count x class size): per class, what the step's busiest moment held
 * (sizes rounded up by < 12.5%), and it does not grow in steady state (measured: peak RSS is lower
 * than without the pool, whose garbage waits for the GC). A class no scope took in the last STALE_SCOPES
 * scopes (another model, a one-off size) is dropped when a scope closes; `clearPool()` drops every
 * free buffer at once.
 *
 * Switches: MOELAB_POOL=0 turns pooling off (every alloc is fresh: the A/B baseline);
 * MOELAB_POOL_DEBUG=1 fills buffers with NaN when they are handed out dirty (pooled or not, in a scope
 * or not: the whole test suite then checks every op writes all of its output) and when released, and
 * makes a tensor whose storage was released throw on access (see Tensor.f32), so a use after release
 * or a kernel that reads an output it should only write shows up at once.
 */

/** Requests below this many elements (4 KiB) are plain arrays. */
export const MIN_POOLED = 1024;
const STALE_SCOPES = 8;

interface Entry {
  full: Float32Array;
  live: boolean;
  /** Bumped on every hand-out: a tensor built on an older generation reads a recycled buffer. */
  gen: number;
  scope: Scope | null;
  /** The first tensor built on this hand-out (the op output that owns it; views come later). */
  owner: object | null;
}

interface Scope {
  live: Set<Entry>;
}

export interface PoolStats {
  /** Hand-outs served from a free buffer. */
  hits: number;
  /** Hand-outs that allocated a new buffer. */
  misses: number;
  releases: number;
  /** Free buffers dropped because their class went stale. */
  dropped: number;
  liveBytes: number;
  freeBytes: number;
  peakLiveBytes: number;
}

const registry = new WeakMap<ArrayBuffer, Entry>();
const free = new Map<number, Float32Array[]>();
/** Serial of the last scope that took from each class (for trimming). */
const lastTaken = new Map<number, number>();
const scopes: Scope[] = [];
let scopeSerial = 0;
let enabled = process.env.MOELAB_POOL !== '0';
let debug = process.env.MOELAB_POOL_DEBUG === '1';
const st: PoolStats = { hits: 0, misses: 0, releases: 0, dropped: 0, liveBytes: 0, freeBytes: 0, peakLiveBytes: 0 };

/** Turns pooling and the debug checks on or off at run time (defaults: MOELAB_POOL, MOELAB_POOL_DEBUG). */
export function configurePool(o: { enabled?: boolean; debug?: boolean }): void {
  if (o.enabled !== undefined) enabled = o.enabled;
  if (o.debug !== undefined) debug = o.debug;
}

export function poolEnabled(): boolean {
  return enabled;
}

export function poolDebug(): boolean {
  return debug;
}

/** Counters since the last resetPoolStats() (byte gauges are current values). */
export function poolStats(): PoolStats {
  return { ...st };
}

export function resetPoolStats(): void {
  st.hits = st.misses = st.releases = st.dropped = 0;
  st.peakLiveBytes = st.liveBytes;
}

/** Drops every free buffer (the GC takes them); live buffers are unaffected. */
export function clearPool(): void {
  free.clear();
  lastTaken.clear();
  st.freeBytes = 0;
}

/** Capacity of the class serving n elements: n rounded up to 8 steps per power of two. */
export function sizeClass(n: number): number {
  const step = 2 ** Math.max(0, Math.floor(Math.log2(n)) - 3);
  return Math.ceil(n / step) * step;
}

function take(n: number, scope: Scope | null, zero: boolean): Float32Array {
  const cap = sizeClass(n);
  let full = free.get(cap)?.pop();
  let entry: Entry;
  if (full) {
    st.hits++;
    st.freeBytes -= full.byteLength;
    entry = registry.get(full.buffer as ArrayBuffer)!;
  } else {
    st.misses++;
    full = new Float32Array(cap);
    entry = { full, live: false, gen: 0, scope: null, owner: null };
    registry.set(full.buffer as ArrayBuffer, entry);
    zero &&= debug; // a fresh array is zero unless debug filled it
  }
  lastTaken.set(cap, scopeSerial);
  entry.live = true;
  entry.gen++;
  entry.owner = null;
  entry.scope = scope;
  scope?.live.add(entry);
  st.liveBytes += full.byteLength;
  if (st.liveBytes > st.peakLiveBytes) st.peakLiveBytes = st.liveBytes;
  const view = cap === n ? full : full.subarray(0, n);
  if (zero) view.fill(0);
  else if (debug) full.fill(NaN);
  return view;
}

/**
 * A length-n buffer for an op output, saved activation or gradient, contents undefined (the caller
 * writes every element). Pooled inside a step scope, a fresh array outside one.
 */
export function alloc(n: number): Float32Array {
  const scope = scopes.length ? scopes[scopes.length - 1] : null;
  // debug: even a fresh array is handed out as garbage, so every op's tests check it writes all of it
  if (!enabled || !scope || n < MIN_POOLED) return debug ? new Float32Array(n).fill(NaN) : new Float32Array(n);
  return take(n, scope, false);
}

/** As alloc, but all zeros (for kernels that accumulate into their output). */
export function allocZeroed(n: number): Float32Array {
  const scope = scopes.length ? scopes[scopes.length - 1] : null;
  if (!enabled || !scope || n < MIN_POOLED) return new Float32Array(n);
  return take(n, scope, true);
}

/** An op-private temporary, contents undefined; pooled in or out of a scope. The op must release it and never let it escape. */
export function scratch(n: number): Float32Array {
  if (!enabled || n < MIN_POOLED) return debug ? new Float32Array(n).fill(NaN) : new Float32Array(n);
  return take(n, scopes.length ? scopes[scopes.length - 1] : null, false);
}

/**
 * Hands buffers back (null and non-pooled arrays are ignored, so callers need not know where an array
 * came from). Any view of a pooled buffer releases all of it. Releasing a buffer that is not live is
 * a no-op, or an error in debug mode.
 */
export function release(...bufs: (Float32Array | null | undefined)[]): void {
  for (const a of bufs) {
    if (!a) continue;
    const e = registry.get(a.buffer as ArrayBuffer);
    if (!e) continue;
    if (!e.live) {
      if (debug) throw new Error('buffer pool: a buffer was released twice (an op or the engine gave back memory it no longer owned)');
      continue;
    }
    e.live = false;
    e.scope?.live.delete(e);
    e.scope = null;
    e.owner = null;
    st.releases++;
    const bytes = e.full.byteLength;
    st.liveBytes -= bytes;
    if (debug) e.full.fill(NaN);
    let list = free.get(e.full.length);
    if (!list) free.set(e.full.length, (list = []));
    list.push(e.full);
    st.freeBytes += bytes;
  }
}

/** Takes a live pooled buffer out of its scope: it stays live until someone releases it explicitly. */
export function escape(a: Float32Array): void {
  const e = registry.get(a.buffer as ArrayBuffer);
  if (!e || !e.live || !e.scope) return;
  e.scope.live.delete(e);
  e.scope = null;
}

/** True while a step scope is open (the engine may then release activations after backward). */
export function inStepScope(): boolean {
  return enabled && scopes.length > 0;
}

/**
 * Called by the Tensor constructor: the first tensor built on a hand-out owns it. Returns the
 * hand-out's generation (0 for storage that is not pooled).
 */
export function claim(data: Float32Array | Int32Array, t: object): number {
  const e = registry.get(data.buffer as ArrayBuffer);
  if (!e) return 0;
  if (!e.live) {
    if (debug) throw new Error(USE_AFTER_RELEASE);
    return 0;
  }
  e.owner ??= t;
  return e.gen;
}

/** True when t is the tensor that owns its live pooled storage (not a view of another's). */
export function ownsStorage(data: Float32Array | Int32Array, t: object): boolean {
  const e = registry.get(data.buffer as ArrayBuffer);
  return !!e && e.live && e.owner === t;
}

const USE_AFTER_RELEASE = 'buffer pool: this tensor\'s storage was released (used after its training step, or after backward consumed it); copy what you need to keep';

/** Debug check: throws when storage taken at generation `gen` has since been released. */
export function checkLive(data: Float32Array | Int32Array, gen: number): void {
  const e = registry.get(data.buffer as ArrayBuffer);
  if (e && (!e.live || e.gen !== gen)) {
    throw new Error(USE_AFTER_RELEASE);
  }
}

/**
 * Runs fn as one training step's graph work in a scope: ops take pooled buffers, backward releases
 * activations and gradients as it consumes them, and whatever is still live when fn returns or
 * throws goes back to the pool. Nothing built inside may be used afterwards (see the file doc).
 */
export function stepScope<T>(fn: () => T): T {
  const scope: Scope = { live: new Set() };
  scopes.push(scope);
  scopeSerial++;
  try {
    return fn();
  } finally {
    scopes.pop();
    for (const e of [...scope.live]) release(e.full);
    trimStale();
  }
}

function trimStale(): void {
  for (const [cap, list] of free) {
    if (scopeSerial - (lastTaken.get(cap) ?? 0) < STALE_SCOPES) continue;
    for (const b of list) st.freeBytes -= b.byteLength;
    st.dropped += list.length;
    free.delete(cap);
    lastTaken.delete(cap);
  }
}
