#include "cluster/etcd_client.h"

#include <curl/curl.h>

#include <nlohmann/json.hpp>
#include <thread>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/parse.h"
#include "base/status.h"

namespace hoot::cluster {
namespace {

using Json = nlohmann::json;

// Debian's Abseil has its own string_view, which std::string_view does not convert to.
absl::string_view Absl(std::string_view text) { return {text.data(), text.size()}; }

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string Base64(std::string_view bytes) { return absl::Base64Escape(Absl(bytes)); }

// etcd's gateway writes 64-bit numbers as strings and leaves zeros out.
int64_t Int(const Json& object, const char* name) {
  auto field = object.find(name);
  if (field == object.end()) return 0;
  if (field->is_number_integer()) return field->get<int64_t>();
  int64_t value = 0;
  if (field->is_string() && absl::SimpleAtoi(field->get<std::string>(), &value)) return value;
  return 0;
}

absl::StatusOr<std::string> Unbase64(const Json& object, const char* name) {
  auto field = object.find(name);
  if (field == object.end()) return std::string();
  std::string bytes;
  if (!field->is_string() || !absl::Base64Unescape(field->get<std::string>(), &bytes)) {
    return absl::DataLossError(absl::StrCat("etcd answered a ", name, " that is not base64"));
  }
  return bytes;
}

absl::StatusOr<EtcdKeyValue> KeyValue(const Json& kv) {
  EtcdKeyValue out;
  HOOT_ASSIGN_OR_RETURN(out.key, Unbase64(kv, "key"));
  HOOT_ASSIGN_OR_RETURN(out.value, Unbase64(kv, "value"));
  out.create_revision = Int(kv, "create_revision");
  out.mod_revision = Int(kv, "mod_revision");
  out.version = Int(kv, "version");
  out.lease = Int(kv, "lease");
  return out;
}

absl::StatusOr<Json> ParseJson(const std::string& text) {
  Json parsed = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return absl::DataLossError(
        absl::StrCat("etcd answered something that is not a JSON object: ", text.substr(0, 200)));
  }
  return parsed;
}

int64_t HeaderRevision(const Json& answer) {
  auto header = answer.find("header");
  return header == answer.end() ? 0 : Int(*header, "revision");
}

absl::StatusOr<EtcdRange> Range(const Json& answer) {
  EtcdRange range;
  range.revision = HeaderRevision(answer);
  auto kvs = answer.find("kvs");
  if (kvs != answer.end() && kvs->is_array()) {
    for (const Json& kv : *kvs) {
      HOOT_ASSIGN_OR_RETURN(EtcdKeyValue one, KeyValue(kv));
      range.kvs.push_back(std::move(one));
    }
  }
  return range;
}

// The end of the range of keys that start with `prefix` (etcd's range_end).
std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    if (static_cast<unsigned char>(end.back()) != 0xff) {
      end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // Every key.
}

size_t AppendBody(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

// gRPC codes etcd answers when this member cannot serve (no leader, not in quorum, shutting
// down, timed out): another member may.
bool MemberCannotServe(int grpc_code) { return grpc_code == 14 || grpc_code == 4; }

struct CurlHeaders {
  curl_slist* list = nullptr;
  CurlHeaders() {
    list = curl_slist_append(list, "Content-Type: application/json");
    list = curl_slist_append(list, "Expect:");  // No 100-continue round trip for large bodies.
  }
  ~CurlHeaders() { curl_slist_free_all(list); }
};

}  // namespace

absl::StatusOr<std::vector<std::string>> ParseEndpoints(std::string_view list) {
  HOOT_ASSIGN_OR_RETURN(std::vector<base::HostPort> addresses, base::ParseHostPortList(list));
  std::vector<std::string> endpoints;
  for (const base::HostPort& address : addresses)
    endpoints.push_back(base::FormatHostPort(address));
  return endpoints;
}

EtcdClient::EtcdClient(EtcdOptions options) : options_(std::move(options)) {
  GlobalInit();
  curl_ = curl_easy_init();
}

EtcdClient::~EtcdClient() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

std::string EtcdClient::current_endpoint() const {
  std::lock_guard lock(mutex_);
  return options_.endpoints.empty()
             ? std::string()
             : options_.endpoints[endpoint_index_ % options_.endpoints.size()];
}

absl::StatusOr<std::string> EtcdClient::Post(std::string_view path, const std::string& body) {
  std::lock_guard lock(mutex_);
  if (options_.endpoints.empty()) return absl::FailedPreconditionError("no etcd endpoint given");
  CURL* curl = static_cast<CURL*>(curl_);
  if (curl == nullptr) return absl::InternalError("curl_easy_init failed");
  CurlHeaders headers;
  std::string failures;
  const auto give_up_at = std::chrono::steady_clock::now() + options_.retry_within;
  for (size_t tried = 0;; ++tried) {
    if (tried == options_.endpoints.size()) {
      if (std::chrono::steady_clock::now() >= give_up_at) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      failures.clear();
      tried = 0;
    }
    const std::string& endpoint =
        options_.endpoints[(endpoint_index_ + tried) % options_.endpoints.size()];
    std::string url = absl::StrCat("http://", endpoint, Absl(path));
    std::string answer;
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.list);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, AppendBody);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(options_.connect_timeout.count()));
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.request_timeout.count()));
    CURLcode result = curl_easy_perform(curl);
    if (result != CURLE_OK) {
      absl::StrAppend(&failures, failures.empty() ? "" : "; ", endpoint, ": ",
                      curl_easy_strerror(result));
      continue;
    }
    long http_status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &http_status);
    if (http_status != 200) {
      Json error = Json::parse(answer, nullptr, false);
      int code = error.is_object() ? static_cast<int>(Int(error, "code")) : 0;
      std::string message =
          error.is_object() && error.contains("message") && error["message"].is_string()
              ? error["message"].get<std::string>()
              : answer.substr(0, 200);
      if (MemberCannotServe(code) || (http_status >= 500 && code == 0)) {
        absl::StrAppend(&failures, failures.empty() ? "" : "; ", endpoint, ": ", message);
        continue;
      }
      endpoint_index_ = (endpoint_index_ + tried) % options_.endpoints.size();
      auto status_code =
          code > 0 && code <= 16 ? static_cast<absl::StatusCode>(code) : absl::StatusCode::kUnknown;
      return absl::Status(status_code, absl::StrCat("etcd ", Absl(path), ": ", message));
    }
    endpoint_index_ = (endpoint_index_ + tried) % options_.endpoints.size();
    return answer;
  }
  endpoint_index_ = (endpoint_index_ + 1) % options_.endpoints.size();
  return absl::UnavailableError(absl::StrCat("etcd unavailable (", Absl(path), "): ", failures));
}

absl::StatusOr<int64_t> EtcdClient::GrantLease(std::chrono::seconds ttl) {
  HOOT_ASSIGN_OR_RETURN(std::string text,
                        Post("/v3/lease/grant", Json{{"TTL", std::to_string(ttl.count())}}.dump()));
  HOOT_ASSIGN_OR_RETURN(Json answer, ParseJson(text));
  int64_t lease = Int(answer, "ID");
  if (lease == 0) return absl::DataLossError("etcd granted a lease without an ID: " + text);
  return lease;
}

absl::StatusOr<int64_t> EtcdClient::KeepAlive(int64_t lease) {
  HOOT_ASSIGN_OR_RETURN(std::string text,
                        Post("/v3/lease/keepalive", Json{{"ID", std::to_string(lease)}}.dump()));
  // A stream of answers on the gateway, one per request sent: here one, under "result".
  std::string_view first_line = text;
  first_line = first_line.substr(0, first_line.find('\n'));
  HOOT_ASSIGN_OR_RETURN(Json answer, ParseJson(std::string(first_line)));
  if (answer.contains("error")) {
    return absl::UnavailableError("etcd lease keep-alive failed: " + std::string(first_line));
  }
  const Json& result = answer.contains("result") ? answer["result"] : answer;
  int64_t ttl = Int(result, "TTL");
  if (ttl <= 0) return absl::NotFoundError(absl::StrCat("etcd lease ", lease, " has expired"));
  return ttl;
}

absl::Status EtcdClient::RevokeLease(int64_t lease) {
  return Post("/v3/lease/revoke", Json{{"ID", std::to_string(lease)}}.dump()).status();
}

absl::StatusOr<int64_t> EtcdClient::Put(std::string_view key, std::string_view value,
                                        int64_t lease) {
  Json request{{"key", Base64(key)}, {"value", Base64(value)}};
  if (lease != 0) request["lease"] = std::to_string(lease);
  HOOT_ASSIGN_OR_RETURN(std::string text, Post("/v3/kv/put", request.dump()));
  HOOT_ASSIGN_OR_RETURN(Json answer, ParseJson(text));
  return HeaderRevision(answer);
}

absl::StatusOr<EtcdRange> EtcdClient::Get(std::string_view key) {
  HOOT_ASSIGN_OR_RETURN(std::string text, Post("/v3/kv/range", Json{{"key", Base64(key)}}.dump()));
  HOOT_ASSIGN_OR_RETURN(Json answer, ParseJson(text));
  return Range(answer);
}

absl::StatusOr<EtcdRange> EtcdClient::GetPrefix(std::string_view prefix) {
  Json request{{"key", Base64(prefix)}, {"range_end", Base64(PrefixEnd(prefix))}};
  HOOT_ASSIGN_OR_RETURN(std::string text, Post("/v3/kv/range", request.dump()));
  HOOT_ASSIGN_OR_RETURN(Json answer, ParseJson(text));
  return Range(answer);
}

absl::StatusOr<int64_t> EtcdClient::Delete(std::string_view key) {
  HOOT_ASSIGN_OR_RETURN(std::string text,
                        Post("/v3/kv/deleterange", Json{{"key", Base64(key)}}.dump()));
  HOOT_ASSIGN_OR_RETURN(Json answer, ParseJson(text));
  return HeaderRevision(answer);
}

absl::StatusOr<EtcdCreated> EtcdClient::CreateIfAbsent(std::string_view key, std::string_view value,
                                                       int64_t lease) {
  Json put{{"key", Base64(key)}, {"value", Base64(value)}};
  if (lease != 0) put["lease"] = std::to_string(lease);
  Json request{{"compare", Json::array({Json{{"key", Base64(key)},
                                             {"target", "CREATE"},
                                             {"result", "EQUAL"},
                                             {"create_revision", "0"}}})},
               {"success", Json::array({Json{{"request_put", put}}})},
               {"failure", Json::array({Json{{"request_range", Json{{"key", Base64(key)}}}}})}};
  HOOT_ASSIGN_OR_RETURN(std::string text, Post("/v3/kv/txn", request.dump()));
  HOOT_ASSIGN_OR_RETURN(Json answer, ParseJson(text));
  EtcdCreated out;
  auto succeeded = answer.find("succeeded");
  out.created = succeeded != answer.end() && succeeded->is_boolean() && succeeded->get<bool>();
  if (out.created) {
    int64_t revision = HeaderRevision(answer);
    out.kv = EtcdKeyValue{std::string(key), std::string(value), revision, revision, 1, lease};
    return out;
  }
  const Json* range = nullptr;
  auto responses = answer.find("responses");
  if (responses != answer.end() && responses->is_array() && !responses->empty()) {
    auto found = (*responses)[0].find("response_range");
    if (found != (*responses)[0].end()) range = &*found;
  }
  if (range == nullptr)
    return absl::DataLossError("etcd's failed transaction read nothing: " + text);
  HOOT_ASSIGN_OR_RETURN(EtcdRange existing, Range(*range));
  // Deleted between the compare and the read cannot happen (one transaction), but a caller
  // racing a deletion gets a clear answer rather than an empty record.
  if (existing.kvs.empty())
    return absl::AbortedError(absl::StrCat("etcd key ", Absl(key), " raced"));
  out.kv = std::move(existing.kvs[0]);
  return out;
}

namespace {

struct WatchStream {
  const std::function<bool(int64_t, const std::vector<EtcdEvent>&)>* on_events;
  const std::atomic<bool>* stop;
  std::string pending;
  bool created = false;
  bool done = false;  // The caller asked to stop.
  absl::Status failure;
};

// Handles one line of the watch stream; false ends the stream.
bool WatchLine(WatchStream& stream, const std::string& line) {
  auto parsed = ParseJson(line);
  if (!parsed.ok()) {
    stream.failure = parsed.status();
    return false;
  }
  if (parsed->contains("error")) {
    stream.failure = absl::UnavailableError("etcd watch failed: " + line.substr(0, 200));
    return false;
  }
  const Json& result = parsed->contains("result") ? (*parsed)["result"] : *parsed;
  if (int64_t compacted = Int(result, "compact_revision"); compacted != 0) {
    stream.failure = absl::OutOfRangeError(
        absl::StrCat("etcd watch start was compacted away (compacted up to ", compacted, ")"));
    return false;
  }
  if (result.contains("canceled") && result["canceled"].is_boolean() &&
      result["canceled"].get<bool>()) {
    stream.failure = absl::UnavailableError("etcd canceled the watch: " + line.substr(0, 200));
    return false;
  }
  if (result.contains("created")) stream.created = true;
  auto events = result.find("events");
  if (events == result.end() || !events->is_array() || events->empty()) return true;
  std::vector<EtcdEvent> batch;
  for (const Json& event : *events) {
    EtcdEvent out;
    auto type = event.find("type");
    out.type = type != event.end() && type->is_string() && type->get<std::string>() == "DELETE"
                   ? EtcdEvent::Type::kDelete
                   : EtcdEvent::Type::kPut;
    auto kv = event.find("kv");
    if (kv == event.end()) continue;
    auto parsed_kv = KeyValue(*kv);
    if (!parsed_kv.ok()) {
      stream.failure = parsed_kv.status();
      return false;
    }
    out.kv = std::move(*parsed_kv);
    batch.push_back(std::move(out));
  }
  if (!(*stream.on_events)(HeaderRevision(result), batch)) {
    stream.done = true;
    return false;
  }
  return true;
}

size_t WatchBytes(char* data, size_t size, size_t count, void* user) {
  auto& stream = *static_cast<WatchStream*>(user);
  stream.pending.append(data, size * count);
  size_t start = 0;
  for (size_t end; (end = stream.pending.find('\n', start)) != std::string::npos; start = end + 1) {
    if (end == start) continue;
    if (!WatchLine(stream, stream.pending.substr(start, end - start))) return 0;
  }
  stream.pending.erase(0, start);
  return size * count;
}

int WatchProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto& stream = *static_cast<WatchStream*>(user);
  if (stream.stop->load(std::memory_order_relaxed)) {
    stream.done = true;
    return 1;
  }
  return 0;
}

}  // namespace

absl::Status EtcdClient::Watch(
    std::string_view prefix, int64_t start_revision,
    const std::function<bool(int64_t, const std::vector<EtcdEvent>&)>& on_events,
    const std::atomic<bool>& stop) {
  std::string endpoint;
  {
    std::lock_guard lock(mutex_);
    if (options_.endpoints.empty()) return absl::FailedPreconditionError("no etcd endpoint given");
    endpoint = options_.endpoints[endpoint_index_ % options_.endpoints.size()];
    // The next call (a retry after this stream fails) starts on the next endpoint.
    endpoint_index_ = (endpoint_index_ + 1) % options_.endpoints.size();
  }
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (curl == nullptr) return absl::InternalError("curl_easy_init failed");
  Json request{{"create_request", Json{{"key", Base64(prefix)},
                                       {"range_end", Base64(PrefixEnd(prefix))},
                                       {"start_revision", std::to_string(start_revision)}}}};
  std::string body = request.dump();
  std::string url = absl::StrCat("http://", endpoint, "/v3/watch");
  CurlHeaders headers;
  WatchStream stream{&on_events, &stop, {}, false, false, absl::OkStatus()};
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers.list);
  curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, WatchBytes);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &stream);
  curl_easy_setopt(curl.get(), CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl.get(), CURLOPT_XFERINFOFUNCTION, WatchProgress);
  curl_easy_setopt(curl.get(), CURLOPT_XFERINFODATA, &stream);
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  // A member that dies without closing the connection is noticed by TCP keep-alive probes.
  curl_easy_setopt(curl.get(), CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_TCP_KEEPIDLE, 2L);
  curl_easy_setopt(curl.get(), CURLOPT_TCP_KEEPINTVL, 1L);
  CURLcode result = curl_easy_perform(curl.get());
  if (stream.done) return absl::OkStatus();
  if (!stream.failure.ok()) return stream.failure;
  if (result != CURLE_OK) {
    return absl::UnavailableError(
        absl::StrCat("etcd watch on ", endpoint, " failed: ", curl_easy_strerror(result)));
  }
  long http_status = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &http_status);
  return absl::UnavailableError(
      absl::StrCat("etcd watch on ", endpoint, " ended (HTTP status ", http_status, ")"));
}

}  // namespace hoot::cluster
