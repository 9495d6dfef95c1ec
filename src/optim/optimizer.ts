/**
 * What the trainer needs from an optimizer. A model's parameters are split between optimizers by
 * kind (dense AdamW for most, lazy sparse Adam for PEER's expert tables); the trainer steps all of
 * them, clips by their joint gradient norm, and checkpoints their state by name.
 */
export interface NamedArray {
  dtype: 'F32' | 'BF16' | 'I32';
  shape: number[];
  data: Float32Array | Uint16Array | Int32Array;
}

export interface Optimizer {
  /** Applies one update with learning rate lr (the schedule lives in the trainer). */
  step(lr: number): void;
  /** Sum of squared gradient entries over this optimizer's parameters (dense and sparse). */
  gradSquaredNorm(): number;
  /** Multiplies all gradients by s (gradient clipping, accumulation averaging). */
  scaleGrads(s: number): void;
  /** Drops gradients (dense .grad and sparse chunks). */
  zeroGrad(): void;
  /** Optimizer state by name, e.g. `<param>.exp_avg`, for optimizer.safetensors. */
  stateDict(): Map<string, NamedArray>;
  /** Restores stateDict(); throws naming any missing or mis-shaped entry. */
  loadStateDict(state: Map<string, NamedArray>): void;
  /** Bytes of optimizer state (moments), for memory reports. */
  stateBytes(): number;
}
