// What a server session needs of its client's connection: io::TcpConnection's surface, as an
// interface so that a session runs (and is tested) without a socket.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace hoot::core::chat {

class Transport {
 public:
  virtual ~Transport() = default;
  // Queues bytes for the client, in order.
  virtual void Send(std::string_view bytes) = 0;
  // The same, sharing one copy between the subscribers of a fan-out page.
  virtual void Send(std::shared_ptr<const std::string> bytes) = 0;
  // Bytes queued and not yet taken by the kernel.
  virtual size_t outbound_bytes() const = 0;
  // Asks for one OnOutboundBelow call once the queued bytes fall to `bytes` or below.
  virtual void NotifyWhenOutboundBelow(size_t bytes) = 0;
  // Stops (and restarts) reading the client: TCP then pushes back on it alone.
  virtual void PauseReceiving() = 0;
  virtual void ResumeReceiving() = 0;
  virtual bool receiving_paused() const = 0;
  // Closes once what is queued has gone (an ERROR that ends the connection).
  virtual void CloseAfterFlush() = 0;
  // Closes now, dropping what is queued.
  virtual void Close() = 0;
};

}  // namespace hoot::core::chat
