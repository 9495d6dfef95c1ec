// keeps the avx2 static library non-empty until kernels land
namespace moelab { int avx2_placeholder = 0; }
