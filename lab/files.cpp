// Atomic replace, whole-line append, whole-file read and directory creation on POSIX.
// The atomic parts use open/write/fsync/rename directly because iostreams hide short writes
// and cannot fsync; the cost is a little errno plumbing, kept in one place by fail_errno.
#include "lab/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "kernels/error.hpp"

namespace statelab {
namespace {

[[noreturn]] void fail_errno(const std::string& path, const std::string& what, int err) {
  throw IoError(path + ": " + what + ": " + std::strerror(err));
}

// Closes on scope exit so that every throw path releases the descriptor; close() errors that
// matter (data not written) are checked explicitly before the guard runs.
class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  ~FdGuard() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  // Closes now and returns 0 or the errno of close(), so the caller can report it.
  int close_now() {
    int rc = ::close(fd_);
    fd_ = -1;
    return rc == 0 ? 0 : errno;
  }

 private:
  int fd_;
};

// Writes all of `bytes`, retrying partial writes and EINTR. Returns 0 or an errno; a write
// that makes no progress is reported as ENOSPC, which is what a full disk looks like then.
int write_all(int fd, const char* data, size_t size) {
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::write(fd, data + done, size - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return ENOSPC;
    done += static_cast<size_t>(n);
  }
  return 0;
}

int fsync_retry(int fd) {
  while (::fsync(fd) != 0) {
    if (errno != EINTR) return errno;
  }
  return 0;
}

}  // namespace

void write_file_atomic(const std::string& path, const std::string& bytes) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const std::string base = target.filename().string();
  if (base.empty() || base == "." || base == "..") {
    throw IoError(path + ": not a file path (no file name after the last '/')");
  }
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  // The counter keeps two threads of one process that write the same path from sharing a
  // temporary file; the pid does the same across processes.
  static std::atomic<unsigned long> counter{0};
  const fs::path temp = dir / ("." + base + ".tmp." + std::to_string(::getpid()) + "." +
                               std::to_string(counter.fetch_add(1)));
  const std::string temp_s = temp.string();

  int fd = ::open(temp_s.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) fail_errno(path, "cannot create temporary file " + temp_s, errno);
  {
    FdGuard guard(fd);
    int err = write_all(fd, bytes.data(), bytes.size());
    const char* step = "cannot write temporary file ";
    if (err == 0) {
      err = fsync_retry(fd);
      step = "cannot fsync temporary file ";
    }
    if (err == 0) {
      err = guard.close_now();
      step = "cannot close temporary file ";
    }
    if (err != 0) {
      ::unlink(temp_s.c_str());
      fail_errno(path, step + temp_s, err);
    }
  }
  if (::rename(temp_s.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(temp_s.c_str());
    fail_errno(path, "cannot rename " + temp_s + " over it", err);
  }
  // Without this the rename itself may be lost in a crash, leaving the old file or none.
  const std::string dir_s = dir.string();
  int dfd = ::open(dir_s.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) fail_errno(path, "written, but cannot open directory " + dir_s + " to fsync it", errno);
  FdGuard dguard(dfd);
  int err = fsync_retry(dfd);
  if (err != 0) fail_errno(path, "written, but cannot fsync directory " + dir_s, err);
}

void append_line(const std::string& path, const std::string& line) {
  if (line.find('\n') != std::string::npos) {
    throw Error(path + ": append_line: line contains '\\n', which would split the record");
  }
  const std::string record = line + "\n";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
  if (fd < 0) fail_errno(path, "cannot open for appending", errno);
  FdGuard guard(fd);
  // One write(2) only: retrying a partial write would let another appender's line land inside
  // ours, so a short write is reported instead.
  ssize_t n;
  do {
    n = ::write(fd, record.data(), record.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) fail_errno(path, "cannot append line", errno);
  if (static_cast<size_t>(n) != record.size()) {
    throw IoError(path + ": short append: wrote " + std::to_string(n) + " of " +
                  std::to_string(record.size()) + " bytes (disk full?)");
  }
  int err = guard.close_now();
  if (err != 0) fail_errno(path, "cannot close after appending", err);
}

std::string read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail_errno(path, "cannot open for reading", errno);
  FdGuard guard(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail_errno(path, "cannot stat", errno);
  if (S_ISDIR(st.st_mode)) throw IoError(path + ": cannot read: is a directory");
  std::string out;
  if (S_ISREG(st.st_mode) && st.st_size > 0) out.reserve(static_cast<size_t>(st.st_size));
  // Read to EOF rather than trusting st_size: the file may grow, and pipes or /proc files
  // report no size at all.
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_errno(path, "cannot read", errno);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

void ensure_directory(const std::string& path) {
  namespace fs = std::filesystem;
  if (path.empty()) throw IoError("ensure_directory: empty path");
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) throw IoError(path + ": cannot create directory: " + ec.message());
  // create_directories reports no error when the final component exists as a non-directory.
  if (!fs::is_directory(path, ec)) {
    throw IoError(path + ": cannot create directory: a file that is not a directory is in the way");
  }
}

int remove_stale_temporaries(const std::string& dir) {
  namespace fs = std::filesystem;
  int removed = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    // write_file_atomic's temporaries: "." + final name + ".tmp." + pid + "." + counter
    if (name.size() > 1 && name[0] == '.' && name.find(".tmp.") != std::string::npos &&
        it->is_regular_file(ec)) {
      std::error_code rm;
      removed += fs::remove(it->path(), rm);
    }
  }
  return removed;
}

}  // namespace statelab
