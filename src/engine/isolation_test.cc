// Isolation: nothing leaks between runs, sessions, or out to the host.
#include <gtest/gtest.h>

#include <cstdlib>

#include "test_engine.h"

namespace rlmbox::engine {
namespace {

using testing::NewSession;
using testing::RunCode;
using testing::RunIn;

TEST(Isolation, StatelessRunsSeeNothingOfEarlierRuns) {
  ASSERT_EQ(RunCode("secret = 'tenant-a'\nimport sys\nsys.modules['evil'] = 1").outcome, Outcome::kOk);
  auto r = RunCode("import sys\nprint('secret' in globals(), 'evil' in sys.modules)");
  EXPECT_EQ(r.stdout_text, "False False\n");
}

TEST(Isolation, SessionsNeverSeeEachOther) {
  auto a = NewSession();
  auto b = NewSession();
  RunIn(*a, "mine = 'a'");
  RunIn(*b, "mine = 'b'");
  EXPECT_EQ(RunIn(*a, "mine").stdout_text, "'a'\n");
  EXPECT_EQ(RunIn(*b, "mine").stdout_text, "'b'\n");
  auto c = NewSession();
  EXPECT_EQ(RunIn(*c, "'mine' in globals()").stdout_text, "False\n");
}

TEST(Isolation, RandomnessDiffersBetweenFreshInstances) {
  const std::string code =
      "import random, os, uuid\nprint(random.random(), os.urandom(8).hex(), uuid.uuid4())";
  auto r1 = RunCode(code);
  auto r2 = RunCode(code);
  ASSERT_EQ(r1.outcome, Outcome::kOk) << r1.stderr_text;
  EXPECT_NE(r1.stdout_text, r2.stdout_text);
  // Each part on its own differs too.
  auto first = [](const std::string& s) { return s.substr(0, s.find(' ')); };
  EXPECT_NE(first(r1.stdout_text), first(r2.stdout_text));
}

TEST(Isolation, NoNetwork) {
  auto r = RunCode(
      "import socket\n"
      "s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
      "s.connect(('127.0.0.1', 80))\n");
  EXPECT_EQ(r.outcome, Outcome::kException);
  auto dns = RunCode("import socket\nsocket.getaddrinfo('localhost', 80)");
  EXPECT_EQ(dns.outcome, Outcome::kException);
}

TEST(Isolation, NoSubprocess) {
  auto r = RunCode("import subprocess\nsubprocess.run(['ls'])");
  EXPECT_EQ(r.outcome, Outcome::kException);
  auto sys = RunCode("import os\nos.system('ls')");
  EXPECT_EQ(sys.outcome, Outcome::kException);
  auto fork = RunCode("import os\nos.fork()");
  EXPECT_EQ(fork.outcome, Outcome::kException);
}

TEST(Isolation, NoWritesOutsideTheSandbox) {
  for (const char* path : {"/lib/x.txt", "/tmp/x.txt", "x.txt", "/lib/../etc_passwd", "/etc/passwd"}) {
    auto r = RunCode(std::string("open('") + path + "', 'w').write('x')");
    EXPECT_EQ(r.outcome, Outcome::kException) << path;
  }
  // The stdlib mount is read-only but readable; the host's files are not there.
  EXPECT_EQ(RunCode("import os\nsorted(os.listdir('/lib'))").stdout_text, "['python313.zip']\n");
  EXPECT_EQ(RunCode("open('/lib/../../etc/passwd').read()").outcome, Outcome::kException);
  EXPECT_EQ(RunCode("open('/proc/self/environ').read()").outcome, Outcome::kException);
}

TEST(Isolation, HostEnvironmentIsInvisible) {
  ::setenv("RLMBOX_TEST_SECRET", "hunter2", 1);
  auto r = RunCode("import os\nprint(dict(os.environ))");
  EXPECT_EQ(r.stdout_text, "{}\n");
}

}  // namespace
}  // namespace rlmbox::engine
