// Authentication tokens for hootd and the server secret that signs them.
//
// A token is `v1.<user>.<expiry unix seconds>.<signature>`, or for an operator
// `v1.<user>.<expiry unix seconds>.admin.<signature>` (docs/PROTOCOL.md section 5.1): the
// signature is the unpadded base64url (RFC 4648 section 5) HMAC-SHA256, keyed with the
// server secret, of the text before the last dot, so the role is signed too. User names may
// contain '.', so a token is split from its end, never at its first dots; an expiry is
// digits, so "admin" where the expiry would be cannot be mistaken for one.
//
// Everything here is control plane: minting runs in `hootd token`, checking once per
// connection handshake. A TokenSigner is immutable after construction, so one instance may be
// shared by every shard without locking.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace hoot::auth {

inline constexpr std::string_view kTokenPrefix = "v1.";
inline constexpr std::string_view kAdminRoleSuffix = ".admin";

// What a token allows beyond its user's own chat: an admin may also make the admin requests
// (server statistics, any channel's state, every connection).
enum class Role : uint8_t { kUser, kAdmin };
inline constexpr size_t kHmacSha256Bytes = 32;
// Unpadded base64url of 32 bytes: ceil(32 * 8 / 6).
inline constexpr size_t kSignatureChars = 43;
// The secret file must hold at least this many key bytes (64 hex digits); CreateSecretFile
// writes exactly this many.
inline constexpr size_t kSecretKeyBytesMin = 32;
// A larger file is not a secret file we wrote; refusing it bounds the read.
inline constexpr size_t kSecretFileBytesMax = 4096;

enum class TokenError : uint8_t {
  kNone,
  kMalformed,  // Not of the token form at all (the MAC was not even computed).
  kForged,     // Well-formed, but the MAC does not match: wrong key, or altered text.
  kExpired,    // Genuine (the MAC matches), but expiry_unix_s <= now.
};

struct TokenCheck {
  TokenError error = TokenError::kNone;
  // Set only when the MAC matched (error is kNone or kExpired); otherwise empty and 0, so that
  // nothing an attacker wrote is mistaken for an authenticated name.
  std::string user;
  Role role = Role::kUser;
  int64_t expiry_unix_s = 0;
  // Human text for errors, e.g. "token expired at 2026-11-27T10:00:00Z". It never quotes the
  // token's bytes, so it is safe to log or to send back in an ERROR frame.
  std::string message;
};

class TokenSigner {
 public:
  // Loads the key from a secret file: the key as hex text (either case), optionally followed
  // by one '\n'. Refuses, with an error naming the file: a missing or unreadable file, one that
  // is not a regular file, one whose mode grants anything to group or others (mode & 077),
  // bad hex, or a key shorter than kSecretKeyBytesMin.
  static absl::StatusOr<TokenSigner> FromSecretFile(const std::string& path);

  // Creates a secret file holding kSecretKeyBytesMin bytes from RAND_bytes, mode 0600, with
  // O_EXCL so an existing secret (and every token signed with it) is never replaced. Syncs the
  // file and its directory before returning, so a key that has signed tokens survives a crash.
  // AlreadyExists if the path exists; on any other failure no file is left behind.
  static absl::Status CreateSecretFile(const std::string& path);

  // FromSecretFile, creating the file first if it does not exist. Safe against a concurrent
  // creator: whichever O_EXCL create wins, both load the same file.
  static absl::StatusOr<TokenSigner> LoadOrCreate(const std::string& path);

  // Raw key bytes, not hex (tests, tools). Must not be empty; the secret-file path above is
  // what enforces kSecretKeyBytesMin for the server's own key.
  explicit TokenSigner(std::string key);

  // The token for `user`, valid while now < expiry_unix_s. HOOT_CHECKs that `user` is a valid
  // user name (proto::IsValidUserName) and that the expiry is not negative: a token that
  // Verify would refuse is a programmer error here.
  std::string Mint(std::string_view user, int64_t expiry_unix_s, Role role = Role::kUser) const;

  // Checks `token` at time `now_unix_s`. The MAC is compared in constant time and before the
  // expiry is looked at.
  TokenCheck Verify(std::string_view token, int64_t now_unix_s) const;
  // A key for another use of the same secret (HMAC-SHA256 of `purpose` under it), so that
  // one secret file serves several purposes and no MAC of one is valid for another.
  std::string DeriveKey(std::string_view purpose) const;

 private:
  std::string key_;
};

// HMAC-SHA256 of `data` keyed with `key`: the raw 32 bytes. (OpenSSL's one-shot HMAC; exposed
// so tests can check it against published vectors.)
std::string HmacSha256(std::string_view key, std::string_view data);
// Whether two MACs are equal, in time that does not depend on where they differ.
bool MacsEqual(std::string_view a, std::string_view b);
// `count` bytes from OpenSSL's RAND_bytes (a CSPRNG): nonces.
std::string RandomBytes(size_t count);

// Unpadded base64url (RFC 4648 section 5).
std::string Base64UrlEncode(std::string_view bytes);
// Strict inverse of Base64UrlEncode: nullopt for padding ('='), any byte outside the
// base64url alphabet, an impossible length (4n + 1), or non-zero unused trailing bits. So each
// byte string has exactly one accepted encoding.
std::optional<std::string> Base64UrlDecode(std::string_view text);

}  // namespace hoot::auth
