// A real full disk: hootd on a small loop-mounted ext4 filesystem, filled by a sender. Sends
// are refused with disk_full, history goes on, nothing acknowledged is lost (also across a
// restart), and once space is freed sends resume. Needs root and loop devices; skips, saying
// why, where the machine has neither.
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include "client/client.h"
#include "tests/server/hootd_process.h"

namespace hoot::testing {
namespace {

constexpr size_t kBodyBytes = 60000;

// A message whose body says which seq it expects to be.
std::string BodyFor(uint64_t id) {
  std::string body(kBodyBytes, static_cast<char>('a' + id % 26));
  std::string label = "message " + std::to_string(id) + " ";
  body.replace(0, label.size(), label);
  return body;
}

// A 64 MiB ext4 image mounted through a loop device, unmounted when this goes.
class LoopFilesystem {
 public:
  // Empty `skip` once mounted; else why it could not be.
  explicit LoopFilesystem(const std::string& directory, std::string* skip)
      : image_(directory + "/disk.img"), mount_point_(directory + "/mnt") {
    if (::geteuid() != 0) {
      *skip = "not root: cannot mount a loop device";
      return;
    }
    std::filesystem::create_directories(mount_point_);
    std::string make = "truncate -s 64M " + image_ + " && mkfs.ext4 -q -F " + image_ +
                       " >/dev/null 2>&1";
    if (std::system(make.c_str()) != 0) {
      *skip = "mkfs.ext4 failed (is e2fsprogs installed?)";
      return;
    }
    std::string mount = "mount -o loop " + image_ + " " + mount_point_ + " 2>&1";
    if (std::system(mount.c_str()) != 0) {
      *skip = "mount -o loop failed: this machine has no usable loop device";
      return;
    }
    mounted_ = true;
  }
  ~LoopFilesystem() {
    if (mounted_) std::system(("umount " + mount_point_).c_str());
  }
  const std::string& path() const { return mount_point_; }

 private:
  std::string image_;
  std::string mount_point_;
  bool mounted_ = false;
};

TEST(FullDisk, ARealFullDiskRefusesSendsKeepsWhatWasAcknowledgedAndRecovers) {
  std::string directory = FreshDirectory("full-disk");
  std::string skip;
  LoopFilesystem disk(directory, &skip);
  if (!skip.empty()) GTEST_SKIP() << skip;
  // Space to give back later: without it, freeing space would mean deleting chat history.
  std::string filler = disk.path() + "/filler";
  ASSERT_EQ(std::system(("fallocate -l 8M " + filler).c_str()), 0);
  std::string data = disk.path() + "/data";
  std::vector<std::string> flags = {"--journal-mib", "4", "--segment-mib", "4", "--send-rate", "0"};

  auto hootd = StartHootdOn(data, 1, flags);
  ASSERT_NE(hootd, nullptr);
  auto ada = hootd->Connect("ada");
  ASSERT_TRUE(ada.ok()) << ada.status();
  auto info = (*ada)->CreateChannel("tape", proto::Visibility::kPublic);
  ASSERT_TRUE(info.ok()) << info.status();

  uint64_t acknowledged = 0;
  absl::Status refused;
  // 64 MiB cannot hold 2,000 messages of 60 KB: the disk fills well before.
  for (uint64_t id = 1; id <= 2000 && refused.ok(); ++id) {
    auto sent = (*ada)->Send("tape", id, BodyFor(id));
    if (sent.ok()) {
      ASSERT_EQ(sent->seq, id);
      acknowledged = sent->seq;
    } else {
      refused = sent.status();
    }
  }
  ASSERT_FALSE(refused.ok()) << "2,000 messages of 60 KB fit on a 64 MiB disk?";
  EXPECT_EQ(client::ServerErrorCode(refused), proto::ErrorCode::kDiskFull) << refused;
  ASSERT_GT(acknowledged, 100u);
  std::printf("full disk: %llu messages of %zu bytes acknowledged, then %s\n",
              static_cast<unsigned long long>(acknowledged), kBodyBytes,
              std::string(refused.message()).c_str());

  // Reads go on, and hold every acknowledged message.
  auto check_history = [&](client::Client& client, const std::string& when) {
    uint64_t next = 1;
    while (next <= acknowledged) {
      auto page = client.FetchHistory("tape", info->epoch, next, proto::Direction::kForward, 100);
      ASSERT_TRUE(page.ok()) << when << ": " << page.status();
      const auto& records = std::get<client::History>(*page).records;
      ASSERT_FALSE(records.empty()) << when << ": history ends at " << next - 1;
      for (const client::Record& record : records) {
        ASSERT_EQ(record.seq, next) << when;
        ASSERT_EQ(record.body, BodyFor(next)) << when << ": seq " << next;
        ++next;
      }
    }
    EXPECT_EQ(next - 1, acknowledged) << when;
  };
  ASSERT_NO_FATAL_FAILURE(check_history(**ada, "on a full disk"));

  // Space freed: sends resume, right after the last acknowledged seq.
  std::filesystem::remove(filler);
  uint64_t id = acknowledged + 1;
  absl::StatusOr<client::Sent> resumed = absl::UnknownError("not tried");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    resumed = (*ada)->Send("tape", id, BodyFor(id));
    if (resumed.ok()) break;
    ASSERT_EQ(client::ServerErrorCode(resumed.status()), proto::ErrorCode::kDiskFull)
        << resumed.status();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(resumed.ok()) << "sends did not resume once space was freed: " << resumed.status();
  EXPECT_EQ(resumed->seq, id) << "a refused send left a trace in the log";
  acknowledged = resumed->seq;
  ada->reset();
  EXPECT_EQ(hootd->Stop(), 0);

  // Nothing acknowledged is lost across a restart on that disk.
  hootd = StartHootdOn(data, 1, flags);
  ASSERT_NE(hootd, nullptr);
  auto again = hootd->Connect("ada");
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_NO_FATAL_FAILURE(check_history(**again, "after a restart"));
  again->reset();
  EXPECT_EQ(hootd->Stop(), 0);
}

}  // namespace
}  // namespace hoot::testing
