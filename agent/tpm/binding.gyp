{
  "targets": [
    {
      "target_name": "netboot_tpm",
      "sources": ["native/addon.c", "native/ops.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-Wall", "-Wextra", "-O2", "-std=gnu11"],
      "libraries": ["-ltss2-esys", "-ltss2-tctildr", "-ltss2-mu", "-ltss2-rc"]
    }
  ]
}
