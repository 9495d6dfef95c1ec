// The N-API bodies of the GEMM family, parameterised by kernel set: gemm.cc exports them with the
// fp32 set (gemm, gemmUnary, gemmBatched, gemmGroupedRows, gemmGroupedK) and gemm_bf16.cc with the bf16 one,
// so both precisions share one argument check, one planner and one threading model.
// ks == nullptr means the fp32 kernels of the active ISA; fn names the kernel in error messages.
#pragma once
#include <napi.h>

#include "gemm.h"

namespace moelab {

Napi::Value gemmBody(const Napi::CallbackInfo& info, const char* fn, const gemmk::KernelSet* ks);
Napi::Value gemmBatchedBody(const Napi::CallbackInfo& info, const char* fn, const gemmk::KernelSet* ks);
Napi::Value gemmGroupedRowsBody(const Napi::CallbackInfo& info, const char* fn, const gemmk::KernelSet* ks);
Napi::Value gemmUnaryBody(const Napi::CallbackInfo& info, const char* fn, const gemmk::KernelSet* ks);
Napi::Value gemmGroupedKBody(const Napi::CallbackInfo& info, const char* fn, const gemmk::KernelSet* ks);

// The bf16 kernel set, or a JS Error naming fn when this CPU (or MOELAB_ISA) cannot run it
// (gemm_bf16.cc; the bf16 attention kernels check with it too).
const gemmk::KernelSet& needBf16(const Napi::Env& env, const char* fn);

}  // namespace moelab
