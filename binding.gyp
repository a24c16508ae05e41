{
  "targets": [
    {
      "target_name": "netboot_sockopt",
      "sources": ["server/net/native/sockopt.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
