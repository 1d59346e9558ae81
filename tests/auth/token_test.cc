#include "auth/token.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/strings.h"

namespace hoot::auth {
namespace {

constexpr int64_t kNow = 1'800'000'000;  // 2027-01-15T08:00:00Z

std::string KeyOf(char first) {
  std::string key(32, '\0');
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<char>(first + i);
  return key;
}

// The signature part of a token: everything after the last dot.
std::string SignatureOf(const std::string& token) { return token.substr(token.rfind('.') + 1); }

// Re-signs `signed_text` with `key`: how an attacker holding the key would build a token,
// and how a test builds a token Mint refuses to.
std::string SignedToken(const std::string& key, const std::string& signed_text) {
  return signed_text + "." + Base64UrlEncode(HmacSha256(key, signed_text));
}

// --- HMAC and base64url against published vectors ---------------------------------------

TEST(HmacSha256Test, MatchesRfc4231TestCase2) {
  EXPECT_EQ(base::HexEncode(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(HmacSha256Test, MatchesRfc4231TestCase1) {
  EXPECT_EQ(base::HexEncode(HmacSha256(std::string(20, '\x0b'), "Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

TEST(HmacSha256Test, LongKeyIsHashedFirstRfc4231TestCase6) {
  EXPECT_EQ(base::HexEncode(HmacSha256(std::string(131, '\xaa'),
                                       "Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(Base64UrlTest, EncodesRfc4648VectorsWithoutPadding) {
  EXPECT_EQ(Base64UrlEncode(""), "");
  EXPECT_EQ(Base64UrlEncode("f"), "Zg");
  EXPECT_EQ(Base64UrlEncode("fo"), "Zm8");
  EXPECT_EQ(Base64UrlEncode("foo"), "Zm9v");
  EXPECT_EQ(Base64UrlEncode("foob"), "Zm9vYg");
  EXPECT_EQ(Base64UrlEncode("fooba"), "Zm9vYmE");
  EXPECT_EQ(Base64UrlEncode("foobar"), "Zm9vYmFy");
  // The two characters where base64url differs from base64 ('+' and '/').
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
}

TEST(Base64UrlTest, DecodeInvertsEncodeForEveryLength) {
  std::string bytes;
  for (int i = 0; i < 70; ++i) {
    const std::string text = Base64UrlEncode(bytes);
    const std::optional<std::string> decoded = Base64UrlDecode(text);
    ASSERT_TRUE(decoded.has_value()) << text;
    EXPECT_EQ(*decoded, bytes);
    bytes.push_back(static_cast<char>(i * 37 + 200));
  }
}

TEST(Base64UrlTest, DecodeRejectsPaddingForeignBytesAndNonCanonicalBits) {
  EXPECT_EQ(Base64UrlDecode("Zm8"), std::optional<std::string>("fo"));
  EXPECT_EQ(Base64UrlDecode("Zm8="), std::nullopt);    // Padding.
  EXPECT_EQ(Base64UrlDecode("Zg=="), std::nullopt);    // Padding.
  EXPECT_EQ(Base64UrlDecode("Zm9v+A"), std::nullopt);  // '+' is plain base64.
  EXPECT_EQ(Base64UrlDecode("Zm9v/A"), std::nullopt);  // '/' is plain base64.
  EXPECT_EQ(Base64UrlDecode("Zm 8"), std::nullopt);
  EXPECT_EQ(Base64UrlDecode(std::string("Zm\0v", 4)), std::nullopt);
  EXPECT_EQ(Base64UrlDecode("Zm9vY"), std::nullopt);  // 4n + 1 characters.
  EXPECT_EQ(Base64UrlDecode("Zh"), std::nullopt);     // "f" is "Zg": unused bits set.
  EXPECT_EQ(Base64UrlDecode("Zm9"), std::nullopt);    // "fo" is "Zm8": unused bits set.
}

// --- Mint and Verify ------------------------------------------------------------------------

TEST(TokenTest, MintedTokenHasTheDocumentedForm) {
  // Built independently of Mint: HMAC over "v1.<user>.<expiry>", base64url, appended.
  const TokenSigner signer(KeyOf(0));
  const std::string token = signer.Mint("alice", 1700000000);
  EXPECT_EQ(token, SignedToken(KeyOf(0), "v1.alice.1700000000"));
  EXPECT_EQ(SignatureOf(token).size(), kSignatureChars);
  // Pinned (computed with Python's hmac and base64 modules and with `openssl dgst -mac HMAC`),
  // so a change to the format cannot pass unnoticed. auth/README.md shows the same example.
  EXPECT_EQ(token, "v1.alice.1700000000.7DQEeRCF3AfhDs61WxTUGI05yrB9B9uZiMf4cgJB4r4");
}

TEST(TokenTest, MintThenVerifyRoundTrips) {
  const TokenSigner signer(KeyOf(1));
  const TokenCheck check = signer.Verify(signer.Mint("alice", kNow + 3600), kNow);
  EXPECT_EQ(check.error, TokenError::kNone) << check.message;
  EXPECT_EQ(check.user, "alice");
  EXPECT_EQ(check.expiry_unix_s, kNow + 3600);
  EXPECT_EQ(check.message, "");
}

TEST(TokenTest, UserNamesWithDotsRoundTrip) {
  const TokenSigner signer(KeyOf(1));
  for (const std::string user : {"a.b", "alice.smith.", "x..y", "a-b_c.d.1", "9.9.9"}) {
    const TokenCheck check = signer.Verify(signer.Mint(user, kNow + 1), kNow);
    EXPECT_EQ(check.error, TokenError::kNone) << user << ": " << check.message;
    EXPECT_EQ(check.user, user);
    EXPECT_EQ(check.expiry_unix_s, kNow + 1);
  }
}

TEST(TokenTest, LongestUserNameRoundTrips) {
  const TokenSigner signer(KeyOf(1));
  const std::string user(64, 'u');
  const TokenCheck check = signer.Verify(signer.Mint(user, kNow + 1), kNow);
  EXPECT_EQ(check.error, TokenError::kNone) << check.message;
  EXPECT_EQ(check.user, user);
}

TEST(TokenTest, ExpiryEqualToNowIsExpired) {
  const TokenSigner signer(KeyOf(1));
  const TokenCheck check = signer.Verify(signer.Mint("alice", kNow), kNow);
  EXPECT_EQ(check.error, TokenError::kExpired);
  EXPECT_EQ(check.message, "token expired at 2027-01-15T08:00:00Z");
  // The MAC matched, so who and when are known (for the server's log).
  EXPECT_EQ(check.user, "alice");
  EXPECT_EQ(check.expiry_unix_s, kNow);
}

TEST(TokenTest, ExpiryBeforeNowIsExpiredAndOneSecondLaterIsValid) {
  const TokenSigner signer(KeyOf(1));
  const std::string token = signer.Mint("bob", kNow - 1);
  EXPECT_EQ(signer.Verify(token, kNow).error, TokenError::kExpired);
  EXPECT_EQ(signer.Verify(token, kNow - 2).error, TokenError::kNone);
  EXPECT_EQ(signer.Verify(signer.Mint("bob", 0), kNow).error, TokenError::kExpired);
}

TEST(TokenTest, FlippingAnySignatureCharacterIsForged) {
  const TokenSigner signer(KeyOf(1));
  const std::string token = signer.Mint("alice", kNow + 60);
  const size_t signature_at = token.rfind('.') + 1;
  // The last character carries 2 unused bits, which must stay zero: 'A' (0) and 'E' (4) both
  // keep them zero, so every variant is well-formed and only the MAC can tell.
  for (size_t i = signature_at; i < token.size(); ++i) {
    std::string forged = token;
    forged[i] = forged[i] == 'A' ? 'E' : 'A';
    const TokenCheck check = signer.Verify(forged, kNow);
    EXPECT_EQ(check.error, TokenError::kForged) << "position " << i << ": " << forged;
    EXPECT_EQ(check.user, "");
    EXPECT_EQ(check.expiry_unix_s, 0);
  }
}

TEST(TokenTest, SignatureFromAnotherKeyIsForged) {
  const TokenSigner ours(KeyOf(1));
  const TokenSigner theirs(KeyOf(2));
  const TokenCheck check = ours.Verify(theirs.Mint("alice", kNow + 60), kNow);
  EXPECT_EQ(check.error, TokenError::kForged);
  EXPECT_NE(check.message, "");
}

TEST(TokenTest, ChangedUserIsForged) {
  const TokenSigner signer(KeyOf(1));
  const std::string token = signer.Mint("alice", kNow + 60);
  std::string forged = token;
  forged.replace(3, 5, "admin");
  EXPECT_EQ(signer.Verify(forged, kNow).error, TokenError::kForged);
  // Dropping a dot from a dotted name: "a.b" was signed, "ab" is claimed.
  const std::string dotted = signer.Mint("a.b", kNow + 60);
  std::string shifted = dotted;
  shifted.erase(4, 1);  // "v1.ab.<expiry>.<sig>"
  EXPECT_EQ(signer.Verify(shifted, kNow).error, TokenError::kForged);
}

TEST(TokenTest, AnAdminTokenCarriesItsSignedRole) {
  const TokenSigner signer(KeyOf(1));
  const std::string admin = signer.Mint("ops", kNow + 60, Role::kAdmin);
  EXPECT_EQ(admin.rfind("v1.ops." + std::to_string(kNow + 60) + ".admin.", 0), 0u) << admin;
  EXPECT_EQ(admin, SignedToken(KeyOf(1), "v1.ops." + std::to_string(kNow + 60) + ".admin"));
  TokenCheck check = signer.Verify(admin, kNow);
  EXPECT_EQ(check.error, TokenError::kNone) << check.message;
  EXPECT_EQ(check.user, "ops");
  EXPECT_EQ(check.role, Role::kAdmin);
  // A user's token is no admin's, even for a user named "admin" or "x.admin".
  for (const std::string user : {"ops", "admin", "x.admin"}) {
    check = signer.Verify(signer.Mint(user, kNow + 60), kNow);
    EXPECT_EQ(check.error, TokenError::kNone) << user;
    EXPECT_EQ(check.user, user);
    EXPECT_EQ(check.role, Role::kUser) << user;
  }
  // The role is signed: adding it to a user's token, or dropping it from an admin's, forges.
  const std::string user_token = signer.Mint("ops", kNow + 60);
  const std::string signature = SignatureOf(user_token);
  EXPECT_EQ(
      signer.Verify("v1.ops." + std::to_string(kNow + 60) + ".admin." + signature, kNow).error,
      TokenError::kForged);
  EXPECT_EQ(
      signer.Verify("v1.ops." + std::to_string(kNow + 60) + "." + SignatureOf(admin), kNow).error,
      TokenError::kForged);
  // An expired admin token is expired, role and all.
  check = signer.Verify(signer.Mint("ops", kNow, Role::kAdmin), kNow);
  EXPECT_EQ(check.error, TokenError::kExpired);
}

TEST(TokenTest, ChangedExpiryIsForged) {
  const TokenSigner signer(KeyOf(1));
  const std::string token = signer.Mint("alice", kNow - 60);
  const std::string signature = SignatureOf(token);
  // The attacker extends an expired token: the MAC check comes first, so it is forged, not
  // expired.
  const TokenCheck check =
      signer.Verify("v1.alice." + std::to_string(kNow + 86400) + "." + signature, kNow);
  EXPECT_EQ(check.error, TokenError::kForged);
  EXPECT_EQ(check.message.find("expired"), std::string::npos);
  // Moved into the past as well: still forged, so a forger learns nothing from expiry.
  EXPECT_EQ(signer.Verify("v1.alice." + std::to_string(kNow - 61) + "." + signature, kNow).error,
            TokenError::kForged);
}

TEST(TokenTest, TokenWithExpiryOverflowingInt64IsMalformed) {
  const TokenSigner signer(KeyOf(1));
  // Correctly signed, so only the expiry parse can refuse it.
  EXPECT_EQ(signer.Verify(SignedToken(KeyOf(1), "v1.alice.9223372036854775808"), kNow).error,
            TokenError::kMalformed);
  EXPECT_EQ(signer.Verify(SignedToken(KeyOf(1), "v1.alice.99999999999999999999999"), kNow).error,
            TokenError::kMalformed);
  // The largest int64 is a valid (far future) expiry.
  const TokenCheck check =
      signer.Verify(SignedToken(KeyOf(1), "v1.alice.9223372036854775807"), kNow);
  EXPECT_EQ(check.error, TokenError::kNone) << check.message;
  EXPECT_EQ(check.expiry_unix_s, std::numeric_limits<int64_t>::max());
}

TEST(TokenTest, MalformedTokensAreMalformed) {
  const TokenSigner signer(KeyOf(1));
  const std::string good = signer.Mint("alice", kNow + 60);
  const std::string signature = SignatureOf(good);
  const std::string expiry = std::to_string(kNow + 60);
  const std::string cases[] = {
      "",
      "v1",
      "v1.",
      "v1.alice",
      "v1.alice." + expiry,                                           // Missing signature.
      "v1.alice." + expiry + ".",                                     // Empty signature.
      "v1." + expiry + "." + signature,                               // Missing user.
      "v1..alice." + expiry + "." + signature,                        // User starts with '.'.
      "v1.al ice." + expiry + "." + signature,                        // Space in user.
      "v1.al/ice." + expiry + "." + signature,                        // '/' in user.
      "v1." + std::string(65, 'a') + "." + expiry + "." + signature,  // User too long.
      "v1.alice.." + signature,                                       // Empty expiry.
      "v1.alice.12x4." + signature,                                   // Non-digit expiry.
      "v1.alice.-5." + signature,                                     // Negative expiry.
      "v1.alice.+5." + signature,                                     // Signed expiry.
      "v1.alice.0" + expiry + "." + signature,       // Leading zero: not what Mint writes.
      "v1.alice." + expiry + "." + signature + "=",  // Padding.
      "v1.alice." + expiry + "." + signature.substr(0, 42) + "=",  // Padding in place.
      "v1.alice." + expiry + "." + signature.substr(0, 42) + "+",  // Plain-base64 byte.
      "v1.alice." + expiry + "." + signature.substr(0, 42) + "*",  // Not base64 at all.
      "v1.alice." + expiry + "." + signature.substr(0, 40),        // Truncated signature.
      "v1.alice." + expiry + "." + signature + "AAAA",             // Signature too long.
      good.substr(0, good.size() - 1),                             // Truncated token.
      "v2.alice." + expiry + "." + signature,
      "V1.alice." + expiry + "." + signature,
      " " + good,
      good + " ",
      good + "\n",
      "v1.alice." + expiry + "." + signature + "." + signature,
      "v1.alice." + std::string(2000, '1') + "." + signature,  // Beyond kTokenBytesMax.
  };
  for (const std::string& token : cases) {
    const TokenCheck check = signer.Verify(token, kNow);
    EXPECT_EQ(check.error, TokenError::kMalformed) << "token: " << base::CEscape(token);
    EXPECT_NE(check.message, "") << base::CEscape(token);
    EXPECT_EQ(check.user, "");
  }
  // The control: the same pieces put together properly verify.
  EXPECT_EQ(signer.Verify("v1.alice." + expiry + "." + signature, kNow).error, TokenError::kNone);
}

TEST(TokenTest, NonCanonicalSignatureEncodingIsMalformedNotAccepted) {
  const TokenSigner signer(KeyOf(1));
  const std::string token = signer.Mint("alice", kNow + 60);
  // The 43rd character carries 4 data bits and 2 unused ones; setting an unused bit gives
  // the same bytes under a plain decoder. A strict decoder refuses it.
  std::string altered = token;
  const size_t value =
      std::string_view("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
          .find(altered.back());
  ASSERT_EQ(value & 3, 0);
  altered.back() = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[value | 1];
  EXPECT_EQ(signer.Verify(altered, kNow).error, TokenError::kMalformed);
}

TEST(TokenDeathTest, MintRefusesAnInvalidUserName) {
  const TokenSigner signer(KeyOf(1));
  EXPECT_DEATH(signer.Mint(".alice", kNow), "check failed");
  EXPECT_DEATH(signer.Mint("", kNow), "check failed");
  EXPECT_DEATH(signer.Mint("al ice", kNow), "check failed");
  EXPECT_DEATH(signer.Mint("alice", -1), "check failed");
}

// --- The secret file ------------------------------------------------------------------------

class SecretFileTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = testing::TempDir() + "hoot_auth_XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    directory_ = pattern;
  }
  void TearDown() override {
    for (const std::string& name : created_) ::unlink((directory_ + "/" + name).c_str());
    ::rmdir(directory_.c_str());
  }
  std::string PathOf(const std::string& name) {
    created_.push_back(name);
    return directory_ + "/" + name;
  }
  std::string WriteFile(const std::string& name, const std::string& contents, mode_t mode) {
    const std::string path = PathOf(name);
    std::ofstream(path, std::ios::binary) << contents;
    EXPECT_EQ(::chmod(path.c_str(), mode), 0);
    return path;
  }
  static std::string ReadFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

  std::string directory_;
  std::vector<std::string> created_;
};

TEST_F(SecretFileTest, CreateThenLoadSignsWithTheStoredKey) {
  const std::string path = PathOf("secret");
  ASSERT_TRUE(TokenSigner::CreateSecretFile(path).ok());

  struct stat status;
  ASSERT_EQ(::stat(path.c_str(), &status), 0);
  EXPECT_EQ(status.st_mode & 07777, 0600u);
  const std::string text = ReadFile(path);
  ASSERT_EQ(text.size(), 65u);
  EXPECT_EQ(text.back(), '\n');
  const std::optional<std::string> key = base::HexDecode(text.substr(0, 64));
  ASSERT_TRUE(key.has_value());

  absl::StatusOr<TokenSigner> loaded = TokenSigner::FromSecretFile(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  // The loaded signer uses exactly the key in the file.
  const std::string token = loaded->Mint("alice", kNow + 60);
  EXPECT_EQ(token, SignedToken(*key, "v1.alice." + std::to_string(kNow + 60)));
  EXPECT_EQ(TokenSigner(*key).Verify(token, kNow).error, TokenError::kNone);
}

TEST_F(SecretFileTest, TwoCreatedSecretsDiffer) {
  const std::string first = PathOf("first");
  const std::string second = PathOf("second");
  ASSERT_TRUE(TokenSigner::CreateSecretFile(first).ok());
  ASSERT_TRUE(TokenSigner::CreateSecretFile(second).ok());
  EXPECT_NE(ReadFile(first), ReadFile(second));
}

TEST_F(SecretFileTest, SecondCreateIsAlreadyExistsAndKeepsTheKey) {
  const std::string path = PathOf("secret");
  ASSERT_TRUE(TokenSigner::CreateSecretFile(path).ok());
  const std::string before = ReadFile(path);
  const absl::Status again = TokenSigner::CreateSecretFile(path);
  EXPECT_TRUE(absl::IsAlreadyExists(again)) << again;
  EXPECT_EQ(ReadFile(path), before);
}

TEST_F(SecretFileTest, CreateUnderARestrictiveUmaskStillGivesMode0600) {
  const std::string path = PathOf("secret");
  const mode_t old_umask = ::umask(0277);
  const absl::Status created = TokenSigner::CreateSecretFile(path);
  ::umask(old_umask);
  ASSERT_TRUE(created.ok()) << created;
  struct stat status;
  ASSERT_EQ(::stat(path.c_str(), &status), 0);
  EXPECT_EQ(status.st_mode & 07777, 0600u);
  EXPECT_TRUE(TokenSigner::FromSecretFile(path).ok());
}

TEST_F(SecretFileTest, LoadOrCreateCreatesOnceThenLoadsTheSameKey) {
  const std::string path = PathOf("secret");
  absl::StatusOr<TokenSigner> first = TokenSigner::LoadOrCreate(path);
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string text = ReadFile(path);
  absl::StatusOr<TokenSigner> second = TokenSigner::LoadOrCreate(path);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(ReadFile(path), text);
  EXPECT_EQ(second->Verify(first->Mint("alice", kNow + 60), kNow).error, TokenError::kNone);
}

TEST_F(SecretFileTest, MissingFileIsNotFoundAndNamed) {
  const std::string path = directory_ + "/absent";
  absl::StatusOr<TokenSigner> loaded = TokenSigner::FromSecretFile(path);
  EXPECT_TRUE(absl::IsNotFound(loaded.status())) << loaded.status();
  EXPECT_NE(loaded.status().message().find(path), absl::string_view::npos);
}

TEST_F(SecretFileTest, AcceptsUpperCaseHexAndNoTrailingNewline) {
  const std::string key = KeyOf('\xa0');
  std::string hex = base::HexEncode(key);
  for (char& c : hex) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const std::string path = WriteFile("secret", hex, 0600);
  absl::StatusOr<TokenSigner> loaded = TokenSigner::FromSecretFile(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->Mint("alice", 5), TokenSigner(key).Mint("alice", 5));
}

TEST_F(SecretFileTest, GroupOrOtherAccessIsRefused) {
  const std::string hex = base::HexEncode(KeyOf(3)) + "\n";
  for (const mode_t mode : {0640, 0604, 0660, 0644, 0610, 0601}) {
    const std::string name = "secret" + std::to_string(mode);
    const std::string path = WriteFile(name, hex, mode);
    absl::StatusOr<TokenSigner> loaded = TokenSigner::FromSecretFile(path);
    EXPECT_FALSE(loaded.ok()) << "mode " << mode;
    EXPECT_NE(loaded.status().message().find(path), absl::string_view::npos) << loaded.status();
    EXPECT_NE(loaded.status().message().find("chmod 600"), absl::string_view::npos);
  }
  // The control: the same bytes at 0600 and 0400 load.
  EXPECT_TRUE(TokenSigner::FromSecretFile(WriteFile("ok600", hex, 0600)).ok());
  EXPECT_TRUE(TokenSigner::FromSecretFile(WriteFile("ok400", hex, 0400)).ok());
}

TEST_F(SecretFileTest, ShortKeyIsRefused) {
  // 31 bytes: one short.
  const std::string path = WriteFile("short", base::HexEncode(KeyOf(3).substr(0, 31)) + "\n", 0600);
  absl::StatusOr<TokenSigner> loaded = TokenSigner::FromSecretFile(path);
  EXPECT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find(path), absl::string_view::npos) << loaded.status();
  EXPECT_NE(loaded.status().message().find("31-byte key"), absl::string_view::npos)
      << loaded.status();
  EXPECT_FALSE(TokenSigner::FromSecretFile(WriteFile("empty", "", 0600)).ok());
  EXPECT_FALSE(TokenSigner::FromSecretFile(WriteFile("newline", "\n", 0600)).ok());
}

TEST_F(SecretFileTest, BadHexIsRefused) {
  const std::string hex = base::HexEncode(KeyOf(3));
  const std::string cases[] = {
      "g" + hex.substr(1) + "\n",                        // Not a hex digit.
      hex.substr(1) + "\n",                              // Odd number of digits.
      hex + "\n\n",                                      // Two newlines.
      " " + hex + "\n",                                  // Leading space.
      hex + " \n",                                       // Trailing space.
      hex + "\r\n",                                      // CRLF.
      hex.substr(0, 32) + "\n" + hex.substr(32) + "\n",  // Split over two lines.
      std::string(8192, '0'),                            // Too large to be a secret file.
  };
  int index = 0;
  for (const std::string& contents : cases) {
    const std::string path = WriteFile("bad" + std::to_string(index++), contents, 0600);
    absl::StatusOr<TokenSigner> loaded = TokenSigner::FromSecretFile(path);
    EXPECT_FALSE(loaded.ok()) << base::CEscape(contents);
    EXPECT_NE(loaded.status().message().find(path), absl::string_view::npos) << loaded.status();
  }
}

TEST_F(SecretFileTest, DirectoryIsRefused) {
  const std::string path = PathOf("dir");
  ASSERT_EQ(::mkdir(path.c_str(), 0700), 0);
  EXPECT_FALSE(TokenSigner::FromSecretFile(path).ok());
  ::rmdir(path.c_str());
}

}  // namespace
}  // namespace hoot::auth
