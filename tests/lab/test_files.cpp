// Tests for lab/files: atomic replace, whole-line append, read and directory creation.
// Failures are provoked in ways that also work as root (a regular file where a directory should
// be, RLIMIT_FSIZE for a short write); the permission-based cases skip as root, where they
// cannot fail.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "kernels/error.hpp"
#include "lab/files.hpp"
#include "tests/support/temp_dir.hpp"

namespace fs = std::filesystem;
using statelab::append_line;
using statelab::ensure_directory;
using statelab::IoError;
using statelab::read_file;
using statelab::write_file_atomic;

namespace {

using statelab::testing::TempDir;

// The message of the IoError that `f` throws; a test failure if it throws anything else or nothing.
template <typename F>
std::string io_error_message(F&& f) {
  try {
    f();
  } catch (const IoError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected IoError, got another exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected IoError, nothing was thrown";
  return "";
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  return out;
}

TEST(Files, WriteAtomicCreatesFileWithExactBytes) {
  TempDir dir;
  const std::string bytes("a\0b\nc\xff", 6);
  write_file_atomic(dir / "f.bin", bytes);
  EXPECT_EQ(read_file(dir / "f.bin"), bytes);
}

TEST(Files, WriteAtomicReplacesExistingContent) {
  TempDir dir;
  write_file_atomic(dir / "f.txt", "a much longer first version");
  write_file_atomic(dir / "f.txt", "second");
  EXPECT_EQ(read_file(dir / "f.txt"), "second");
}

TEST(Files, WriteAtomicLeavesNoTemporaryFile) {
  TempDir dir;
  write_file_atomic(dir / "f.txt", "one");
  write_file_atomic(dir / "f.txt", "two");
  EXPECT_EQ(entries(dir.path()), std::vector<std::string>{"f.txt"});
}

TEST(Files, WriteAtomicWorksWithRelativePathWithoutDirectory) {
  TempDir dir;
  // Restored on every exit path, because the working directory is shared by later tests.
  struct CwdGuard {
    fs::path saved = fs::current_path();
    ~CwdGuard() { fs::current_path(saved); }
  };
  {
    CwdGuard guard;
    fs::current_path(dir.path());
    write_file_atomic("plain.txt", "x");
  }
  EXPECT_EQ(read_file(dir / "plain.txt"), "x");
  EXPECT_EQ(entries(dir.path()), std::vector<std::string>{"plain.txt"});
}

TEST(Files, WriteAtomicIntoMissingDirectoryThrowsNamingPathAndReason) {
  TempDir dir;
  const std::string path = dir / "no/such/dir/f.txt";
  std::string msg = io_error_message([&] { write_file_atomic(path, "x"); });
  EXPECT_TRUE(contains(msg, path)) << msg;
  EXPECT_TRUE(contains(msg, "No such file or directory")) << msg;
}

TEST(Files, WriteAtomicUnderRegularFileThrowsEvenForRoot) {
  TempDir dir;
  write_file_atomic(dir / "plain", "not a directory");
  const std::string path = dir / "plain/f.txt";
  std::string msg = io_error_message([&] { write_file_atomic(path, "x"); });
  EXPECT_TRUE(contains(msg, path)) << msg;
  EXPECT_TRUE(contains(msg, "Not a directory")) << msg;
  EXPECT_EQ(read_file(dir / "plain"), "not a directory");
}

TEST(Files, WriteAtomicShortWriteKeepsOldFileAndRemovesTemporary) {
  // RLIMIT_FSIZE makes write(2) fail with EFBIG part-way, as a full disk would, and works as root.
  TempDir dir;
  const std::string path = dir / "model.bin";
  write_file_atomic(path, "old content");
  struct rlimit saved {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = saved;
  small.rlim_cur = 4096;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string msg = io_error_message([&] { write_file_atomic(path, std::string(100000, 'z')); });
  ::setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_TRUE(contains(msg, path)) << msg;
  EXPECT_TRUE(contains(msg, "File too large")) << msg;
  EXPECT_EQ(read_file(path), "old content");
  EXPECT_EQ(entries(dir.path()), std::vector<std::string>{"model.bin"});
}

TEST(Files, WriteAtomicInUnwritableDirectoryThrowsAndKeepsOldFile) {
  if (::geteuid() == 0) GTEST_SKIP() << "running as root: directory permissions do not stop root";
  TempDir dir;
  const std::string sub = dir / "ro";
  ensure_directory(sub);
  const std::string path = sub + "/f.txt";
  write_file_atomic(path, "old");
  fs::permissions(sub, fs::perms::owner_read | fs::perms::owner_exec);
  std::string msg = io_error_message([&] { write_file_atomic(path, "new"); });
  fs::permissions(sub, fs::perms::owner_all);
  EXPECT_TRUE(contains(msg, path)) << msg;
  EXPECT_TRUE(contains(msg, "Permission denied")) << msg;
  EXPECT_EQ(read_file(path), "old");
  EXPECT_EQ(entries(sub), std::vector<std::string>{"f.txt"});
}

TEST(Files, AppendLineCreatesFileAndAppendsWholeLines) {
  TempDir dir;
  const std::string path = dir / "log.jsonl";
  append_line(path, "{\"step\": 1}");
  append_line(path, "");
  append_line(path, "{\"step\": 2}");
  EXPECT_EQ(read_file(path), "{\"step\": 1}\n\n{\"step\": 2}\n");
}

TEST(Files, AppendLineRejectsEmbeddedNewlineWithoutWriting) {
  TempDir dir;
  const std::string path = dir / "log.jsonl";
  EXPECT_THROW(append_line(path, "two\nlines"), statelab::Error);
  EXPECT_FALSE(fs::exists(path));
}

TEST(Files, AppendLineFromConcurrentThreadsNeverSplitsALine) {
  TempDir dir;
  const std::string path = dir / "log.txt";
  constexpr int kThreads = 4;
  constexpr int kLines = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Lines of different lengths per thread make an interleaving visible as a malformed line.
      const std::string body(static_cast<size_t>(100 + 37 * t), static_cast<char>('a' + t));
      for (int i = 0; i < kLines; ++i) append_line(path, std::to_string(t) + ":" + body);
    });
  }
  for (auto& th : threads) th.join();
  const std::string all = read_file(path);
  std::vector<int> counts(kThreads, 0);
  size_t pos = 0;
  while (pos < all.size()) {
    size_t nl = all.find('\n', pos);
    ASSERT_NE(nl, std::string::npos) << "file does not end with a newline";
    const std::string line = all.substr(pos, nl - pos);
    const int t = line[0] - '0';
    ASSERT_TRUE(t >= 0 && t < kThreads) << line;
    ASSERT_EQ(line, std::to_string(t) + ":" +
                        std::string(static_cast<size_t>(100 + 37 * t), static_cast<char>('a' + t)));
    ++counts[static_cast<size_t>(t)];
    pos = nl + 1;
  }
  EXPECT_EQ(counts, std::vector<int>(kThreads, kLines));
}

TEST(Files, AppendLineInMissingDirectoryThrowsNamingPath) {
  TempDir dir;
  const std::string path = dir / "missing/log.txt";
  std::string msg = io_error_message([&] { append_line(path, "x"); });
  EXPECT_TRUE(contains(msg, path)) << msg;
  EXPECT_TRUE(contains(msg, "No such file or directory")) << msg;
}

TEST(Files, ReadFileReturnsAllBytesIncludingNul) {
  TempDir dir;
  std::string bytes(200000, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 31);
  write_file_atomic(dir / "big.bin", bytes);
  EXPECT_EQ(read_file(dir / "big.bin"), bytes);
}

TEST(Files, ReadFileOfMissingFileNamesPath) {
  TempDir dir;
  const std::string path = dir / "absent.json";
  std::string msg = io_error_message([&] { (void)read_file(path); });
  EXPECT_TRUE(contains(msg, path)) << msg;
  EXPECT_TRUE(contains(msg, "No such file or directory")) << msg;
}

TEST(Files, ReadFileOfDirectoryThrowsNamingPath) {
  TempDir dir;
  const std::string path = dir.path().string();
  std::string msg = io_error_message([&] { (void)read_file(path); });
  EXPECT_TRUE(contains(msg, path)) << msg;
  EXPECT_TRUE(contains(msg, "is a directory")) << msg;
}

TEST(Files, EnsureDirectoryCreatesParentsAndAcceptsExisting) {
  TempDir dir;
  const std::string path = dir / "a/b/c";
  ensure_directory(path);
  EXPECT_TRUE(fs::is_directory(path));
  ensure_directory(path);
  EXPECT_TRUE(fs::is_directory(path));
}

TEST(Files, EnsureDirectoryWithFileInTheWayThrowsNamingPath) {
  TempDir dir;
  write_file_atomic(dir / "file", "x");
  for (const std::string& path : {dir / "file", dir / "file/sub"}) {
    std::string msg = io_error_message([&] { ensure_directory(path); });
    EXPECT_TRUE(contains(msg, path)) << msg;
    EXPECT_TRUE(contains(msg, "cannot create directory")) << msg;
  }
}

TEST(Files, EnsureDirectoryWithoutPermissionThrowsNamingPath) {
  if (::geteuid() == 0) GTEST_SKIP() << "running as root: directory permissions do not stop root";
  TempDir dir;
  const std::string ro = dir / "ro";
  ensure_directory(ro);
  fs::permissions(ro, fs::perms::owner_read | fs::perms::owner_exec);
  const std::string path = ro + "/sub";
  std::string msg = io_error_message([&] { ensure_directory(path); });
  fs::permissions(ro, fs::perms::owner_all);
  EXPECT_TRUE(contains(msg, path)) << msg;
  EXPECT_TRUE(contains(msg, "Permission denied")) << msg;
}

}  // namespace
