#include "tools/load/driver.h"

#include <netdb.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tools/load/driver_internal.h"

namespace hoot::load::internal {

// ---- Set-up ----------------------------------------------------------------------------------

absl::Status Driver::Start() {
  // The open-loop schedule wakes the loop with a timeout: without this, the kernel may fire
  // it up to 50 us late (the default timer slack), all of it counted as latency.
  ::prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  io::RingOptions ring_options;
  ring_options.entries = 4096;
  HOOT_ASSIGN_OR_RETURN(ring_, io::Ring::Create(ring_options));
  io::TcpServerOptions tcp_options;
  // Replay streams megabytes: large receive buffers mean fewer completions per byte.
  tcp_options.buffer_bytes = 64u << 10;
  tcp_options.buffer_count = 512;
  tcp_options.outbound_bytes_max = 256u << 20;  // Only sends are queued here; never a cap.
  tcp_options.direct_descriptors = false;
  HOOT_ASSIGN_OR_RETURN(tcp_, io::TcpServer::Create(*ring_, tcp_options, this));
  auto signer = auth::TokenSigner::FromSecretFile(config_.secret_file);
  if (!signer.ok()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("cannot sign tokens: %s", signer.status().message()));
  }
  signer_.emplace(std::move(*signer));

  if (config_.servers.empty()) return absl::InvalidArgumentError("no server to connect to");
  servers_.resize(config_.servers.size());  // Sized once: each address points into its own.
  for (size_t i = 0; i < config_.servers.size(); ++i) {
    const base::HostPort& server = config_.servers[i];
    Server& resolved_server = servers_[i];
    resolved_server.text = base::FormatHostPort(server);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    int resolved =
        ::getaddrinfo(server.host.c_str(), std::to_string(server.port).c_str(), &hints, &found);
    if (resolved != 0 || found == nullptr) {
      return absl::UnavailableError(
          absl::StrFormat("cannot resolve %s: %s", server.host, ::gai_strerror(resolved)));
    }
    std::memcpy(&resolved_server.sockaddr, found->ai_addr, found->ai_addrlen);
    resolved_server.address = *found;
    resolved_server.address.ai_addr = reinterpret_cast<sockaddr*>(&resolved_server.sockaddr);
    resolved_server.address.ai_next = nullptr;
    resolved_server.address.ai_canonname = nullptr;
    ::freeaddrinfo(found);
  }

  for (uint32_t channel = 0; channel < workload_.channels; ++channel) {
    channel_names_.push_back(workload_.ChannelName(channel));
  }
  subscriptions_per_channel_ = workload_.SubscribersPerChannel();
  channel_epochs_.assign(workload_.channels, 0);
  std::random_device random;
  client_message_id_base_ = (uint64_t{random()} << 32 | random()) | (uint64_t{1} << 63);
  body_.assign(workload_.body_bytes, '.');
  result_.generator.ring_flags = ring_->DescribeSetupFlags();

  for (uint32_t publisher = 0; publisher < workload_.publishers; ++publisher) {
    Connection& connection = AddConnection(Role::kPublisher, publisher);
    connection.channels = workload_.PublisherChannels(publisher);
    if (workload_.replay) connection.channels = {0};
  }
  uint32_t subscribers = workload_.replay ? 1 : workload_.subscribers;
  for (uint32_t subscriber = 0; subscriber < subscribers; ++subscriber) {
    Connection& connection = AddConnection(Role::kSubscriber, subscriber);
    connection.channels =
        workload_.replay ? std::vector<uint32_t>{0} : workload_.SubscriberChannels(subscriber);
  }
  result_.generator.connections = connections_.size();
  return absl::OkStatus();
}

Connection& Driver::AddConnection(Role role, uint32_t index) {
  auto connection = std::make_unique<Connection>();
  connection->role = role;
  connection->index = index;
  connection->user = absl::StrFormat("load-%s-%d", role == Role::kPublisher ? "pub" : "sub", index);
  Connection& added = *connection;
  (role == Role::kPublisher ? publishers_ : subscribers_).push_back(&added);
  connections_.push_back(std::move(connection));
  return added;
}

absl::Status Driver::Connect(const std::vector<Connection*>& connections) {
  // Long enough for any run; the token never needs renewing mid-run.
  int64_t expiry = static_cast<int64_t>(std::time(nullptr)) + 24 * 3600;
  for (Connection* connection : connections) {
    const Server& server = servers_[next_server_++ % servers_.size()];
    HOOT_ASSIGN_OR_RETURN(int fd, ConnectSocket(server.address, server.text));
    adopting_ = connection;
    connection->tcp = tcp_->Adopt(fd);
    adopting_ = nullptr;
    auto hello = connection->session.Hello(signer_->Mint(connection->user, expiry), kClientName);
    if (!hello.ok()) return hello.status();
    connection->setup_requests[*hello] = {SetupRequest::Kind::kHello, 0};
    MarkDirty(*connection);
  }
  FlushDirty();
  awaiting_ = 0;
  for (Connection* connection : connections) awaiting_ += connection->welcomed ? 0 : 1;
  HOOT_RETURN_IF_ERROR(AwaitAnswers("the handshakes (HELLO, WELCOME)"));
  uint32_t body_bytes_max = connections.front()->session.welcome()->body_bytes_max;
  if (workload_.body_bytes > body_bytes_max) {
    return absl::FailedPreconditionError(
        absl::StrFormat("--body-bytes %d is over the server's limit of %d (WELCOME.body_bytes_max)",
                        workload_.body_bytes, body_bytes_max));
  }
  return absl::OkStatus();
}

absl::Status Driver::CreateChannels(Connection& creator) {
  for (uint32_t channel = 0; channel < workload_.channels; ++channel) {
    auto id = creator.session.CreateChannel(channel_names_[channel], proto::Visibility::kPublic);
    if (!id.ok()) return id.status();
    creator.setup_requests[*id] = {SetupRequest::Kind::kCreate, channel};
    ++awaiting_;
  }
  MarkDirty(creator);
  FlushDirty();
  return AwaitAnswers("CREATE_CHANNEL answers");
}

absl::Status Driver::AskForEachChannel(
    const std::vector<Connection*>& connections, SetupRequest::Kind kind, std::string_view what,
    const std::function<absl::StatusOr<uint32_t>(Connection&, uint32_t channel)>& ask) {
  for (Connection* connection : connections) {
    for (uint32_t channel : connection->channels) {
      absl::StatusOr<uint32_t> id = ask(*connection, channel);
      if (!id.ok()) return id.status();
      connection->setup_requests[*id] = {kind, channel};
      ++awaiting_;
    }
    MarkDirty(*connection);
  }
  FlushDirty();
  return AwaitAnswers(what);
}

absl::Status Driver::Join(const std::vector<Connection*>& connections) {
  return AskForEachChannel(connections, SetupRequest::Kind::kJoin, "JOIN answers",
                           [this](Connection& connection, uint32_t channel) {
                             return connection.session.Join(channel_names_[channel]);
                           });
}

absl::Status Driver::Subscribe(const std::vector<Connection*>& subscribers) {
  // From the head: only messages of this run are owed, and nothing is replayed.
  return AskForEachChannel(subscribers, SetupRequest::Kind::kSubscribe, "SUBSCRIBE answers",
                           [this](Connection& subscriber, uint32_t channel) {
                             const JoinedChannel& joined = subscriber.joined.at(channel);
                             return subscriber.session.Subscribe(
                                 channel_names_[channel], joined.epoch, joined.head_seq,
                                 /*from_read_cursor=*/false);
                           });
}

absl::Status Driver::AwaitAnswers(std::string_view what) {
  uint64_t asked = awaiting_;
  int64_t deadline = MonotonicNs() + kSetupStepTimeoutNs;
  // Bounded by the deadline.
  while (awaiting_ > 0 && fatal_.ok()) {
    if (stop_ != nullptr && stop_->load()) return absl::CancelledError("stopped during set-up");
    if (MonotonicNs() > deadline) {
      return absl::DeadlineExceededError(absl::StrFormat("no answer within %d s to %d of %d %s",
                                                         kSetupStepTimeoutNs / kSecond, awaiting_,
                                                         asked, what));
    }
    ring_->ReapWithTimeout(10 * kMillisecond);
    FlushDirty();
  }
  return fatal_;
}

absl::Status Driver::SetUpLive() {
  std::vector<Connection*> all;
  for (auto& connection : connections_) all.push_back(connection.get());
  HOOT_RETURN_IF_ERROR(Connect(all));
  HOOT_RETURN_IF_ERROR(CreateChannels(*publishers_.front()));
  HOOT_RETURN_IF_ERROR(Join(all));
  return Subscribe(subscribers_);
}

// ---- The ring's callbacks --------------------------------------------------------------------

void Driver::OnAccept(io::TcpConnection& connection) { connection.user_data = adopting_; }

void Driver::OnData(io::TcpConnection& tcp, std::string_view data) {
  if (shut_down_) return;
  Connection& connection = *static_cast<Connection*>(tcp.user_data);
  int64_t arrival_ns = MonotonicNs();
  connection.bytes_received += data.size();
  absl::Status status = connection.session.Feed(
      data, [&](const client::FrameView& frame) { OnFrame(connection, frame, arrival_ns); });
  if (!status.ok()) ProtocolViolation(connection, std::string(status.message()));
  if (connection.tcp != nullptr && !connection.tcp->closing()) Flush(connection);
  // A busy ring can keep the loop dispatching completions for a while: sends that fell due
  // meanwhile go now, not when the loop comes round.
  if (sending_ && workload_.mode == LoopMode::kOpen && schedule_.NextIntended() <= arrival_ns) {
    SendDue(arrival_ns);
    FlushDirty();
    ring_->Submit();
  }
}

void Driver::OnFrame(Connection& connection, const client::FrameView& frame, int64_t arrival_ns) {
  if (connection.tcp == nullptr || connection.tcp->closing()) return;  // After a violation.
  // The session has checked it (an answer to a request in flight, of a type that request
  // allows; a MESSAGE next in its subscription): what is left is to count it.
  if (frame.type == MessageType::kMessage) {
    return HandleMessage(connection, std::get<proto::Message>(*frame.message), frame.bytes.size(),
                         arrival_ns);
  }
  // SENT answers only a SEND (the session checked); an ERROR answers a SEND if one is pending.
  if (frame.type == MessageType::kSent) {
    return HandleSent(connection, frame.correlation_id, std::get<proto::Sent>(*frame.message),
                      arrival_ns);
  }
  if (frame.type == MessageType::kError && frame.correlation_id != 0 &&
      connection.pending_sends.contains(frame.correlation_id)) {
    return HandleSendError(connection, frame.correlation_id,
                           std::get<proto::Error>(*frame.message));
  }
  Handle(connection, frame);
}

void Driver::OtherEpoch(Connection& connection, uint32_t channel, uint64_t epoch) {
  ++result_.errors.epoch_changes;
  NoteError(absl::StrFormat("%s: epoch %d in %s, which had epoch %d at set-up", connection.user,
                            epoch, channel_names_[channel], channel_epochs_[channel]));
}

void Driver::ProtocolViolation(Connection& connection, std::string_view what) {
  ++result_.errors.protocol_violations;
  std::string text = absl::StrFormat("%s: %s", connection.user, what);
  NoteError(text);
  Fail(absl::DataLossError(text));
  // The rest of the stream cannot be trusted.
  if (connection.tcp != nullptr) connection.tcp->Close();
}

void Driver::OnClose(io::TcpConnection& tcp, int error) {
  Connection& connection = *static_cast<Connection*>(tcp.user_data);
  connection.closed = true;
  connection.tcp = nullptr;
  if (shut_down_) return;
  ++result_.errors.connections_lost;
  std::string why = !connection.last_server_error.empty()
                        ? "after the server's ERROR " + connection.last_server_error
                    : error != 0 ? std::string(std::strerror(error))
                                 : std::string("closed by the server");
  std::string text = absl::StrFormat("the connection of %s ended: %s", connection.user, why);
  NoteError(text);
  Fail(absl::UnavailableError(text));
  // Its sends in flight will never be answered.
  result_.errors.unanswered_sends += connection.pending_sends.size();
  pending_total_ -= connection.pending_sends.size();
  connection.pending_sends.clear();
}

void Driver::Handle(Connection& connection, const client::FrameView& incoming) {
  switch (incoming.type) {
    case MessageType::kStreamLag:
      if (std::get<proto::StreamLag>(*incoming.message).mode == proto::StreamMode::kFromLog) {
        ++result_.stream_lag_notices;
      }
      return;
    case MessageType::kSubscriptionEnded:
      ++result_.errors.subscriptions_ended;
      NoteError(absl::StrFormat(
          "%s: SUBSCRIPTION_ENDED in %s (%s)", connection.user,
          std::get<proto::SubscriptionEnded>(*incoming.message).channel,
          proto::ErrorCodeName(std::get<proto::SubscriptionEnded>(*incoming.message).reason)));
      return;
    default: break;
  }
  if (incoming.correlation_id == 0) {
    if (incoming.type == MessageType::kHistoryReset) {
      ++result_.errors.subscriptions_ended;
      NoteError(absl::StrFormat("%s: pushed HISTORY_RESET in %s", connection.user,
                                std::get<proto::HistoryReset>(*incoming.message).channel));
    } else if (incoming.type == MessageType::kError) {
      const auto& error = std::get<proto::Error>(*incoming.message);
      ++result_.errors.server_errors[std::string(proto::ErrorCodeName(error.code))];
      connection.last_server_error =
          absl::StrFormat("%s: %s", proto::ErrorCodeName(error.code), error.text);
      NoteError(absl::StrFormat("%s got ERROR %s", connection.user, connection.last_server_error));
    }
    return;
  }
  if (auto it = connection.setup_requests.find(incoming.correlation_id);
      it != connection.setup_requests.end()) {
    SetupRequest request = it->second;
    connection.setup_requests.erase(it);
    HandleSetupAnswer(connection, request, incoming);
    return;
  }
  if (incoming.type == MessageType::kError) {
    const auto& error = std::get<proto::Error>(*incoming.message);
    ++result_.errors.server_errors[std::string(proto::ErrorCodeName(error.code))];
    NoteError(absl::StrFormat("%s got ERROR %s: %s", connection.user,
                              proto::ErrorCodeName(error.code), error.text));
  }
  // Anything else answers a request hoot-load does not track (none is sent): nothing to do.
}

void Driver::HandleSetupAnswer(Connection& connection, const SetupRequest& request,
                               const client::FrameView& incoming) {
  --awaiting_;
  const std::string& channel = channel_names_[request.channel];
  if (incoming.type == MessageType::kError) {
    const auto& error = std::get<proto::Error>(*incoming.message);
    if (request.kind == SetupRequest::Kind::kCreate &&
        error.code == proto::ErrorCode::kChannelExists) {
      return;  // Made by an earlier run: used as it is.
    }
    ++result_.errors.server_errors[std::string(proto::ErrorCodeName(error.code))];
    std::string what = request.kind == SetupRequest::Kind::kHello    ? std::string("HELLO")
                       : request.kind == SetupRequest::Kind::kCreate ? "CREATE_CHANNEL " + channel
                       : request.kind == SetupRequest::Kind::kJoin   ? "JOIN " + channel
                                                                     : "SUBSCRIBE " + channel;
    Fail(absl::FailedPreconditionError(
        absl::StrFormat("%s by %s: ERROR %s: %s", what, connection.user,
                        proto::ErrorCodeName(error.code), error.text)));
    return;
  }
  switch (incoming.type) {
    case MessageType::kWelcome: connection.welcomed = true; return;
    case MessageType::kChannelInfo: {
      const auto& info = std::get<proto::ChannelInfo>(*incoming.message);
      if (request.kind == SetupRequest::Kind::kJoin) {
        connection.joined[request.channel] = {info.epoch, info.head_seq};
        channel_epochs_[request.channel] = info.epoch;
      }
      return;
    }
    case MessageType::kSubscribed: {
      const auto& subscribed = std::get<proto::Subscribed>(*incoming.message);
      checker_.Subscribed(connection.index, request.channel, subscribed.after_seq + 1);
      channel_epochs_[request.channel] = subscribed.epoch;
      if (replaying_) {
        replay_first_seq_ = subscribed.after_seq + 1;
        replay_head_seq_ = subscribed.head_seq;
        replay_last_seq_ = subscribed.after_seq;
      }
      return;
    }
    case MessageType::kHistoryReset: {
      const auto& reset = std::get<proto::HistoryReset>(*incoming.message);
      Fail(absl::FailedPreconditionError(absl::StrFormat(
          "SUBSCRIBE %s by %s: HISTORY_RESET (the channel's history changed during set-up: "
          "epoch %d, seqs %d..%d)",
          channel, connection.user, reset.epoch, reset.first_seq, reset.head_seq)));
      return;
    }
    default:
      Fail(absl::InternalError(absl::StrFormat("%s: unexpected %s during set-up", connection.user,
                                               proto::MessageTypeName(incoming.type))));
  }
}

// ---- Traffic ---------------------------------------------------------------------------------

std::optional<uint32_t> Driver::ChannelIndex(std::string_view name) const {
  // Replays and fan-outs bring one channel's messages back to back.
  if (last_channel_index_ < channel_names_.size() && channel_names_[last_channel_index_] == name) {
    return last_channel_index_;
  }
  const std::string& prefix = workload_.channel_prefix;
  if (name.size() <= prefix.size() + 1 || name.substr(0, prefix.size()) != prefix ||
      name[prefix.size()] != '-') {
    return std::nullopt;
  }
  uint64_t index = 0;
  for (char c : name.substr(prefix.size() + 1)) {
    if (c < '0' || c > '9' || index > workload_.channels) return std::nullopt;
    index = index * 10 + static_cast<uint64_t>(c - '0');
  }
  if (index >= channel_names_.size() || channel_names_[index] != name) return std::nullopt;
  last_channel_index_ = static_cast<uint32_t>(index);
  return last_channel_index_;
}

bool Driver::SendOne(Connection& publisher, int64_t intended_ns, int64_t issued_ns) {
  if (publisher.closed) {
    ++result_.errors.unanswered_sends;
    return false;
  }
  uint64_t counter = publisher.messages_sent++;
  uint32_t channel = workload_.replay ? 0 : workload_.PublisherChannel(publisher.index, counter);
  StampBody(body_.data(), intended_ns, publisher.index, counter);
  // Unique per user for this run (the counter), and unlike any earlier run's (the random
  // base): the server's deduplication must never take a new message for a retry.
  uint64_t client_message_id =
      client_message_id_base_ + (uint64_t{publisher.index} << 40) + counter;
  bool measured =
      intended_ns >= measure_start_ns_ && intended_ns < send_end_ns_ && phase_ != Phase::kSetup;
  absl::StatusOr<uint32_t> id =
      publisher.session.Send(channel_names_[channel], client_message_id, body_);
  if (!id.ok()) {
    // Names and the body were checked against the protocol's limits before the run: only a
    // session the server broke refuses (its connection is closing).
    ++result_.errors.unanswered_sends;
    return false;
  }
  // The session's ids are unique among its requests in flight.
  bool fresh =
      publisher.pending_sends.try_emplace(*id, PendingSend{intended_ns, channel, measured}).second;
  HOOT_CHECK(fresh);
  ++pending_total_;
  ++result_.sent_total;
  // The achieved rate counts sends by when they left, so a late generator shows.
  if (issued_ns >= measure_start_ns_ && issued_ns < send_end_ns_ && phase_ != Phase::kSetup) {
    ++result_.sent_measured;
  }
  MarkDirty(publisher);
  return true;
}

void Driver::SendDue(int64_t now_ns) {
  bool finished = false;
  int64_t lag =
      schedule_.SendDue(now_ns, measure_start_ns_, send_end_ns_, &result_, &finished,
                        [&](uint64_t message, int64_t intended) {
                          SendOne(*publishers_[message % publishers_.size()], intended, now_ns);
                        });
  interval_lag_max_ns_ = std::max(interval_lag_max_ns_, lag);
  if (finished) sending_ = false;
}

void Driver::HandleSent(Connection& publisher, uint32_t correlation_id, const proto::Sent& sent,
                        int64_t arrival_ns) {
  auto it = publisher.pending_sends.find(correlation_id);
  if (it == publisher.pending_sends.end()) return;  // Its connection's sends were written off.
  PendingSend pending = it->second;
  publisher.pending_sends.erase(it);
  --pending_total_;
  ++result_.acked_total;
  last_ack_ns_ = arrival_ns;
  if (arrival_ns >= measure_start_ns_ && arrival_ns < send_end_ns_ && phase_ != Phase::kSetup) {
    ++result_.acked_measured;
  }
  uint64_t latency = static_cast<uint64_t>(std::max<int64_t>(0, arrival_ns - pending.intended_ns));
  if (pending.measured) {
    result_.ack_latency.Record(latency);
  } else if (phase_ == Phase::kWarmup) {
    warmup_ack_.Record(latency);
  }
  checker_.Acknowledged(pending.channel, sent.seq);
  if (sent.epoch != channel_epochs_[pending.channel]) {
    OtherEpoch(publisher, pending.channel, sent.epoch);
  }
  expected_deliveries_ += subscriptions_per_channel_[pending.channel];
  if (sent.flags & proto::kSentDuplicate) {
    ++result_.errors.duplicate_acks;
    NoteError(absl::StrFormat("%s: SENT seq %d in %s flagged duplicate", publisher.user, sent.seq,
                              channel_names_[pending.channel]));
  }
  if (workload_.mode == LoopMode::kClosed && sending_ && send_budget_ > 0 &&
      arrival_ns < send_end_ns_) {
    if (send_budget_ != UINT64_MAX) --send_budget_;
    SendOne(publisher, arrival_ns, arrival_ns);
  }
}

void Driver::HandleSendError(Connection& publisher, uint32_t correlation_id,
                             const proto::Error& error) {
  // The send is answered: it is neither pending nor acknowledged.
  ++result_.errors.server_errors[std::string(proto::ErrorCodeName(error.code))];
  std::string hint = error.code == proto::ErrorCode::kRateLimited
                         ? " (start hootd with --send-rate 0 for load runs)"
                         : "";
  NoteError(absl::StrFormat("%s: SEND answered ERROR %s: %s%s", publisher.user,
                            proto::ErrorCodeName(error.code), error.text, hint));
  // Not replaced in closed loop: a server refusing every send would otherwise be asked again
  // as fast as it can refuse; the window shrinks instead, and the run fails.
  if (publisher.pending_sends.erase(correlation_id) > 0) --pending_total_;
}

void Driver::HandleMessage(Connection& subscriber, const proto::Message& message,
                           size_t frame_bytes, int64_t arrival_ns) {
  std::optional<uint32_t> channel = ChannelIndex(message.channel);
  if (subscriber.role != Role::kSubscriber || !channel.has_value()) {
    // Publishers subscribe to nothing, and subscribers only to the run's channels.
    return ProtocolViolation(
        subscriber, absl::StrFormat("server broke the protocol: MESSAGE seq %d of %s, which "
                                    "this connection never subscribed to",
                                    message.record.seq, message.channel));
  }
  checker_.Delivered(subscriber.index, *channel, message.record.seq);
  if (message.epoch != channel_epochs_[*channel]) OtherEpoch(subscriber, *channel, message.epoch);
  ++result_.delivered_total;
  if (replaying_) {
    replay_last_seq_ = message.record.seq;
    replay_last_arrival_ns_ = arrival_ns;
    return;
  }
  if (arrival_ns >= measure_start_ns_ && arrival_ns < send_end_ns_) {
    ++result_.delivered_measured;
    result_.delivered_bytes_measured += frame_bytes;
  }
  std::string_view body = message.record.body;
  if (body.size() < kBodyBytesMin || BodyPublisher(body) >= workload_.publishers) {
    ++result_.errors.foreign_messages;
    return;
  }
  int64_t intended = BodyIntendedNs(body);
  if (intended < start_ns_ || intended > arrival_ns) {
    ++result_.errors.foreign_messages;
    return;
  }
  auto latency = static_cast<uint64_t>(arrival_ns - intended);
  if (intended >= measure_start_ns_ && intended < send_end_ns_) {
    result_.e2e_latency.Record(latency);
  } else if (intended < measure_start_ns_) {
    warmup_e2e_.Record(latency);
  }
}

void Driver::MarkDirty(Connection& connection) {
  if (connection.dirty) return;
  connection.dirty = true;
  dirty_.push_back(&connection);
}

void Driver::Flush(Connection& connection) {
  std::string& outbound = connection.session.outbound();
  if (outbound.empty()) return;
  if (connection.tcp != nullptr) connection.tcp->Send(std::string_view(outbound));
  outbound.clear();
}

void Driver::FlushDirty() {
  for (Connection* connection : dirty_) {
    connection->dirty = false;
    Flush(*connection);
  }
  dirty_.clear();
}

void Driver::BeginMeasurement() {
  phase_ = Phase::kMeasure;
  generator_load_.Start();
  server_cpu_start_ = ReadProcessCpu(config_.server_pid);
}

void Driver::NoteGeneratorLoad(int64_t start_ns, int64_t end_ns) {
  generator_load_.Stop(end_ns - start_ns, &result_.generator);
}

void Driver::EndMeasurement() {
  result_.measured_seconds =
      static_cast<double>(std::max<int64_t>(0, send_end_ns_ - measure_start_ns_)) / kSecond;
  NoteGeneratorLoad(measure_start_ns_, MonotonicNs());
  NoteServerCpu();
}

void Driver::NoteServerCpu() {
  std::optional<ProcessCpu> server_cpu_end = ReadProcessCpu(config_.server_pid);
  if (server_cpu_start_ && server_cpu_end) {
    result_.server_cpu = ProcessCpu{server_cpu_end->user_ns - server_cpu_start_->user_ns,
                                    server_cpu_end->system_ns - server_cpu_start_->system_ns};
  }
}

bool Driver::Drained() const {
  return pending_total_ == 0 && result_.delivered_total >= expected_deliveries_;
}

uint64_t Driver::RunningErrors() const {
  CheckerCounts counts = checker_.counts();
  return result_.errors.Total() + counts.gaps + counts.duplicates + counts.out_of_order +
         counts.unexpected;
}

void Driver::NoteError(std::string text) {
  if (result_.errors.first_error.empty()) result_.errors.first_error = std::move(text);
}

void Driver::Fail(absl::Status status) {
  if (phase_ == Phase::kSetup && fatal_.ok()) fatal_ = std::move(status);
}

void Driver::PrintProgress(int64_t now_ns, std::string_view phase, std::string_view note) {
  Counters now{result_.sent_total, result_.acked_total, result_.delivered_total, ThreadCpuNs(),
               now_ns};
  if (progress_ != nullptr && config_.progress) {
    double seconds = static_cast<double>(now.at_ns - last_progress_.at_ns) / kSecond;
    auto rate = [seconds](uint64_t later, uint64_t earlier) {
      return seconds > 0 ? static_cast<double>(later - earlier) / seconds : 0.0;
    };
    ProgressSnapshot snapshot;
    snapshot.workload = workload_.name;
    snapshot.phase = std::string(phase);
    snapshot.elapsed_seconds = static_cast<double>(now_ns - start_ns_) / kSecond;
    snapshot.sent_per_second = rate(now.sent, last_progress_.sent);
    snapshot.acked_per_second = rate(now.acked, last_progress_.acked);
    snapshot.delivered_per_second = rate(now.delivered, last_progress_.delivered);
    if (!workload_.replay) {
      const LatencyHistogram& ack = phase_ == Phase::kWarmup ? warmup_ack_ : result_.ack_latency;
      const LatencyHistogram& e2e = phase_ == Phase::kWarmup ? warmup_e2e_ : result_.e2e_latency;
      snapshot.ack_p99_ns = ack.ValueAtPercentile(99);
      snapshot.e2e_p99_ns = e2e.ValueAtPercentile(99);
    }
    snapshot.errors = RunningErrors();
    snapshot.cpu_share =
        seconds > 0 ? static_cast<double>(now.cpu_ns - last_progress_.cpu_ns) / (seconds * kSecond)
                    : 0;
    snapshot.schedule_lag_ns = interval_lag_max_ns_;
    snapshot.note = std::string(note);
    *progress_ << FormatProgressLine(snapshot) << std::flush;
  }
  interval_lag_max_ns_ = 0;
  last_progress_ = now;
}

}  // namespace hoot::load::internal
