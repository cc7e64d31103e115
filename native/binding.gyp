{
  "targets": [
    {
      "target_name": "glmv_native",
      "sources": [
        "src/addon.cc",
        "src/elementwise.cc",
        "src/rows.cc",
        "src/gemm.cc",
        "src/attention.cc",
        "src/misc.cc",
        "src/mapped.cc",
        "src/quant.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc!": ["-fno-exceptions", "-O2", "-O3"],
      "cflags_cc": ["-std=c++17", "-O3", "-march=native", "-fno-math-errno", "-fopenmp", "-fexceptions"],
      "libraries": ["-ldnnl", "-fopenmp"]
    }
  ]
}
