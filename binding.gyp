{
  # One addon, three instruction-set tiers (plus AVX512_BF16 kernels within the avx512 tier). Files
  # under native/avx2, native/avx512 and native/avx512bf16 are compiled with their own -m flags into
  # static libraries; only code reached after a cpuid check may call into them, so the
  # addon itself stays at the x86-64 baseline and loads on any CPU.
  "targets": [
    {
      "target_name": "moelab_avx2",
      "type": "static_library",
      "sources": ["<!@(node -e \"const fs=require('fs');console.log(fs.readdirSync('native/avx2').filter(f=>f.endsWith('.cc')).map(f=>'native/avx2/'+f).join(' '))\")"],
      "include_dirs": ["native"],
      "cflags_cc": ["-O3", "-std=c++17", "-mavx2", "-mfma", "-mf16c", "-fno-math-errno", "-fPIC"],
      "cflags_cc!": ["-fno-exceptions"]
    },
    {
      "target_name": "moelab_avx512",
      "type": "static_library",
      "sources": ["<!@(node -e \"const fs=require('fs');console.log(fs.readdirSync('native/avx512').filter(f=>f.endsWith('.cc')).map(f=>'native/avx512/'+f).join(' '))\")"],
      "include_dirs": ["native"],
      "cflags_cc": ["-O3", "-std=c++17", "-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mavx2", "-mfma", "-mf16c", "-mpopcnt", "-fno-math-errno", "-fPIC"],
      "cflags_cc!": ["-fno-exceptions"]
    },
    {
      "target_name": "moelab_avx512bf16",
      "type": "static_library",
      "sources": ["<!@(node -e \"const fs=require('fs');console.log(fs.readdirSync('native/avx512bf16').filter(f=>f.endsWith('.cc')).map(f=>'native/avx512bf16/'+f).join(' '))\")"],
      "include_dirs": ["native"],
      "cflags_cc": ["-O3", "-std=c++17", "-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mavx512bf16", "-mavx2", "-mfma", "-mf16c", "-fno-math-errno", "-fPIC"],
      "cflags_cc!": ["-fno-exceptions"]
    },
    {
      "target_name": "moelab",
      "dependencies": ["moelab_avx2", "moelab_avx512", "moelab_avx512bf16"],
      "sources": ["<!@(node -e \"const fs=require('fs');console.log(fs.readdirSync('native').filter(f=>f.endsWith('.cc')).map(f=>'native/'+f).concat(fs.readdirSync('native/generic').filter(f=>f.endsWith('.cc')).map(f=>'native/generic/'+f)).join(' '))\")"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags_cc": ["-O3", "-std=c++17", "-fno-math-errno", "-pthread"],
      "cflags_cc!": ["-fno-exceptions"],
      "ldflags": ["-pthread"]
    }
  ]
}
