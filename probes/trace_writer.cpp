// The trace writer fills the safetensors file in place: its header is known from the specs, so
// each append is one pwrite at the element's final offset, and finish() only has to sync and
// rename it. The page cache is the only buffer, a system call per append being cheap next to
// computing the traces. The NPZ is then streamed from that file through a libzip callback source
// (the NPY header from memory, the data from disk), stored rather than deflated: deflate saves
// about a tenth on float traces, not worth a CPU-bound finish() for bytes that the safetensors
// file holds anyway.
#include "probes/trace_writer.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <zip.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>
#include <utility>

#include "kernels/error.hpp"
#include "lab/files.hpp"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "probes/trace_writer.cpp writes host bytes as little-endian '<f4'/'<i4' data"
#endif

namespace statelab {
namespace {

namespace fs = std::filesystem;
using safetensors::DType;
using nlohmann::json;

const char* const kSafetensorsName = "traces.safetensors";
const char* const kNpzName = "traces.npz";
const char* const kManifestName = "manifest.json";

// Named like write_file_atomic's temporaries, so remove_stale_temporaries also clears the ones
// a killed process leaves.
fs::path temp_path(const fs::path& dir, const std::string& final_name) {
  static std::atomic<unsigned long> counter{0};
  return dir / ("." + final_name + ".tmp." + std::to_string(::getpid()) + "." +
                std::to_string(counter.fetch_add(1)));
}

// Retries partial writes and EINTR; 0 or an errno, with no progress reported as ENOSPC.
int pwrite_all(int fd, const char* data, size_t size, int64_t offset) {
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::pwrite(fd, data + done, size - done, static_cast<off_t>(offset) +
                                                           static_cast<off_t>(done));
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

[[noreturn]] void fail_errno(const fs::path& path, const std::string& what, int err) {
  throw IoError(path.string() + ": " + what + ": " + std::strerror(err));
}

std::string join_dims(const std::vector<int64_t>& shape) {
  std::string s;
  for (size_t i = 0; i < shape.size(); ++i) s += (i > 0 ? ", " : "") + std::to_string(shape[i]);
  return s;
}

std::string shape_str(const std::vector<int64_t>& shape) { return "[" + join_dims(shape) + "]"; }

// NPY format 1.0: magic, version, the header length (uint16 LE), then a Python dict literal
// padded with spaces and ended by '\n' so that the data starts on a 64-byte boundary, as numpy
// itself writes it.
std::string npy_header(DType dtype, const std::vector<int64_t>& shape) {
  std::string dict = std::string("{'descr': '") + (dtype == DType::F32 ? "<f4" : "<i4") +
                     "', 'fortran_order': False, 'shape': (";
  dict += join_dims(shape) + (shape.size() == 1 ? ",), }" : "), }");
  dict.append((64 - (10 + dict.size() + 1) % 64) % 64, ' ');
  dict += '\n';
  if (dict.size() > 0xffff) throw Error("NPY header longer than format 1.0 allows");
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(dict.size() & 0xff);
  out += static_cast<char>(dict.size() >> 8);
  return out + dict;
}

// One NPZ entry as a libzip source: the NPY header, then the array's bytes read from the data
// file. Owned by write_npz, which keeps it alive until libzip has freed the source.
class NpyEntry {
 public:
  NpyEntry(std::string header, int fd, int64_t offset, int64_t nbytes)
      : header_(std::move(header)), fd_(fd), offset_(offset), nbytes_(nbytes) {
    zip_error_init(&error_);
  }
  NpyEntry(const NpyEntry&) = delete;
  NpyEntry& operator=(const NpyEntry&) = delete;
  ~NpyEntry() { zip_error_fini(&error_); }

  static zip_int64_t callback(void* self, void* data, zip_uint64_t len, zip_source_cmd_t cmd) {
    return static_cast<NpyEntry*>(self)->handle(data, len, cmd);
  }

 private:
  int64_t size() const { return static_cast<int64_t>(header_.size()) + nbytes_; }

  zip_int64_t handle(void* data, zip_uint64_t len, zip_source_cmd_t cmd) {
    switch (cmd) {
      case ZIP_SOURCE_OPEN:
        pos_ = 0;
        return 0;
      case ZIP_SOURCE_READ:
        return read(static_cast<char*>(data), len);
      case ZIP_SOURCE_CLOSE:
      case ZIP_SOURCE_FREE:
        return 0;
      case ZIP_SOURCE_STAT: {
        if (len < sizeof(zip_stat_t)) {
          zip_error_set(&error_, ZIP_ER_INVAL, 0);
          return -1;
        }
        auto* st = static_cast<zip_stat_t*>(data);
        zip_stat_init(st);
        st->size = static_cast<zip_uint64_t>(size());
        st->mtime = std::time(nullptr);
        st->valid |= ZIP_STAT_SIZE | ZIP_STAT_MTIME;
        return sizeof(zip_stat_t);
      }
      case ZIP_SOURCE_ERROR:
        return zip_error_to_data(&error_, data, len);
      case ZIP_SOURCE_SUPPORTS:
        return zip_source_make_command_bitmap(ZIP_SOURCE_OPEN, ZIP_SOURCE_READ, ZIP_SOURCE_CLOSE,
                                              ZIP_SOURCE_STAT, ZIP_SOURCE_ERROR, ZIP_SOURCE_FREE,
                                              -1);
      default:
        zip_error_set(&error_, ZIP_ER_OPNOTSUPP, 0);
        return -1;
    }
  }

  zip_int64_t read(char* out, zip_uint64_t len) {
    const int64_t hsize = static_cast<int64_t>(header_.size());
    const auto remaining = static_cast<zip_uint64_t>(size() - pos_);
    const auto want = static_cast<int64_t>(std::min(len, remaining));
    int64_t done = 0;
    if (pos_ < hsize) {
      done = std::min(want, hsize - pos_);
      std::memcpy(out, header_.data() + pos_, static_cast<size_t>(done));
    }
    while (done < want) {
      const int64_t at = offset_ + pos_ + done - hsize;
      const ssize_t n =
          ::pread(fd_, out + done, static_cast<size_t>(want - done), static_cast<off_t>(at));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        // A short file would mean the data file changed under us; report it as a read error.
        zip_error_set(&error_, ZIP_ER_READ, n < 0 ? errno : EIO);
        return -1;
      }
      done += n;
    }
    pos_ += done;
    return done;
  }

  std::string header_;
  int fd_;
  int64_t offset_;
  int64_t nbytes_;
  int64_t pos_ = 0;
  zip_error_t error_;
};

}  // namespace

TraceWriter::TraceWriter(fs::path dir, std::vector<TraceArray> arrays, json manifest_info)
    : dir_(std::move(dir)) {
  if (arrays.empty()) throw Error(who() + "no arrays declared");
  if (manifest_info.is_null()) manifest_info = json::object();
  if (!manifest_info.is_object()) {
    throw Error(who() + "manifest_info must be a JSON object (got " +
                std::string(manifest_info.type_name()) + ")");
  }
  if (manifest_info.contains("arrays")) {
    throw Error(who() + "manifest_info key \"arrays\" is reserved for the array descriptions");
  }

  std::vector<safetensors::TensorInfo> infos;
  for (const TraceArray& a : arrays) {
    const std::string what = who() + "array '" + a.name + "': ";
    if (a.name.empty()) throw Error(who() + "array with an empty name");
    // The name becomes an NPZ member name, where a separator would make a path.
    if (a.name.find_first_of("/\\") != std::string::npos) {
      throw Error(what + "name contains '/' or '\\'");
    }
    if (a.axes.size() != a.shape.size()) {
      throw Error(what + std::to_string(a.axes.size()) + " axes for shape " + shape_str(a.shape) +
                  " of rank " + std::to_string(a.shape.size()));
    }
    if (a.dtype != DType::F32 && a.dtype != DType::I32) {
      throw Error(what + "dtype " + safetensors::dtype_name(a.dtype) + " (traces are F32 or I32)");
    }
    infos.push_back({a.name, a.dtype, a.shape});
  }
  // serialize_header refuses duplicate names, negative dimensions and sizes that overflow, so
  // the products below are safe.
  std::string header;
  try {
    header = safetensors::serialize_header(infos, {});
  } catch (const Error& e) {
    throw Error(who() + e.what());
  }

  json described = json::object();
  int64_t offset = static_cast<int64_t>(header.size());
  for (TraceArray& a : arrays) {
    int64_t numel = 1;
    for (int64_t d : a.shape) numel *= d;
    described[a.name] = {{"shape", a.shape},
                         {"axes", a.axes},
                         {"dtype", safetensors::dtype_name(a.dtype)},
                         {"meaning", a.meaning}};
    if (!a.kind.empty()) described[a.name]["kind"] = a.kind;
    std::string npy = npy_header(a.dtype, a.shape);
    index_.emplace(a.name, slots_.size());
    slots_.push_back({std::move(a), std::move(npy), numel, offset, 0});
    offset += numel * 4;
  }
  manifest_info["arrays"] = std::move(described);
  try {
    // Dumped now, so text that is not UTF-8 fails here rather than after the export.
    manifest_text_ = manifest_info.dump(2) + "\n";
  } catch (const json::exception& e) {
    throw Error(who() + "manifest is not valid UTF-8: " + e.what());
  }

  ensure_directory(dir_.string());
  data_temp_ = temp_path(dir_, kSafetensorsName);
  npz_temp_ = temp_path(dir_, kNpzName);
  fd_ = ::open(data_temp_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd_ < 0) fail_errno(dir_, "cannot create temporary file " + data_temp_.string(), errno);
  const int err = pwrite_all(fd_, header.data(), header.size(), 0);
  if (err != 0) {
    discard({});
    fail_errno(data_temp_, "cannot write the safetensors header", err);
  }
}

std::string TraceWriter::who() const { return "TraceWriter(" + dir_.string() + "): "; }

TraceWriter::~TraceWriter() {
  if (!done_) discard({});
}

void TraceWriter::append(const std::string& name, const float* data, int64_t count) {
  append_bytes(name, DType::F32, data, count);
}

void TraceWriter::append(const std::string& name, const int32_t* data, int64_t count) {
  append_bytes(name, DType::I32, data, count);
}

void TraceWriter::append_bytes(const std::string& name, DType dtype, const void* data,
                               int64_t count) {
  if (done_) throw Error(who() + "append to '" + name + "' after finish()");
  auto it = index_.find(name);
  if (it == index_.end()) throw Error(who() + "append to unknown array '" + name + "'");
  Slot& s = slots_[it->second];
  if (s.spec.dtype != dtype) {
    throw Error(who() + "append of " + safetensors::dtype_name(dtype) + " data to " +
                safetensors::dtype_name(s.spec.dtype) + " array '" + name + "'");
  }
  if (count < 0) throw Error(who() + "append of a negative count to '" + name + "'");
  if (count == 0) return;
  if (data == nullptr) throw Error(who() + "append of null data to '" + name + "'");
  if (count > s.numel - s.written) {
    throw Error(who() + "append of " + std::to_string(count) + " elements to '" + name +
                "' overflows its shape " + shape_str(s.spec.shape) + " (" +
                std::to_string(s.written) + " of " + std::to_string(s.numel) +
                " already appended)");
  }
  const int err = pwrite_all(fd_, static_cast<const char*>(data), static_cast<size_t>(count) * 4,
                             s.file_offset + s.written * 4);
  if (err != 0) {
    fail_errno(data_temp_, "cannot write " + std::to_string(count) + " elements of '" + name + "'",
               err);
  }
  s.written += count;
}

void TraceWriter::finish() {
  if (done_) throw Error(who() + "finish() already ran");
  std::string incomplete;
  for (const Slot& s : slots_) {
    if (s.written == s.numel) continue;
    incomplete += (incomplete.empty() ? "" : ", ") + ("'" + s.spec.name + "' misses " +
                                                      std::to_string(s.numel - s.written) +
                                                      " of " + std::to_string(s.numel));
  }
  if (!incomplete.empty()) throw Error(who() + "cannot finish, incomplete arrays: " + incomplete);

  done_ = true;
  std::vector<fs::path> finals;
  try {
    int err = fsync_retry(fd_);
    if (err != 0) fail_errno(data_temp_, "cannot fsync", err);
    write_npz();
    err = ::close(fd_) == 0 ? 0 : errno;
    fd_ = -1;
    if (err != 0) fail_errno(data_temp_, "cannot close", err);
    const std::pair<fs::path, const char*> renames[] = {{data_temp_, kSafetensorsName},
                                                        {npz_temp_, kNpzName}};
    for (const auto& [temp, name] : renames) {
      const fs::path final_path = dir_ / name;
      if (::rename(temp.c_str(), final_path.c_str()) != 0) {
        fail_errno(final_path, "cannot rename " + temp.string() + " over it", errno);
      }
      finals.push_back(final_path);
    }
    // Last, so a reader that finds the manifest finds both trace files complete; its directory
    // fsync also makes the two renames above durable.
    write_file_atomic((dir_ / kManifestName).string(), manifest_text_);
  } catch (...) {
    // Once a trace file is replaced, a manifest.json from an earlier export no longer describes
    // the directory, whether or not the new one got in.
    if (!finals.empty()) finals.push_back(dir_ / kManifestName);
    discard(finals);
    throw;
  }
}

void TraceWriter::write_npz() const {
  const std::string path = npz_temp_.string();
  int zerr = 0;
  zip_t* za = zip_open(path.c_str(), ZIP_CREATE | ZIP_EXCL, &zerr);
  if (za == nullptr) {
    zip_error_t e;
    zip_error_init_with_code(&e, zerr);
    const std::string msg = zip_error_strerror(&e);
    zip_error_fini(&e);
    throw IoError(path + ": cannot create zip archive: " + msg);
  }
  // Declared after `za` is opened and destroyed after it is closed or discarded, since libzip
  // reads the entries during zip_close.
  std::vector<std::unique_ptr<NpyEntry>> entries;
  auto fail = [&](const std::string& what) {
    const std::string msg = what + ": " + zip_strerror(za);
    zip_discard(za);
    throw IoError(path + ": " + msg);
  };
  for (const Slot& s : slots_) {
    entries.push_back(std::make_unique<NpyEntry>(s.npy_header, fd_, s.file_offset, s.numel * 4));
    zip_source_t* src = zip_source_function(za, &NpyEntry::callback, entries.back().get());
    if (src == nullptr) fail("cannot create the source for '" + s.spec.name + ".npy'");
    const std::string member = s.spec.name + ".npy";
    const zip_int64_t idx = zip_file_add(za, member.c_str(), src, ZIP_FL_ENC_UTF_8);
    if (idx < 0) {
      zip_source_free(src);
      fail("cannot add '" + member + "'");
    }
    if (zip_set_file_compression(za, static_cast<zip_uint64_t>(idx), ZIP_CM_STORE, 0) != 0) {
      fail("cannot set the compression of '" + member + "'");
    }
  }
  if (zip_close(za) != 0) fail("cannot write zip archive");

  // libzip does not sync what it wrote.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail_errno(npz_temp_, "cannot open to fsync", errno);
  const int err = fsync_retry(fd);
  ::close(fd);
  if (err != 0) fail_errno(npz_temp_, "cannot fsync", err);
}

void TraceWriter::discard(const std::vector<fs::path>& finals) noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  done_ = true;
  ::unlink(data_temp_.c_str());
  ::unlink(npz_temp_.c_str());
  for (const fs::path& p : finals) ::unlink(p.c_str());
}

}  // namespace statelab
