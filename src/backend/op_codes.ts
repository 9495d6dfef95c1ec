/**
 * Op codes passed across the N-API boundary, by family. The native side declares the same codes as
 * C++ enums in native/op_codes.h and exports its table as `opCodes()`; a test checks that the two
 * agree exactly, so a code is never added on one side only.
 */

/** Elementwise unary ops, by code. gelu_tanh: 0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3))); gelu_erf: 0.5x(1+erf(x/sqrt2)). */
export const UnaryOp = {
  neg: 0, exp: 1, log: 2, tanh: 3, gelu_tanh: 4, gelu_erf: 5, relu: 6, silu: 7, sigmoid: 8, sqrt: 9, square: 10,
} as const;
export type UnaryOpName = keyof typeof UnaryOp;

/** Elementwise binary ops, by code: out = a OP b. */
export const BinaryOp = { add: 0, sub: 1, mul: 2, div: 3, max: 4, min: 5 } as const;
export type BinaryOpName = keyof typeof BinaryOp;

/** Reductions over one axis, by code. */
export const ReduceOp = { sum: 0, max: 1 } as const;
export type ReduceOpName = keyof typeof ReduceOp;

/** PEER expert activations, by code: gelu = exact erf GELU, relu. */
export const PeerAct = { gelu: 0, relu: 1 } as const;
export type PeerActName = keyof typeof PeerAct;

/** Every family, in the shape the addon's opCodes() returns. */
export const OP_CODES = { unary: UnaryOp, binary: BinaryOp, reduce: ReduceOp, peerAct: PeerAct } as const;
