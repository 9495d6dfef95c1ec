// Insertion into a descending top-k buffer, shared by the portable and AVX2 PEER retrieval.
// `static` gives each translation unit its own copy: the AVX2 file is compiled with other -m flags,
// and an inline function with external linkage could be merged into one ISA's version for both.
#pragma once
#include <cstdint>

namespace moelab {

// Inserts (v, i) into vals/idx (cnt entries, capacity k), keeping descending order; ties keep the
// earlier index and NaN never displaces an entry. Returns the new count.
static inline int topkInsert(float* vals, int32_t* idx, int cnt, int k, float v, int32_t i) {
  int pos;
  if (cnt == k) {
    if (!(v > vals[k - 1])) return cnt;
    pos = k - 1;
  } else {
    pos = cnt++;
  }
  while (pos > 0 && v > vals[pos - 1]) {
    vals[pos] = vals[pos - 1];
    idx[pos] = idx[pos - 1];
    pos--;
  }
  vals[pos] = v;
  idx[pos] = i;
  return cnt;
}

}  // namespace moelab
