# SPDX-License-Identifier: BSD-2-Clause
# The node domain's native addon: the C core (the user domain's sources, see
# sys/node/addon/sources.js) + a thin node-addon-api layer and its libuv
# wake-up glue (sys/node/addon/) + the NBD gateway's engine
# (peers/node/nbd/engine/, a peer's native part built into the same binary:
# one .node to build and ship, see docs/nbd.md). Built by node-gyp (npm install,
# `make node`) or prebuildify (npm run prebuild); loaded with node-gyp-build.
{
  "targets": [
    {
      "target_name": "xseg",
      "sources": [
        "<!@(node sys/node/addon/sources.js)",
        "sys/node/addon/uv_wake.c",
        "sys/node/addon/addon.cc",
        "sys/node/addon/seg.cc",
        "sys/node/addon/port.cc",
        "sys/node/addon/req.cc",
        "sys/node/addon/batch.cc",
        "peers/node/nbd/engine/commands.cc",
        "peers/node/nbd/engine/socket.cc",
        "peers/node/nbd/engine/replies.cc",
        "peers/node/nbd/engine/sockets.cc",
        "peers/node/nbd/engine/control.cc",
        "peers/node/nbd/engine/napi.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "."
      ],
      "defines": [
        "_GNU_SOURCE",
        "XSEG_DOMAIN_NODE",
        "NAPI_VERSION=8",
        "NAPI_DISABLE_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED"
      ],
      "cflags": ["-fvisibility=hidden", "-pthread", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_c": ["-std=c11", "-Wshadow", "-Wstrict-prototypes", "-Wmissing-prototypes"],
      "cflags_cc": ["-std=gnu++17", "-fno-exceptions"],
      "libraries": ["-lrt", "-ldl", "-pthread"]
    }
  ]
}
