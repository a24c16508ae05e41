/*
 * netboot_sockopt: the socket options node:dgram does not expose.
 *
 *   bindToDevice(fd, ifname)  setsockopt(SO_BINDTODEVICE), socket(7): the socket
 *                             receives only packets that arrived on ifname and sends
 *                             through it, whatever the routing table says. This is
 *                             how netboot serves DHCP on the provisioning interfaces
 *                             only, and why broadcast replies leave by the interface
 *                             the request came in on (see reference/DHCP.md).
 *   interfaceIndex(ifname)    if_nametoindex(3), 0 when there is no such interface.
 *   forceBuffer(fd, kind, n)  setsockopt(SO_RCVBUFFORCE / SO_SNDBUFFORCE), socket(7):
 *                             kind "recv" or "send"; like SO_RCVBUF / SO_SNDBUF but
 *                             not capped by net.core.rmem_max / wmem_max. Needs
 *                             CAP_NET_ADMIN (EPERM without it). The kernel doubles
 *                             n for its bookkeeping, as for the plain options.
 *
 * Errors are thrown as Error with `code` set to the errno name (EPERM, ENODEV, …).
 */
#include <errno.h>
#include <stdio.h>
#include <net/if.h>
#include <string.h>
#include <sys/socket.h>
#include <node_api.h>

static napi_value throw_errno (napi_env env, const char *what, int err)
{
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  const char *code = err == EPERM ? "EPERM" : err == ENODEV ? "ENODEV" : err == EBADF ? "EBADF" : err == EINVAL ? "EINVAL" : "EIO";
  napi_throw_error(env, code, msg);
  return NULL;
}

static int get_ifname (napi_env env, napi_value v, char *buf, size_t len)
{
  size_t n = 0;
  if (napi_get_value_string_utf8(env, v, buf, len, &n) != napi_ok || n == 0 || n >= IFNAMSIZ) {
    napi_throw_type_error(env, "EINVAL", "interface name must be 1 to 15 characters");
    return -1;
  }
  return 0;
}

static napi_value bind_to_device (napi_env env, napi_callback_info info)
{
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd = -1;
  char ifname[IFNAMSIZ + 1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, "EINVAL", "bindToDevice(fd, ifname): fd must be a non-negative integer");
    return NULL;
  }
  if (get_ifname(env, argv[1], ifname, sizeof ifname) != 0) return NULL;
  if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname) + 1) != 0) {
    return throw_errno(env, "setsockopt(SO_BINDTODEVICE)", errno);
  }
  return NULL;
}

static napi_value interface_index (napi_env env, napi_callback_info info)
{
  size_t argc = 1;
  napi_value argv[1], result;
  char ifname[IFNAMSIZ + 1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 1 || get_ifname(env, argv[0], ifname, sizeof ifname) != 0) return NULL;
  napi_create_uint32(env, if_nametoindex(ifname), &result);
  return result;
}

static napi_value force_buffer (napi_env env, napi_callback_info info)
{
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd = -1, bytes = -1;
  char kind[8];
  size_t n = 0;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 ||
      napi_get_value_int32(env, argv[2], &bytes) != napi_ok || bytes <= 0) {
    napi_throw_type_error(env, "EINVAL", "forceBuffer(fd, kind, bytes): fd must be a non-negative integer, bytes a positive one");
    return NULL;
  }
  if (napi_get_value_string_utf8(env, argv[1], kind, sizeof kind, &n) != napi_ok ||
      (strcmp(kind, "recv") != 0 && strcmp(kind, "send") != 0)) {
    napi_throw_type_error(env, "EINVAL", "forceBuffer(fd, kind, bytes): kind must be \"recv\" or \"send\"");
    return NULL;
  }
  int recv = strcmp(kind, "recv") == 0;
  int value = bytes;
  if (setsockopt(fd, SOL_SOCKET, recv ? SO_RCVBUFFORCE : SO_SNDBUFFORCE, &value, sizeof value) != 0) {
    return throw_errno(env, recv ? "setsockopt(SO_RCVBUFFORCE)" : "setsockopt(SO_SNDBUFFORCE)", errno);
  }
  return NULL;
}

static napi_value init (napi_env env, napi_value exports)
{
  napi_property_descriptor props[] = {
    { "bindToDevice", NULL, bind_to_device, NULL, NULL, NULL, napi_enumerable, NULL },
    { "interfaceIndex", NULL, interface_index, NULL, NULL, NULL, napi_enumerable, NULL },
    { "forceBuffer", NULL, force_buffer, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
