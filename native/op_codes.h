// Op codes that cross the N-API boundary, one enum per family. The TS side has the same tables in
// src/backend/op_codes.ts; the addon exports these as opCodes() and a test checks they are equal.
// Plain C++ (no N-API) so the ISA-specific translation units can switch on them too.
#pragma once

namespace moelab {

enum class UnaryOp : int { Neg, Exp, Log, Tanh, GeluTanh, GeluErf, Relu, Silu, Sigmoid, Sqrt, Square, Count };
enum class BinaryOp : int { Add, Sub, Mul, Div, Max, Min, Count };
enum class ReduceOp : int { Sum, Max, Count };
enum class PeerAct : int { Gelu, Relu, Count };

// JS names, indexed by code (the order of each enum above).
constexpr const char* kUnaryOpNames[] = {"neg",  "exp", "log",     "tanh", "gelu_tanh", "gelu_erf",
                                         "relu", "silu", "sigmoid", "sqrt", "square"};
constexpr const char* kBinaryOpNames[] = {"add", "sub", "mul", "div", "max", "min"};
constexpr const char* kReduceOpNames[] = {"sum", "max"};
constexpr const char* kPeerActNames[] = {"gelu", "relu"};

static_assert(sizeof(kUnaryOpNames) / sizeof(*kUnaryOpNames) == (int)UnaryOp::Count, "unary names");
static_assert(sizeof(kBinaryOpNames) / sizeof(*kBinaryOpNames) == (int)BinaryOp::Count, "binary names");
static_assert(sizeof(kReduceOpNames) / sizeof(*kReduceOpNames) == (int)ReduceOp::Count, "reduce names");
static_assert(sizeof(kPeerActNames) / sizeof(*kPeerActNames) == (int)PeerAct::Count, "peer act names");

}  // namespace moelab
