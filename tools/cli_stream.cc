// `hoot send`, `hoot tail` and `hoot history`: the commands that stream messages.
#include "tools/cli.h"

#include "tools/cli_internal.h"

namespace hoot::tools::cli_internal {

int Cli::Send() {
  const std::string& channel = line_.operands[0];
  // TEXT from the command line is one message; else each non-empty line of `in_`.
  std::optional<std::string> text;
  if (line_.operands.size() > 1) {
    text = line_.operands[1];
    for (size_t i = 2; i < line_.operands.size(); ++i) *text += " " + line_.operands[i];
  }
  bool input_done = false;
  auto next_body = [&]() -> std::optional<std::string> {
    if (text.has_value()) {
      input_done = true;
      return std::move(text);
    }
    std::string input_line;
    while (std::getline(in_, input_line)) {
      if (!input_line.empty() && input_line.back() == '\r') input_line.pop_back();
      if (!input_line.empty()) return input_line;
    }
    input_done = true;
    return std::nullopt;
  };
  // More input can be read without waiting (or the end is known): keep the window full
  // rather than first collect the answers in flight.
  auto input_ready = [&]() { return !text.has_value() && in_.rdbuf()->in_avail() != 0; };

  int exit_code = kExitOk;
  std::unique_ptr<Client> client = MustConnect(&exit_code);
  if (client == nullptr) return exit_code;

  struct Pending {
    uint64_t client_message_id = 0;
    std::string body;
    uint32_t correlation_id = 0;
  };
  std::deque<Pending> window;
  int reconnects = 0;  // Since the last acknowledgement.
  std::string last_refusal;

  // Reconnects and sends every message in the window again, with the same ids, in order.
  auto recover = [&](absl::Status cause) -> absl::Status {
    Notice((IsConnectionFailure(cause) ? "lost the connection to " + Server()
                                       : Server() + " cannot reach the channel's owner") +
           " (" + Describe(cause) + "); reconnecting");
    while (true) {
      if (++reconnects > kSendReconnectAttempts) return cause;
      Sleep(Backoff(reconnects));
      absl::StatusOr<std::unique_ptr<Client>> fresh = Reconnect();
      if (!fresh.ok()) {
        if (!IsConnectionFailure(fresh.status())) return fresh.status();
        cause = fresh.status();
        continue;
      }
      client = std::move(*fresh);
      absl::Status resent;
      for (Pending& pending : window) {
        absl::StatusOr<uint32_t> correlation =
            client->SendAsync(channel, pending.client_message_id, pending.body);
        if (!correlation.ok()) {
          resent = correlation.status();
          break;
        }
        pending.correlation_id = *correlation;
      }
      if (resent.ok()) {
        Notice("reconnected to " + Server() + "; sending " + std::to_string(window.size()) +
               " unacknowledged message(s) again");
        return absl::OkStatus();
      }
      if (!IsConnectionFailure(resent)) return resent;
      cause = resent;
    }
  };
  auto refused = [&](const absl::Status& status) {
    // The same refusal for a whole window of messages is said once.
    std::string description = Describe(status);
    if (description != last_refusal) Fail(status);
    last_refusal = description;
    exit_code = std::max(exit_code, ExitCodeFor(status));
    input_done = true;  // Send nothing more; the messages in flight are still reported.
  };
  // A send or a wait for `message` failed: a lost connection is recovered, any other failure
  // refuses the message, which leaves the window. False when the connection is lost for good
  // (exit_code says so).
  auto recover_or_refuse = [&](const absl::Status& status,
                               std::deque<Pending>::iterator message) -> bool {
    if (client::IsTransientFailure(status)) {
      absl::Status recovered = recover(status);
      if (recovered.ok()) return true;
      exit_code = Fail(recovered, "lost the connection to " + Server());
      return false;
    }
    window.erase(message);
    refused(status);
    return true;
  };

  while (true) {
    while (!input_done && window.size() < kSendWindow && (window.empty() || input_ready())) {
      std::optional<std::string> body = next_body();
      if (!body.has_value()) break;
      if (body->size() > proto::kBodyBytesMax) {
        out_ << std::flush;
        err_ << "hoot: a message of " << body->size() << " bytes is over the protocol's "
             << proto::kBodyBytesMax << "\n";
        exit_code = std::max(exit_code, kExitUsage);
        input_done = true;
        break;
      }
      uint64_t id = 0;
      while (id == 0) id = random_();
      window.push_back(Pending{id, std::move(*body), 0});
      absl::StatusOr<uint32_t> correlation =
          client->SendAsync(channel, window.back().client_message_id, window.back().body);
      if (correlation.ok()) {
        window.back().correlation_id = *correlation;
      } else if (!recover_or_refuse(correlation.status(), window.end() - 1)) {
        return exit_code;
      }
    }
    if (window.empty()) break;
    absl::StatusOr<client::Sent> sent = client->WaitSent(window.front().correlation_id);
    if (sent.ok()) {
      reconnects = 0;
      if (json_) {
        Line(JsonObject()
                 .Str("channel", channel)
                 .Num("seq", sent->seq)
                 .Num("epoch", sent->epoch)
                 .Num("timestamp_unix_ns", sent->timestamp_unix_ns)
                 .Bool("duplicate", sent->duplicate)
                 .Text());
      } else {
        Line(channel + " #" + std::to_string(sent->seq));
      }
      out_ << std::flush;
      window.pop_front();
    } else if (!recover_or_refuse(sent.status(), window.begin())) {
      return exit_code;
    }
  }
  out_ << std::flush;
  return exit_code;
}

int Cli::Tail() {
  const std::string& channel = line_.operands[0];
  int modes = line_.Has("--from") + line_.Has("--after") + line_.Has("--new");
  if (modes > 1) return UsageError("--from, --after and --new exclude each other");
  int exit_code = kExitOk;
  std::optional<uint64_t> from_seq;
  std::optional<uint64_t> after_seq;
  if (!SeqFlag("--from", 1, &from_seq, &exit_code) ||
      !SeqFlag("--after", 0, &after_seq, &exit_code)) {
    return exit_code;
  }

  std::unique_ptr<Client> client = MustConnect(&exit_code);
  if (client == nullptr) return exit_code;

  // The stream: its epoch and the last seq printed (or the seq it starts after).
  uint64_t epoch = 0;
  uint64_t last_seq = 0;
  // The read cursor as far as this tail knows it (it stores only cursors past it).
  uint64_t cursor_epoch = 0;
  uint64_t cursor_seq = 0;
  bool printed_since_store = false;

  // Subscribes after (epoch, after); a HISTORY_RESET is said on stderr and followed to where
  // the server offers to start (the first seq it still holds, in its current epoch).
  auto subscribe = [&](Client& on, uint64_t at_epoch, uint64_t after,
                       bool from_cursor) -> absl::StatusOr<client::Subscribed> {
    for (int resets = 0;; ++resets) {
      absl::StatusOr<client::SubscribeResult> result =
          on.Subscribe(channel, at_epoch, after, from_cursor);
      if (!result.ok()) return result.status();
      if (const auto* subscribed = std::get_if<client::Subscribed>(&*result)) return *subscribed;
      const auto& reset = std::get<client::HistoryReset>(*result);
      uint64_t restart = reset.first_seq > 0 ? reset.first_seq - 1 : 0;
      Notice("HISTORY_RESET in " + channel + " (" +
             std::string(proto::ResetReasonName(reset.reason)) +
             "): the server cannot continue after seq " + std::to_string(after) + " of epoch " +
             std::to_string(at_epoch) + "; it holds seqs " + std::to_string(reset.first_seq) +
             ".." + std::to_string(reset.head_seq) + " of epoch " + std::to_string(reset.epoch) +
             "; continuing after seq " + std::to_string(restart));
      if (resets + 1 >= kResetsInARowMax) {
        return absl::AbortedError("the history of " + channel + " keeps being reset");
      }
      at_epoch = reset.epoch;
      after = restart;
      from_cursor = false;
    }
  };

  absl::StatusOr<client::Subscribed> subscribed;
  if (modes == 0) {
    subscribed = subscribe(*client, 0, 0, /*from_cursor=*/true);
    if (subscribed.ok()) {
      cursor_epoch = subscribed->epoch;
      cursor_seq = subscribed->after_seq;
    }
  } else {
    absl::StatusOr<client::ChannelListEntry> entry = FindChannel(*client, channel);
    if (!entry.ok()) return Fail(entry.status());
    cursor_epoch = entry->epoch;
    cursor_seq = entry->read_cursor;
    uint64_t after = entry->head_seq;
    if (from_seq.has_value()) after = *from_seq - 1;
    if (after_seq.has_value()) after = *after_seq;
    subscribed = subscribe(*client, entry->epoch, after, /*from_cursor=*/false);
  }
  if (!subscribed.ok()) return Fail(subscribed.status());
  epoch = subscribed->epoch;
  last_seq = subscribed->after_seq;

  auto store_cursor = [&]() {
    if (!printed_since_store || client == nullptr) return;
    if (epoch == cursor_epoch && last_seq <= cursor_seq) {
      printed_since_store = false;
      return;
    }
    absl::Status stored = client->SetCursor(channel, epoch, last_seq);
    if (stored.ok()) {
      cursor_epoch = epoch;
      cursor_seq = last_seq;
      printed_since_store = false;
    } else if (!IsConnectionFailure(stored)) {
      // Not worth ending the tail for; said once per refusal.
      Notice("could not store the read cursor: " + Describe(stored));
      printed_since_store = false;
    }
    // A connection failure shows at the next wait, which reconnects.
  };

  Clock::time_point next_store = Clock::now() + kCursorInterval;
  while (!Stopping()) {
    absl::StatusOr<std::optional<client::Push>> push = client->NextPush(kPushWait);
    if (!push.ok()) {
      if (!IsConnectionFailure(push.status())) return Fail(push.status());
      out_ << std::flush;
      Notice("lost the connection to " + Server() + " (" + Describe(push.status()) +
             "); reconnecting");
      client.reset();
      for (int attempt = 1; client == nullptr && !Stopping(); ++attempt) {
        Sleep(Backoff(attempt));
        if (Stopping()) break;
        absl::StatusOr<std::unique_ptr<Client>> fresh = Reconnect();
        if (!fresh.ok()) {
          if (!IsConnectionFailure(fresh.status())) return Fail(fresh.status());
          continue;
        }
        absl::StatusOr<client::Subscribed> again =
            subscribe(**fresh, epoch, last_seq, /*from_cursor=*/false);
        if (!again.ok()) {
          if (!client::IsTransientFailure(again.status())) return Fail(again.status());
          continue;
        }
        epoch = again->epoch;
        last_seq = again->after_seq;
        client = std::move(*fresh);
        Notice("reconnected to " + Server() + "; resuming after seq " + std::to_string(last_seq));
      }
      continue;
    }
    if (push->has_value()) {
      client::Push& item = **push;
      if (auto* message = std::get_if<client::Message>(&item)) {
        PrintRecord(channel, message->epoch, message->record);
        epoch = message->epoch;
        last_seq = message->record.seq;
        printed_since_store = true;
        if (client->pushes_queued() == 0) out_ << std::flush;
      } else if (auto* reset = std::get_if<client::HistoryReset>(&item)) {
        out_ << std::flush;
        // The subscription ended; follow the reset as for an answer.
        client::HistoryReset pushed = *reset;
        uint64_t restart = pushed.first_seq > 0 ? pushed.first_seq - 1 : 0;
        Notice("HISTORY_RESET in " + channel + " (" +
               std::string(proto::ResetReasonName(pushed.reason)) + ") after seq " +
               std::to_string(last_seq) + " of epoch " + std::to_string(epoch) +
               "; the server holds seqs " + std::to_string(pushed.first_seq) + ".." +
               std::to_string(pushed.head_seq) + " of epoch " + std::to_string(pushed.epoch) +
               "; continuing after seq " + std::to_string(restart));
        absl::StatusOr<client::Subscribed> again =
            subscribe(*client, pushed.epoch, restart, /*from_cursor=*/false);
        if (!again.ok() && !IsConnectionFailure(again.status())) return Fail(again.status());
        if (again.ok()) {
          epoch = again->epoch;
          last_seq = again->after_seq;
        }
        // A connection failure shows at the next wait.
      } else if (auto* gone = std::get_if<client::SubscriptionEnded>(&item);
                 gone != nullptr && gone->reason == proto::ErrorCode::kOwnerUnavailable) {
        // A cluster's owner node went away: subscribe again after the last seq printed once
        // it is back (nothing is missed; PROTOCOL.md §6.3).
        out_ << std::flush;
        Notice("the channel's owner node is unreachable; resuming after seq " +
               std::to_string(last_seq) + " once it is back");
        for (int attempt = 1; !Stopping(); ++attempt) {
          Sleep(Backoff(attempt));
          if (Stopping()) break;
          absl::StatusOr<client::Subscribed> again =
              subscribe(*client, epoch, last_seq, /*from_cursor=*/false);
          if (again.ok()) {
            epoch = again->epoch;
            last_seq = again->after_seq;
            Notice("resumed " + channel + " after seq " + std::to_string(last_seq));
            break;
          }
          if (IsConnectionFailure(again.status())) break;  // The next wait reconnects.
          if (!client::IsTransientFailure(again.status())) return Fail(again.status());
        }
      } else if (auto* ended = std::get_if<client::SubscriptionEnded>(&item)) {
        out_ << std::flush;
        std::string reason(proto::ErrorCodeName(ended->reason));
        store_cursor();
        err_ << "hoot: the server ended the subscription to " << channel << ": " << reason << "\n"
             << std::flush;
        return kExitRefused;
      }
      // STREAM_LAG: the server serves the rest from its log; nothing is lost.
    }
    if (Clock::now() >= next_store) {
      store_cursor();
      next_store = Clock::now() + kCursorInterval;
    }
  }
  out_ << std::flush;
  store_cursor();
  return kExitOk;
}

int Cli::History() {
  const std::string& channel = line_.operands[0];
  if (line_.Has("--before") && line_.Has("--after")) {
    return UsageError("--before and --after exclude each other");
  }
  int exit_code = kExitOk;
  uint64_t limit = kHistoryDefaultLimit;
  std::optional<uint64_t> asked_limit;
  std::optional<uint64_t> before;
  std::optional<uint64_t> after;
  if (!SeqFlag("--limit", 1, &asked_limit, &exit_code) ||
      !SeqFlag("--before", 1, &before, &exit_code) || !SeqFlag("--after", 0, &after, &exit_code)) {
    return exit_code;
  }
  if (asked_limit.has_value()) limit = *asked_limit;

  std::unique_ptr<Client> client = MustConnect(&exit_code);
  if (client == nullptr) return exit_code;

  std::vector<client::Record> records;
  uint64_t epoch = 0;  // Unknown until the first page; then every page must be of it.
  const bool forward = after.has_value();
  // The next seq to ask for; backward, 0 asks for the head.
  uint64_t from = forward ? *after + 1 : (before.has_value() ? *before - 1 : 0);
  bool done = !forward && before.has_value() && *before == 1;  // Nothing is before seq 1.
  bool followed_reset = false;
  while (!done && records.size() < limit) {
    uint64_t page = std::min<uint64_t>(limit - records.size(), kHistoryPage);
    absl::StatusOr<client::HistoryResult> result = client->FetchHistory(
        channel, epoch, from, forward ? proto::Direction::kForward : proto::Direction::kBackward,
        static_cast<uint32_t>(page));
    if (!result.ok()) return Fail(result.status());
    if (const auto* reset = std::get_if<client::HistoryReset>(&*result)) {
      // Forward from below what the server still holds: say so and start at its first seq.
      if (forward && epoch == 0 && !followed_reset &&
          reset->reason == proto::ResetReason::kNotRetained) {
        Notice("seqs before " + std::to_string(reset->first_seq) + " of " + channel +
               " are no longer retained; starting at seq " + std::to_string(reset->first_seq));
        followed_reset = true;
        epoch = reset->epoch;
        from = reset->first_seq;
        continue;
      }
      out_ << std::flush;
      err_ << "hoot: the history of " << channel << " changed while reading it ("
           << proto::ResetReasonName(reset->reason) << "): now epoch " << reset->epoch << ", seqs "
           << reset->first_seq << ".." << reset->head_seq << "\n"
           << std::flush;
      return kExitRefused;
    }
    const client::History& history = std::get<client::History>(*result);
    epoch = history.epoch;
    for (const client::Record& record : history.records) records.push_back(record);
    if (history.records.size() < page) break;
    uint64_t last = history.records.back().seq;
    if (forward) {
      from = last + 1;
    } else {
      if (last <= 1) break;
      from = last - 1;
    }
  }
  if (!forward) std::reverse(records.begin(), records.end());
  for (const client::Record& record : records) PrintRecord(channel, epoch, record);
  out_ << std::flush;
  return kExitOk;
}

}  // namespace hoot::tools::cli_internal
