#include "auth/token.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <ctime>
#include <utility>

#include "base/check.h"
#include "base/files.h"
#include "base/status.h"
#include "base/strings.h"
#include "proto/wire.h"

namespace hoot::auth {
namespace {

static_assert(sizeof(time_t) >= sizeof(int64_t), "expiry times are 64-bit");

constexpr char kBase64UrlAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int Base64UrlValue(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

// Canonical decimal only (no sign, no leading zero, at most int64): Mint never writes anything
// else, so anything else did not come from Mint.
std::optional<int64_t> ParseExpiry(std::string_view text) {
  if (text.empty() || (text.size() > 1 && text[0] == '0')) return std::nullopt;
  int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    if (__builtin_mul_overflow(value, int64_t{10}, &value) ||
        __builtin_add_overflow(value, int64_t{c - '0'}, &value)) {
      return std::nullopt;
    }
  }
  return value;
}

std::string FormatUtc(int64_t unix_s) {
  const time_t seconds = static_cast<time_t>(unix_s);
  struct tm utc;
  char text[64];
  if (gmtime_r(&seconds, &utc) == nullptr ||
      std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &utc) == 0) {
    // Years past what struct tm holds: still say when, in the token's own unit.
    return "unix time " + std::to_string(unix_s);
  }
  return text;
}

TokenCheck Malformed(std::string_view why) {
  TokenCheck check;
  check.error = TokenError::kMalformed;
  check.message = "malformed token: ";
  check.message += why;
  return check;
}

// Closes a descriptor on every return path of the file functions below.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;
  ~FdCloser() {
    if (fd_ >= 0) ::close(fd_);
  }
  // Closes now and reports the error: a failed close after writing can mean lost data.
  int Close() {
    const int result = ::close(fd_);
    fd_ = -1;
    return result;
  }

 private:
  int fd_;
};

// Wipes key material from a buffer before it is freed, so it does not linger in the heap.
void Cleanse(std::string& bytes) {
  if (!bytes.empty()) OPENSSL_cleanse(bytes.data(), bytes.size());
}

absl::Status WriteAll(int fd, std::string_view bytes, const std::string& path) {
  while (!bytes.empty()) {
    const ssize_t written = ::write(fd, bytes.data(), bytes.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return base::ErrnoStatus(errno, "write secret file " + path);
    }
    bytes.remove_prefix(static_cast<size_t>(written));
  }
  return absl::OkStatus();
}

// Writes and syncs the new secret file behind `fd` (just created with O_EXCL).
absl::Status FillSecretFile(int fd, const std::string& path) {
  unsigned char key[kSecretKeyBytesMin];
  if (RAND_bytes(key, sizeof(key)) != 1) {
    char reason[256];
    ERR_error_string_n(ERR_get_error(), reason, sizeof(reason));
    return absl::InternalError("RAND_bytes for secret file " + path + ": " + reason);
  }
  std::string text =
      base::HexEncode(std::string_view(reinterpret_cast<const char*>(key), sizeof(key))) + "\n";
  OPENSSL_cleanse(key, sizeof(key));
  absl::Status written = WriteAll(fd, text, path);
  Cleanse(text);
  HOOT_RETURN_IF_ERROR(written);
  // open() applied the umask, which can only take bits away from 0600; set it exactly so the
  // owner can always read the key back.
  if (::fchmod(fd, 0600) != 0) return base::ErrnoStatus(errno, "fchmod secret file " + path);
  if (::fsync(fd) != 0) return base::ErrnoStatus(errno, "fsync secret file " + path);
  return absl::OkStatus();
}

}  // namespace

std::string HmacSha256(std::string_view key, std::string_view data) {
  // OpenSSL 3's HMAC() refuses a null key pointer even with length 0, and an empty
  // string_view may hold one.
  static const unsigned char kEmpty = 0;
  HOOT_CHECK(key.size() <= static_cast<size_t>(INT_MAX));
  const void* key_bytes = key.empty() ? static_cast<const void*>(&kEmpty) : key.data();
  const unsigned char* data_bytes =
      data.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(data.data());
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_bytes = 0;
  const unsigned char* result = HMAC(EVP_sha256(), key_bytes, static_cast<int>(key.size()),
                                     data_bytes, data.size(), mac, &mac_bytes);
  // Only a broken OpenSSL installation (no SHA-256 provider) fails here.
  HOOT_CHECK(result != nullptr);
  HOOT_CHECK(mac_bytes == kHmacSha256Bytes);
  return std::string(reinterpret_cast<const char*>(mac), mac_bytes);
}

std::string TokenSigner::DeriveKey(std::string_view purpose) const {
  return HmacSha256(key_, purpose);
}

bool MacsEqual(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string RandomBytes(size_t count) {
  std::string bytes(count, '\0');
  HOOT_CHECK(count <= static_cast<size_t>(INT_MAX));
  // Fails only when the CSPRNG cannot be seeded, which nothing can work around.
  HOOT_CHECK(RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(count)) ==
             1);
  return bytes;
}

std::string Base64UrlEncode(std::string_view bytes) {
  std::string text;
  text.reserve((bytes.size() * 4 + 2) / 3);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t group = uint32_t{static_cast<unsigned char>(bytes[i])} << 16 |
                           uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8 |
                           uint32_t{static_cast<unsigned char>(bytes[i + 2])};
    text.push_back(kBase64UrlAlphabet[group >> 18]);
    text.push_back(kBase64UrlAlphabet[(group >> 12) & 63]);
    text.push_back(kBase64UrlAlphabet[(group >> 6) & 63]);
    text.push_back(kBase64UrlAlphabet[group & 63]);
  }
  const size_t rest = bytes.size() - i;
  if (rest == 1) {
    const uint32_t group = uint32_t{static_cast<unsigned char>(bytes[i])} << 16;
    text.push_back(kBase64UrlAlphabet[group >> 18]);
    text.push_back(kBase64UrlAlphabet[(group >> 12) & 63]);
  } else if (rest == 2) {
    const uint32_t group = uint32_t{static_cast<unsigned char>(bytes[i])} << 16 |
                           uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8;
    text.push_back(kBase64UrlAlphabet[group >> 18]);
    text.push_back(kBase64UrlAlphabet[(group >> 12) & 63]);
    text.push_back(kBase64UrlAlphabet[(group >> 6) & 63]);
  }
  return text;
}

std::optional<std::string> Base64UrlDecode(std::string_view text) {
  // One leftover character carries 6 bits: not even one byte.
  if (text.size() % 4 == 1) return std::nullopt;
  std::string bytes;
  bytes.reserve(text.size() * 3 / 4);
  uint32_t pending = 0;  // The low `pending_bits` bits not yet emitted.
  int pending_bits = 0;
  for (char c : text) {
    const int value = Base64UrlValue(c);
    if (value < 0) return std::nullopt;
    pending = pending << 6 | static_cast<uint32_t>(value);
    pending_bits += 6;
    if (pending_bits >= 8) {
      pending_bits -= 8;
      bytes.push_back(static_cast<char>(pending >> pending_bits));
      pending &= (1u << pending_bits) - 1;
    }
  }
  // The encoder leaves unused bits zero; accepting others would give one byte string many
  // encodings.
  if (pending != 0) return std::nullopt;
  return bytes;
}

TokenSigner::TokenSigner(std::string key) : key_(std::move(key)) { HOOT_CHECK(!key_.empty()); }

absl::StatusOr<TokenSigner> TokenSigner::FromSecretFile(const std::string& path) {
  // O_NONBLOCK so a FIFO at the path cannot hang start-up; fstat refuses it below.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return base::ErrnoStatus(errno, "open secret file " + path);
  FdCloser closer(fd);
  struct stat status;
  if (::fstat(fd, &status) != 0) return base::ErrnoStatus(errno, "stat secret file " + path);
  if (!S_ISREG(status.st_mode)) {
    return absl::FailedPreconditionError("secret file " + path + " is not a regular file");
  }
  // Checked on the opened descriptor, not the path, so a swap after the check cannot slip in.
  if ((status.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(status.st_mode & 07777));
    return absl::FailedPreconditionError("secret file " + path + " has mode " + mode +
                                         ": group or others may access it (chmod 600 " + path +
                                         ")");
  }

  std::string text(kSecretFileBytesMax + 1, '\0');
  size_t text_bytes = 0;
  while (text_bytes < text.size()) {
    const ssize_t got = ::read(fd, text.data() + text_bytes, text.size() - text_bytes);
    if (got < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      Cleanse(text);
      return base::ErrnoStatus(error, "read secret file " + path);
    }
    if (got == 0) break;
    text_bytes += static_cast<size_t>(got);
  }
  std::string_view hex(text.data(), text_bytes);
  if (!hex.empty() && hex.back() == '\n') hex.remove_suffix(1);
  std::optional<std::string> key;
  if (text_bytes <= kSecretFileBytesMax) key = base::HexDecode(hex);
  Cleanse(text);
  if (text_bytes > kSecretFileBytesMax) {
    return absl::InvalidArgumentError("secret file " + path + " is larger than " +
                                      std::to_string(kSecretFileBytesMax) + " bytes");
  }
  if (!key.has_value()) {
    return absl::InvalidArgumentError("secret file " + path + " is not hex text (expected " +
                                      std::to_string(kSecretKeyBytesMin * 2) +
                                      " hex digits and an optional newline)");
  }
  if (key->size() < kSecretKeyBytesMin) {
    const size_t key_bytes = key->size();
    Cleanse(*key);
    return absl::InvalidArgumentError(
        "secret file " + path + " holds a " + std::to_string(key_bytes) + "-byte key; at least " +
        std::to_string(kSecretKeyBytesMin) + " bytes (" + std::to_string(kSecretKeyBytesMin * 2) +
        " hex digits) are needed");
  }
  return TokenSigner(std::move(*key));
}

absl::Status TokenSigner::CreateSecretFile(const std::string& path) {
  // O_EXCL: a secret that exists has signed tokens in the field; replacing it would revoke
  // them all, so creating never overwrites.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600);
  if (fd < 0) return base::ErrnoStatus(errno, "create secret file " + path);
  FdCloser closer(fd);
  absl::Status filled = FillSecretFile(fd, path);
  if (filled.ok() && closer.Close() != 0) {
    filled = base::ErrnoStatus(errno, "close secret file " + path);
  }
  if (filled.ok()) filled = base::FsyncDirectory(base::ParentDirectory(path));
  if (!filled.ok()) {
    // A half-written secret would make every later start fail on it; the path is ours (we
    // created it with O_EXCL), so take it away.
    ::unlink(path.c_str());
  }
  return filled;
}

absl::StatusOr<TokenSigner> TokenSigner::LoadOrCreate(const std::string& path) {
  absl::Status created = CreateSecretFile(path);
  if (!created.ok() && !absl::IsAlreadyExists(created)) return created;
  return FromSecretFile(path);
}

std::string TokenSigner::Mint(std::string_view user, int64_t expiry_unix_s, Role role) const {
  HOOT_CHECK(proto::IsValidUserName(user));
  HOOT_CHECK(expiry_unix_s >= 0);
  std::string token(kTokenPrefix);
  token += user;
  token += '.';
  token += std::to_string(expiry_unix_s);
  if (role == Role::kAdmin) token += kAdminRoleSuffix;
  const std::string signature = Base64UrlEncode(HmacSha256(key_, token));
  token += '.';
  token += signature;
  HOOT_CHECK(token.size() <= proto::kTokenBytesMax);
  return token;
}

TokenCheck TokenSigner::Verify(std::string_view token, int64_t now_unix_s) const {
  if (token.size() > proto::kTokenBytesMax) return Malformed("longer than the protocol allows");
  if (token.substr(0, kTokenPrefix.size()) != kTokenPrefix) {
    return Malformed("does not start with \"v1.\"");
  }
  // User names may hold dots, so split at the last two dots (neither can be the prefix's).
  const size_t signature_dot = token.rfind('.');
  if (signature_dot < kTokenPrefix.size()) return Malformed("no expiry or signature");
  const std::string_view signed_text = token.substr(0, signature_dot);
  const std::string_view signature_text = token.substr(signature_dot + 1);
  std::string_view claims = signed_text;  // Up to the expiry.
  Role role = Role::kUser;
  if (claims.size() >= kAdminRoleSuffix.size() &&
      claims.substr(claims.size() - kAdminRoleSuffix.size()) == kAdminRoleSuffix) {
    role = Role::kAdmin;
    claims.remove_suffix(kAdminRoleSuffix.size());
  }
  const size_t expiry_dot = claims.rfind('.');
  if (expiry_dot == std::string_view::npos || expiry_dot < kTokenPrefix.size()) {
    return Malformed("no user or no expiry");
  }
  const std::string_view user =
      claims.substr(kTokenPrefix.size(), expiry_dot - kTokenPrefix.size());
  if (!proto::IsValidUserName(user)) return Malformed("invalid user name");
  const std::optional<int64_t> expiry = ParseExpiry(claims.substr(expiry_dot + 1));
  if (!expiry.has_value()) return Malformed("expiry is not a decimal number of seconds");
  if (signature_text.size() != kSignatureChars) return Malformed("signature has the wrong length");
  const std::optional<std::string> signature = Base64UrlDecode(signature_text);
  if (!signature.has_value()) return Malformed("signature is not base64url");
  HOOT_CHECK(signature->size() == kHmacSha256Bytes);

  const std::string expected = HmacSha256(key_, signed_text);
  // Constant time: how many leading bytes matched must not show in the timing.
  if (CRYPTO_memcmp(expected.data(), signature->data(), kHmacSha256Bytes) != 0) {
    TokenCheck check;
    check.error = TokenError::kForged;
    check.message = "token signature does not match (forged, or signed with another secret)";
    return check;
  }
  TokenCheck check;
  check.user = std::string(user);
  check.role = role;
  check.expiry_unix_s = *expiry;
  if (*expiry <= now_unix_s) {
    check.error = TokenError::kExpired;
    check.message = "token expired at " + FormatUtc(*expiry);
  }
  return check;
}

}  // namespace hoot::auth
