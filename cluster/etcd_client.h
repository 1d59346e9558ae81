// A client of etcd's v3 API through its JSON gateway (HTTP/1.1 POST /v3/..., keys and values
// base64 in JSON), over libcurl. Blocking calls for a control thread, never a shard's: each
// takes up to the request timeout per endpoint tried. docs/CLUSTER.md says why this and not
// gRPC.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace hoot::cluster {

struct EtcdOptions {
  std::vector<std::string> endpoints;  // HOST:PORT each, tried in turn.
  std::chrono::milliseconds connect_timeout{500};
  std::chrono::milliseconds request_timeout{3000};
  // How long a call keeps going round the members while none can answer: a leader
  // election takes about a second, and calls made during one should not fail.
  std::chrono::milliseconds retry_within{2000};
};

// "HOST:PORT[,HOST:PORT...]" (the --etcd flag; base::ParseHostPortList) as endpoints.
absl::StatusOr<std::vector<std::string>> ParseEndpoints(std::string_view list);

struct EtcdKeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;
};

struct EtcdRange {
  int64_t revision = 0;  // The store's revision the read saw.
  std::vector<EtcdKeyValue> kvs;
};

// What CreateIfAbsent found or made.
struct EtcdCreated {
  bool created = false;  // False: the key existed, and `kv` is what it holds.
  EtcdKeyValue kv;       // The record under the key now (created: its revisions are set).
};

struct EtcdEvent {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  EtcdKeyValue kv;  // A delete carries the key and its mod_revision only.
};

class EtcdClient {
 public:
  explicit EtcdClient(EtcdOptions options);
  ~EtcdClient();
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  const EtcdOptions& options() const { return options_; }

  // A lease of `ttl`; its id.
  absl::StatusOr<int64_t> GrantLease(std::chrono::seconds ttl);
  // Renews the lease; the TTL it has now, in seconds. NotFound once it has expired (or was
  // revoked): whatever it held is gone.
  absl::StatusOr<int64_t> KeepAlive(int64_t lease);
  absl::Status RevokeLease(int64_t lease);

  // Writes key = value (attached to `lease` unless 0); the store's revision after it.
  absl::StatusOr<int64_t> Put(std::string_view key, std::string_view value, int64_t lease = 0);
  // The key, or every key under the prefix.
  absl::StatusOr<EtcdRange> Get(std::string_view key);
  absl::StatusOr<EtcdRange> GetPrefix(std::string_view prefix);
  // Removes the key; the store's revision after it.
  absl::StatusOr<int64_t> Delete(std::string_view key);
  // Writes key = value only if the key does not exist, in one transaction: of any number of
  // callers racing for one key, exactly one is told `created`.
  absl::StatusOr<EtcdCreated> CreateIfAbsent(std::string_view key, std::string_view value,
                                             int64_t lease = 0);

  // Watches every key under `prefix` from `start_revision` on: calls `on_events` with each
  // batch (in revision order; the revision is the batch's header revision) until it returns
  // false or `stop` becomes true (checked at least once a second), then returns OK. Returns
  // OutOfRange when `start_revision` was compacted away (read the prefix again), Unavailable
  // when the endpoint failed or closed the stream. One endpoint per call: the next call
  // moves on to the next endpoint.
  absl::Status Watch(std::string_view prefix, int64_t start_revision,
                     const std::function<bool(int64_t, const std::vector<EtcdEvent>&)>& on_events,
                     const std::atomic<bool>& stop);

  // The endpoint the last call used (the first one that answered).
  std::string current_endpoint() const;

 private:
  // POSTs `body` to `path` on each endpoint in turn, from the one that answered last, until
  // one answers (any HTTP status with a JSON body); its body. Goes round again, 100 ms
  // apart, for up to retry_within; then Unavailable, naming every endpoint and why.
  absl::StatusOr<std::string> Post(std::string_view path, const std::string& body);

  EtcdOptions options_;
  mutable std::mutex mutex_;  // Guards the handle and the endpoint index.
  void* curl_ = nullptr;      // CURL*, reused so that connections are kept alive.
  size_t endpoint_index_ = 0;
};

}  // namespace hoot::cluster
