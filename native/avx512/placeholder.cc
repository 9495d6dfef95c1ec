// keeps the avx512 static library non-empty until kernels land
namespace moelab { int avx512_placeholder = 0; }
