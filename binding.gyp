# densetrain native addon: the install-time build. `npm install` runs scripts/install-native.mjs,
# which runs npm's own node-gyp on this file. native/CMakeLists.txt (cmake-js) is the developer
# build; test/native-build.test.ts checks that both compile the same sources with the same
# per-ISA flags. Kernel translation units each get their own instruction-set flags (never tuned to the
# build machine's CPU): the ISA is chosen at run time from CPUID.
{
  "variables": {
    "dt_cflags_cc": ["-std=c++17", "-O3", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math", "-fvisibility=hidden", "-fno-exceptions", "-fno-rtti", "-fPIC", "-Wall", "-Wextra", "-Wno-unused-parameter"],
    "dt_avx2_flags": ["-mavx2", "-mfma"],
    "dt_avx512_flags": ["-mavx512f", "-mavx512dq", "-mavx512bw", "-mavx512vl", "-mavx2", "-mfma"],
    "dt_avx512bf16_flags": ["-mavx512f", "-mavx512dq", "-mavx512bw", "-mavx512vl", "-mavx512bf16", "-mavx2", "-mfma"]
  },
  "targets": [
    {
      "target_name": "densetrain",
      "sources": [
        "native/src/addon.cc",
        "native/src/args.cc",
        "native/src/cpu.cc",
        "native/src/gather.cc",
        "native/src/tensor_memory.cc",
        "native/src/thread_pool.cc",
        "native/src/train_step.cc",
        "native/src/isa_generic.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["<@(dt_cflags_cc)"],
      "xcode_settings": {
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "GCC_ENABLE_CPP_EXCEPTIONS": "NO",
        "MACOSX_DEPLOYMENT_TARGET": "11.0",
        "OTHER_CPLUSPLUSFLAGS": ["<@(dt_cflags_cc)"]
      },
      "msvs_settings": {
        "VCCLCompilerTool": { "AdditionalOptions": ["/std:c++17", "/O2", "/fp:precise"] }
      },
      "conditions": [
        ["target_arch=='x64'", {
          "defines": ["DENSETRAIN_X86"],
          "dependencies": ["densetrain_avx2", "densetrain_avx512", "densetrain_avx512bf16"]
        }]
      ]
    }
  ],
  "conditions": [
    ["target_arch=='x64'", {
      "targets": [
        {
          "target_name": "densetrain_avx2",
          "type": "static_library",
          "sources": ["native/src/isa_avx2.cc"],
          "defines": ["DENSETRAIN_X86"],
          "cflags_cc": ["<@(dt_cflags_cc)", "<@(dt_avx2_flags)"],
          "xcode_settings": {
            "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
            "OTHER_CPLUSPLUSFLAGS": ["<@(dt_cflags_cc)", "<@(dt_avx2_flags)"]
          },
          "msvs_settings": {
            "VCCLCompilerTool": { "AdditionalOptions": ["/std:c++17", "/O2", "/arch:AVX2"] }
          }
        },
        {
          "target_name": "densetrain_avx512",
          "type": "static_library",
          "sources": ["native/src/isa_avx512.cc"],
          "defines": ["DENSETRAIN_X86"],
          "cflags_cc": ["<@(dt_cflags_cc)", "<@(dt_avx512_flags)"],
          "xcode_settings": {
            "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
            "OTHER_CPLUSPLUSFLAGS": ["<@(dt_cflags_cc)", "<@(dt_avx512_flags)"]
          },
          "msvs_settings": {
            "VCCLCompilerTool": { "AdditionalOptions": ["/std:c++17", "/O2", "/arch:AVX512"] }
          }
        },
        {
          "target_name": "densetrain_avx512bf16",
          "type": "static_library",
          "sources": ["native/src/isa_avx512bf16.cc"],
          "defines": ["DENSETRAIN_X86"],
          "cflags_cc": ["<@(dt_cflags_cc)", "<@(dt_avx512bf16_flags)"],
          "xcode_settings": {
            "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
            "OTHER_CPLUSPLUSFLAGS": ["<@(dt_cflags_cc)", "<@(dt_avx512bf16_flags)"]
          },
          "msvs_settings": {
            "VCCLCompilerTool": { "AdditionalOptions": ["/std:c++17", "/O2", "/arch:AVX512"] }
          }
        }
      ]
    }]
  ]
}
