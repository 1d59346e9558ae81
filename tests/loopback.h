// Connecting a plain blocking TCP socket to a test's server on 127.0.0.1, and picking a free
// port for one (tools/hootd_process.h).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>

#include "tools/hootd_process.h"

namespace hoot::testing {

// A socket connected to 127.0.0.1:port, or -1. `type_flags` are or-ed into the socket type
// (SOCK_CLOEXEC); `receive_buffer_bytes` (SO_RCVBUF) is set before connecting, since the
// window is agreed then; 0 leaves the kernel's autotuning.
inline int ConnectLoopback(uint16_t port, int type_flags = 0, int receive_buffer_bytes = 0) {
  int fd = ::socket(AF_INET, SOCK_STREAM | type_flags, 0);
  if (fd < 0) return -1;
  if (receive_buffer_bytes > 0) {
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer_bytes, sizeof(receive_buffer_bytes));
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

using tools::FreeLoopbackPort;

}  // namespace hoot::testing
