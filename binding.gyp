{
  "targets": [
    {
      "target_name": "netboot_sockopt",
      "sources": ["server/net/native/sockopt.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    },
    {
      "target_name": "netboot_icmp6",
      "sources": ["server/net/native/icmp6.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
