// Session snapshots on the real guest: what a restored or forked sandbox
// holds, and which sealed bytes are refused.
#include <gtest/gtest.h>

#include <set>

#include "engine/snapshot.h"
#include "test_engine.h"

namespace rlmbox::engine {
namespace {

using testing::FastLimits;
using testing::TestEngine;

std::unique_ptr<Sandbox> Fresh() {
  auto sb = TestEngine().NewSandbox();
  EXPECT_TRUE(sb.ok()) << sb.status().ToString();
  return sb.ok() ? std::move(sb).value() : nullptr;
}

std::string Out(Sandbox& sb, const std::string& code) {
  auto r = sb.Execute(code, FastLimits(), nullptr);
  EXPECT_EQ(r.outcome, Outcome::kOk) << r.error.value_or("") << r.stderr_text;
  return r.stdout_text;
}

// A session with every kind of state a cell leaves: variables, a function, a
// class and its instance, an import, a context, a big allocation.
std::unique_ptr<Sandbox> Populated() {
  auto sb = Fresh();
  EXPECT_TRUE(sb->SetContext({ContextValue::Kind::kText, "the context text"}, FastLimits()).ok());
  Out(*sb,
      "import json, collections\n"
      "x = 41\n"
      "def inc(a):\n    return a + 1\n"
      "class Box:\n    def __init__(self, v): self.v = v\n"
      "b = Box([1, 2, 3])\n"
      "big = bytearray(30 * 1024 * 1024)\n"
      "big[-1] = 7\n"
      "found = {'k': 'v'}\n");
  return sb;
}

const char* kCheck =
    "print(inc(x), b.v, json.dumps(found), collections.Counter('aab')['a'], len(big), big[-1],"
    " context)";
const char* kExpected = "42 [1, 2, 3] {\"k\": \"v\"} 2 31457280 7 the context text\n";

TEST(Snapshot, ARestoredSandboxHasTheStateOfTheOriginal) {
  auto sb = Populated();
  auto image = sb->Capture();
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  EXPECT_GE(image->memory_bytes, 30u << 20);
  const std::string sealed = TestEngine().Seal(*image, "host state").value();
  std::string_view host;
  auto opened = TestEngine().Open(sealed, &host);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(host, "host state");
  auto restored = TestEngine().Restore(*opened);
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(Out(**restored, kCheck), kExpected);
  // The variable lookup (FINAL_VAR) sees the same namespace.
  auto v = (*restored)->GetVar("found", FastLimits());
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ((*v)["value"], nlohmann::json({{"k", "v"}}));
  // And the original goes on untouched.
  EXPECT_EQ(Out(*sb, kCheck), kExpected);
}

TEST(Snapshot, ForksAreIsolatedFromEachOtherAndFromTheParent) {
  auto parent = Populated();
  Out(*parent, "import random\nrandom.seed(1234)\n");
  auto image = parent->Capture();
  ASSERT_TRUE(image.ok());
  std::vector<std::unique_ptr<Sandbox>> forks;
  for (int i = 0; i < 3; ++i) {
    auto f = TestEngine().Restore(*image);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    ASSERT_TRUE((*f)->Reseed().ok());
    forks.push_back(std::move(f).value());
  }
  for (int i = 0; i < 3; ++i) Out(*forks[i], "x = " + std::to_string(100 + i) + "\nb.v.append(0)");
  EXPECT_EQ(Out(*parent, "print(x, b.v)"), "41 [1, 2, 3]\n");
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Out(*forks[i], "print(x, b.v)"), std::to_string(100 + i) + " [1, 2, 3, 0]\n");
  }
  // Reseeded: the forks' random sequences differ from each other and from
  // the parent's seeded one.
  std::set<std::string> draws;
  draws.insert(Out(*parent, "print(random.random())"));
  for (auto& f : forks) draws.insert(Out(*f, "print(random.random())"));
  EXPECT_EQ(draws.size(), 4u);
}

TEST(Snapshot, AnIdleSessionSnapshotIsSmall) {
  auto sb = Fresh();
  Out(*sb, "x = 1");
  auto image = sb->Capture();
  ASSERT_TRUE(image.ok());
  // Only the pages the session wrote: about a megabyte, not the 20 MB heap.
  EXPECT_LT(image->pages.size(), 4u << 20);
  EXPECT_GT(image->pages.size(), 0u);
}

TEST(Snapshot, TamperedTruncatedAndForeignSnapshotsAreRefused) {
  auto sb = Populated();
  auto image = sb->Capture();
  ASSERT_TRUE(image.ok());
  const std::string sealed = TestEngine().Seal(*image, "{}").value();
  auto refused = [](std::string_view bytes) {
    auto r = TestEngine().Open(bytes, nullptr);
    return r.ok() ? std::string("accepted") : r.status().message();
  };
  std::string flipped = sealed;
  flipped[sealed.size() / 2] ^= 1;  // a page byte
  EXPECT_NE(refused(flipped).find("not authentic"), std::string::npos);
  std::string host_flip = sealed;
  host_flip[30] ^= 1;  // the header
  EXPECT_NE(refused(host_flip).find("not authentic"), std::string::npos);
  std::string nonce_flip = sealed;
  nonce_flip[10] ^= 1;  // the nonce the one-time key is derived from
  EXPECT_NE(refused(nonce_flip).find("not authentic"), std::string::npos);
  // Every seal draws its own nonce, so no two files share a one-time key.
  const std::string again = TestEngine().Seal(*image, "{}").value();
  EXPECT_NE(again.substr(8, 16), sealed.substr(8, 16));
  EXPECT_TRUE(TestEngine().Open(again, nullptr).ok());
  // A file in another format version names it.
  std::string older = sealed;
  older[7] = '1';
  EXPECT_NE(refused(older).find("another snapshot format (RLMBXSN1)"), std::string::npos);
  EXPECT_NE(refused(sealed.substr(0, sealed.size() - 1)).find("not authentic"), std::string::npos);
  EXPECT_NE(refused(sealed.substr(0, 40)).find("truncated"), std::string::npos);
  EXPECT_NE(refused("PK\x03\x04 not a snapshot").find("not an rlmbox"), std::string::npos);
  EXPECT_NE(refused("").find("not an rlmbox"), std::string::npos);
  // Sealed with another key (another server), or for another guest build.
  EXPECT_NE(OpenSnapshot(sealed, "another key", TestEngine().info().guest_sha256, nullptr)
                .status()
                .message()
                .find("not authentic"),
            std::string::npos);
  const std::string other_build = SealSnapshot(*image, "{}", "k", std::string(64, 'a')).value();
  auto foreign = OpenSnapshot(other_build, "k", TestEngine().info().guest_sha256, nullptr);
  ASSERT_FALSE(foreign.ok());
  EXPECT_NE(foreign.status().message().find("another guest build"), std::string::npos);
  // Authentic but inconsistent (a range outside the memory) is refused too.
  SandboxImage wild = *image;
  wild.ranges.back().first = static_cast<uint32_t>(wild.memory_bytes);
  const std::string wild_sealed =
      SealSnapshot(wild, "{}", "k", TestEngine().info().guest_sha256).value();
  auto w = OpenSnapshot(wild_sealed, "k", TestEngine().info().guest_sha256, nullptr);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find("malformed"), std::string::npos);
}

TEST(Snapshot, AHardStoppedSandboxCannotBeCaptured) {
  auto sb = Fresh();
  Limits l = FastLimits();
  l.timeout = std::chrono::milliseconds(100);
  // A cell that swallows the soft stop: the hard stop discards the sandbox.
  (void)sb->Execute("while True:\n    try:\n        while True: pass\n    except BaseException:\n        pass",
                    l, nullptr);
  ASSERT_FALSE(sb->usable());
  auto image = sb->Capture();
  ASSERT_FALSE(image.ok());
  EXPECT_EQ(image.status().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace rlmbox::engine
