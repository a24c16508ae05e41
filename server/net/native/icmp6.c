/*
 * netboot_icmp6: a raw ICMPv6 socket bound to one interface, for Neighbor
 * Discovery (router advertisements, RFC 4861). Node cannot open raw sockets.
 *
 *   open(ifname, types, joinAllRouters, onPacket) → handle
 *       socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6), non-blocking, with
 *       - SO_BINDTODEVICE ifname (socket(7)): only packets of that interface;
 *       - ICMP6_FILTER passing only the ICMPv6 `types` (RFC 3542 §3.2);
 *       - IPV6_RECVHOPLIMIT and IPV6_RECVPKTINFO (RFC 3542 §6): the receiver
 *         checks the hop limit is 255 (RFC 4861 §6.1);
 *       - IPV6_MULTICAST_HOPS and IPV6_UNICAST_HOPS 255 (RFC 4861 §6.1: every ND
 *         message is sent with hop limit 255), IPV6_MULTICAST_IF, no loopback;
 *       - with joinAllRouters, membership of ff02::2 on the interface (the kernel
 *         joins it only when forwarding; Router Solicitations go there, §6.3.7).
 *       The kernel computes and verifies ICMPv6 checksums on raw ICMPv6 sockets
 *       (RFC 3542 §3.1): packets with a bad checksum never arrive here.
 *       onPacket(data: Buffer, source: string, hopLimit: number) is called on the
 *       main thread (libuv poll) for each datagram, at most 64 per wake-up.
 *   send(handle, data, destination, source)
 *       sendmsg to destination (scoped to the interface) from `source` (IPV6_PKTINFO),
 *       e.g. the interface's link-local address (RFC 4861 §6.1.2: an RA's source
 *       is link-local). The kernel fills the ICMPv6 checksum.
 *   close(handle)
 *       stops polling and closes the descriptor; idempotent.
 *
 * Errors are thrown as Error with `code` set to the errno name (EPERM, ENODEV, …).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <net/if.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <node_api.h>
#include <uv.h>

#define MAX_PER_WAKEUP 64
#define MAX_DATAGRAM 2048

typedef struct {
  int fd;
  unsigned int ifindex;
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_async_context context;
  int open;            /* polling and fd valid */
  int handle_closed;   /* uv_close completed (or never started) */
  int finalized;       /* the JS external is gone */
} icmp6_sock;

static const char *errno_code (int err)
{
  switch (err) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENODEV: return "ENODEV";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case EAGAIN: return "EAGAIN";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case ENETUNREACH: return "ENETUNREACH";
    case ENETDOWN: return "ENETDOWN";
    case ENOBUFS: return "ENOBUFS";
    case EMSGSIZE: return "EMSGSIZE";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    default: return "EIO";
  }
}

static napi_value throw_errno (napi_env env, const char *what, int err)
{
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, errno_code(err), msg);
  return NULL;
}

static void maybe_free (icmp6_sock *s)
{
  if (s->handle_closed && s->finalized) free(s);
}

static void on_handle_closed (uv_handle_t *h)
{
  icmp6_sock *s = (icmp6_sock *)h->data;
  s->handle_closed = 1;
  maybe_free(s);
}

/* Stops polling, closes the descriptor, drops the callback; memory goes once libuv and JS both let go. */
static void do_close (icmp6_sock *s)
{
  if (!s->open) return;
  s->open = 0;
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, on_handle_closed);
  close(s->fd);
  s->fd = -1;
  if (s->callback != NULL) { napi_delete_reference(s->env, s->callback); s->callback = NULL; }
  if (s->context != NULL) { napi_async_destroy(s->env, s->context); s->context = NULL; }
}

static void finalize (napi_env env, void *data, void *hint)
{
  (void)env; (void)hint;
  icmp6_sock *s = (icmp6_sock *)data;
  do_close(s);
  s->finalized = 1;
  maybe_free(s);
}

static void deliver (icmp6_sock *s, const unsigned char *buf, size_t len, const struct in6_addr *src, int hop_limit)
{
  napi_env env = s->env;
  napi_handle_scope scope;
  napi_value argv[3], cb, recv, result;
  char text[INET6_ADDRSTRLEN];
  void *copy = NULL;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  inet_ntop(AF_INET6, src, text, sizeof text);
  napi_create_buffer_copy(env, len, buf, &copy, &argv[0]);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &argv[1]);
  napi_create_int32(env, hop_limit, &argv[2]);
  napi_get_reference_value(env, s->callback, &cb);
  napi_get_global(env, &recv); /* napi_make_callback needs an object as `this` */
  if (napi_make_callback(env, s->context, recv, cb, 3, argv, &result) == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err);
  }
  napi_close_handle_scope(env, scope);
}

static void on_readable (uv_poll_t *h, int status, int events)
{
  icmp6_sock *s = (icmp6_sock *)h->data;
  (void)events;
  if (status < 0) return;
  for (int i = 0; i < MAX_PER_WAKEUP && s->open; i++) {
    unsigned char buf[MAX_DATAGRAM];
    unsigned char control[CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(struct in6_pktinfo)) + 64];
    struct sockaddr_in6 from;
    struct iovec iov = { buf, sizeof buf };
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_name = &from;
    msg.msg_namelen = sizeof from;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = recvmsg(s->fd, &msg, 0);
    if (n < 0) return; /* EAGAIN: drained; other errors: the next wake-up retries */
    if (msg.msg_flags & MSG_TRUNC) continue; /* longer than any ND message we accept */
    int hop_limit = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
        memcpy(&hop_limit, CMSG_DATA(c), sizeof(int));
      }
    }
    deliver(s, buf, (size_t)n, &from.sin6_addr, hop_limit);
  }
}

static int get_string (napi_env env, napi_value v, char *buf, size_t len, const char *what)
{
  size_t n = 0;
  if (napi_get_value_string_utf8(env, v, buf, len, &n) != napi_ok || n == 0 || n >= len - 1) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s: expected a non-empty string shorter than %zu characters", what, len - 1);
    napi_throw_type_error(env, "EINVAL", msg);
    return -1;
  }
  return 0;
}

static napi_value sock_open (napi_env env, napi_callback_info info)
{
  size_t argc = 4;
  napi_value argv[4];
  char ifname[IFNAMSIZ + 1];
  bool is_array = false, join = false;
  uint32_t ntypes = 0;
  napi_valuetype cbtype;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 4) { napi_throw_type_error(env, "EINVAL", "open(ifname, types, joinAllRouters, onPacket)"); return NULL; }
  if (get_string(env, argv[0], ifname, sizeof ifname, "interface name") != 0) return NULL;
  if (napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array) { napi_throw_type_error(env, "EINVAL", "types must be an array of ICMPv6 types"); return NULL; }
  napi_get_array_length(env, argv[1], &ntypes);
  if (napi_get_value_bool(env, argv[2], &join) != napi_ok) { napi_throw_type_error(env, "EINVAL", "joinAllRouters must be a boolean"); return NULL; }
  if (napi_typeof(env, argv[3], &cbtype) != napi_ok || cbtype != napi_function) { napi_throw_type_error(env, "EINVAL", "onPacket must be a function"); return NULL; }

  struct icmp6_filter filter;
  ICMP6_FILTER_SETBLOCKALL(&filter);
  for (uint32_t i = 0; i < ntypes; i++) {
    napi_value el;
    uint32_t type = 256;
    napi_get_element(env, argv[1], i, &el);
    if (napi_get_value_uint32(env, el, &type) != napi_ok || type > 255) { napi_throw_type_error(env, "EINVAL", "ICMPv6 types are 0 to 255"); return NULL; }
    ICMP6_FILTER_SETPASS(type, &filter);
  }

  unsigned int ifindex = if_nametoindex(ifname);
  if (ifindex == 0) return throw_errno(env, "if_nametoindex", ENODEV);
  int fd = socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMPV6);
  if (fd < 0) return throw_errno(env, "socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6)", errno);
  int one = 1, zero = 0, hops = 255, idx = (int)ifindex;
  const char *step = NULL;
  if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname) + 1) != 0) step = "setsockopt(SO_BINDTODEVICE)";
  else if (setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof filter) != 0) step = "setsockopt(ICMP6_FILTER)";
  else if (setsockopt(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &one, sizeof one) != 0) step = "setsockopt(IPV6_RECVHOPLIMIT)";
  else if (setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one) != 0) step = "setsockopt(IPV6_RECVPKTINFO)";
  else if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof hops) != 0) step = "setsockopt(IPV6_MULTICAST_HOPS)";
  else if (setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &hops, sizeof hops) != 0) step = "setsockopt(IPV6_UNICAST_HOPS)";
  else if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof idx) != 0) step = "setsockopt(IPV6_MULTICAST_IF)";
  else if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &zero, sizeof zero) != 0) step = "setsockopt(IPV6_MULTICAST_LOOP)";
  else if (join) {
    struct ipv6_mreq mreq;
    memset(&mreq, 0, sizeof mreq);
    inet_pton(AF_INET6, "ff02::2", &mreq.ipv6mr_multiaddr);
    mreq.ipv6mr_interface = ifindex;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &mreq, sizeof mreq) != 0) step = "setsockopt(IPV6_JOIN_GROUP ff02::2)";
  }
  if (step != NULL) {
    int err = errno;
    close(fd);
    return throw_errno(env, step, err);
  }

  icmp6_sock *s = calloc(1, sizeof *s);
  if (s == NULL) { close(fd); return throw_errno(env, "calloc", ENOMEM); }
  s->fd = fd;
  s->ifindex = ifindex;
  s->env = env;
  s->handle_closed = 1; /* until uv_poll_init succeeds */
  uv_loop_t *loop = NULL;
  napi_value name, handle;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || uv_poll_init(loop, &s->poll, fd) != 0) {
    close(fd);
    free(s);
    napi_throw_error(env, "EIO", "cannot poll the ICMPv6 socket");
    return NULL;
  }
  s->handle_closed = 0;
  s->poll.data = s;
  s->open = 1;
  napi_create_reference(env, argv[3], 1, &s->callback);
  napi_value resource;
  napi_create_object(env, &resource);
  napi_create_string_utf8(env, "netboot:icmp6", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, resource, name, &s->context);
  uv_poll_start(&s->poll, UV_READABLE, on_readable);
  if (napi_create_external(env, s, finalize, NULL, &handle) != napi_ok) {
    do_close(s);
    s->finalized = 1;
    maybe_free(s);
    napi_throw_error(env, "EIO", "cannot create the socket handle");
    return NULL;
  }
  return handle;
}

static icmp6_sock *get_sock (napi_env env, napi_value v)
{
  void *data = NULL;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external || napi_get_value_external(env, v, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, "EINVAL", "not an ICMPv6 socket handle");
    return NULL;
  }
  return (icmp6_sock *)data;
}

static napi_value sock_send (napi_env env, napi_callback_info info)
{
  size_t argc = 4;
  napi_value argv[4];
  char dst_text[INET6_ADDRSTRLEN + 1], src_text[INET6_ADDRSTRLEN + 1];
  void *data = NULL;
  size_t len = 0;
  bool is_buffer = false;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 4) { napi_throw_type_error(env, "EINVAL", "send(handle, data, destination, source)"); return NULL; }
  icmp6_sock *s = get_sock(env, argv[0]);
  if (s == NULL) return NULL;
  if (!s->open) return throw_errno(env, "send on a closed ICMPv6 socket", EBADF);
  if (napi_is_buffer(env, argv[1], &is_buffer) != napi_ok || !is_buffer) { napi_throw_type_error(env, "EINVAL", "data must be a Buffer"); return NULL; }
  napi_get_buffer_info(env, argv[1], &data, &len);
  if (get_string(env, argv[2], dst_text, sizeof dst_text, "destination") != 0) return NULL;
  if (get_string(env, argv[3], src_text, sizeof src_text, "source") != 0) return NULL;

  struct sockaddr_in6 dst;
  memset(&dst, 0, sizeof dst);
  dst.sin6_family = AF_INET6;
  if (inet_pton(AF_INET6, dst_text, &dst.sin6_addr) != 1) { napi_throw_type_error(env, "EINVAL", "destination is not an IPv6 address"); return NULL; }
  dst.sin6_scope_id = s->ifindex;
  struct in6_pktinfo pi;
  memset(&pi, 0, sizeof pi);
  if (inet_pton(AF_INET6, src_text, &pi.ipi6_addr) != 1) { napi_throw_type_error(env, "EINVAL", "source is not an IPv6 address"); return NULL; }
  pi.ipi6_ifindex = s->ifindex;

  unsigned char control[CMSG_SPACE(sizeof pi)];
  memset(control, 0, sizeof control);
  struct iovec iov = { data, len };
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_name = &dst;
  msg.msg_namelen = sizeof dst;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = IPPROTO_IPV6;
  c->cmsg_type = IPV6_PKTINFO;
  c->cmsg_len = CMSG_LEN(sizeof pi);
  memcpy(CMSG_DATA(c), &pi, sizeof pi);
  if (sendmsg(s->fd, &msg, 0) < 0) return throw_errno(env, "sendmsg", errno);
  return NULL;
}

static napi_value sock_close (napi_env env, napi_callback_info info)
{
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 1) { napi_throw_type_error(env, "EINVAL", "close(handle)"); return NULL; }
  icmp6_sock *s = get_sock(env, argv[0]);
  if (s == NULL) return NULL;
  do_close(s);
  return NULL;
}

static napi_value init (napi_env env, napi_value exports)
{
  napi_property_descriptor props[] = {
    { "open", NULL, sock_open, NULL, NULL, NULL, napi_enumerable, NULL },
    { "send", NULL, sock_send, NULL, NULL, NULL, napi_enumerable, NULL },
    { "close", NULL, sock_close, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
