// The trace export against two independent readers: our safetensors::load for traces.safetensors
// and real numpy (numpy.load, plus zipfile for the raw NPY headers) for traces.npz, each compared
// value by value with what the test appended. Then the failure paths (incomplete arrays, an
// unfinished writer, bad appends and specs, unwritable directories, failed writes and renames)
// leaving no file behind, and the peak resident size staying flat over a 64 MiB export.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/error.hpp"
#include "lab/files.hpp"
#include "lab/safetensors.hpp"
#include "probes/trace_writer.hpp"
#include "tests/support/python.hpp"
#include "tests/support/temp_dir.hpp"

namespace statelab {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using safetensors::DType;
using statelab::testing::numpy_python;
using statelab::testing::quote;
using statelab::testing::run_ok;
using statelab::testing::TempDir;

const std::vector<std::string> kFinalNames = {"manifest.json", "traces.npz",
                                              "traces.safetensors"};

// Three arrays of ranks 1-3 and both dtypes, plus one with no elements. The values are exact in
// binary and differ between arrays and positions, so a misplaced piece shows as a wrong value.
struct Example {
  std::vector<TraceArray> arrays = {
      {"blocks.0.forget_gate", {"sample", "time", "head"}, {2, 5, 3}, DType::F32,
       "mean forget gate over the head's units, in (0, 1)", "gate"},
      {"blocks.0.cell_norm", {"time"}, {7}, DType::F32, "L2 norm of the cell state", ""},
      {"tokens", {"sample", "time"}, {2, 5}, DType::I32, "input token id", ""},
      {"blocks.1.unused", {"sample", "head"}, {0, 4}, DType::F32, "an array with no elements", ""}};
  std::vector<float> gate;       // [2, 5, 3]
  std::vector<float> norm;       // [7]
  std::vector<int32_t> tokens;   // [2, 5]

  Example() {
    for (int i = 0; i < 30; ++i) gate.push_back(static_cast<float>(i - 11) * 0.125f);
    for (int i = 0; i < 7; ++i) norm.push_back(std::ldexp(static_cast<float>(i + 1), 3 * i - 10));
    for (int i = 0; i < 10; ++i) tokens.push_back(i * 1000003 - 7);
    tokens.front() = std::numeric_limits<int32_t>::min();
    tokens.back() = std::numeric_limits<int32_t>::max();
  }
};

const json kInfo = {{"cell", "slstm"},
                    {"task", "copy"},
                    {"decoded_input", "abc|abc"},
                    {"config_hash", "0123abcd"},
                    {"checkpoint_step", 1200}};

// Sample by sample and time step by time step, as a probe loop appends; the cell norm in uneven
// pieces between them. `skip_last_token` leaves "tokens" one element short.
void append_interleaved(TraceWriter& w, const Example& e, bool skip_last_token = false) {
  size_t norm_done = 0;
  for (size_t st = 0; st < 10; ++st) {
    w.append("blocks.0.forget_gate", &e.gate[st * 3], 3);
    if (!(skip_last_token && st == 9)) w.append("tokens", &e.tokens[st], 1);
    if (st % 3 == 0) {
      const size_t n = std::min<size_t>(2, e.norm.size() - norm_done);
      w.append("blocks.0.cell_norm", &e.norm[norm_done], static_cast<int64_t>(n));
      norm_done += n;
    }
  }
}

std::vector<std::string> files_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// The message of the statelab::Error that `f` throws, or "" when it throws none.
template <typename E = Error>
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "";
}

template <typename T>
std::vector<T> decode(const safetensors::Entry& e) {
  std::vector<T> out(e.bytes.size() / sizeof(T));
  std::memcpy(out.data(), e.bytes.data(), out.size() * sizeof(T));
  return out;
}

TEST(TraceWriter, InterleavedAppendsRoundTripThroughSafetensorsAndManifest) {
  TempDir tmp;
  const fs::path dir = tmp.path() / "exports" / "run1";  // created by the writer
  const Example e;
  {
    TraceWriter w(dir, e.arrays, kInfo);
    append_interleaved(w, e);
    w.finish();
    EXPECT_TRUE(contains(error_of([&] { w.finish(); }), "already ran"));
    EXPECT_TRUE(contains(error_of([&] { w.append("tokens", e.tokens.data(), 1); }),
                         "after finish()"));
  }
  EXPECT_EQ(files_in(dir), kFinalNames) << "temporaries must be gone";

  const safetensors::Contents c = safetensors::load((dir / "traces.safetensors").string());
  EXPECT_TRUE(c.metadata.empty());
  EXPECT_EQ(c.order, (std::vector<std::string>{"blocks.0.forget_gate", "blocks.0.cell_norm",
                                               "tokens", "blocks.1.unused"}));
  for (const TraceArray& a : e.arrays) {
    ASSERT_EQ(c.tensors.count(a.name), 1u) << a.name;
    EXPECT_EQ(c.tensors.at(a.name).dtype, a.dtype) << a.name;
    EXPECT_EQ(c.tensors.at(a.name).shape, a.shape) << a.name;
  }
  EXPECT_EQ(decode<float>(c.tensors.at("blocks.0.forget_gate")), e.gate);
  EXPECT_EQ(decode<float>(c.tensors.at("blocks.0.cell_norm")), e.norm);
  EXPECT_EQ(decode<int32_t>(c.tensors.at("tokens")), e.tokens);
  EXPECT_TRUE(c.tensors.at("blocks.1.unused").bytes.empty());

  const json m = json::parse(read_file((dir / "manifest.json").string()));
  EXPECT_EQ(m.size(), kInfo.size() + 1);
  for (const auto& item : kInfo.items()) EXPECT_EQ(m.at(item.key()), item.value()) << item.key();
  ASSERT_EQ(m.at("arrays").size(), e.arrays.size());
  for (const TraceArray& a : e.arrays) {
    json want = {{"shape", a.shape},
                 {"axes", a.axes},
                 {"dtype", safetensors::dtype_name(a.dtype)},
                 {"meaning", a.meaning}};
    if (!a.kind.empty()) want["kind"] = a.kind;  // only where the caller gave one
    EXPECT_EQ(m.at("arrays").at(a.name), want) << a.name;
  }
}

// Reports what numpy.load sees and each member's raw NPY header, as JSON on stdout.
const char* const kNpzScript = R"PY(
import json, sys, zipfile
import numpy as np

path = sys.argv[1]
out = {"members": {}, "arrays": {}}
with zipfile.ZipFile(path) as z:
    for info in z.infolist():
        raw = z.read(info.filename)
        header_len = int.from_bytes(raw[8:10], "little")
        out["members"][info.filename] = {
            "magic_ok": raw[:6] == b"\x93NUMPY",
            "version": [raw[6], raw[7]],
            "data_offset": 10 + header_len,
            "header_ends_in_newline": raw[10 + header_len - 1:10 + header_len] == b"\n",
        }
with np.load(path, allow_pickle=False) as npz:
    for name in npz.files:
        a = npz[name]
        out["arrays"][name] = {"dtype": a.dtype.str, "shape": list(a.shape),
                               "values": a.ravel().tolist()}
json.dump(out, sys.stdout)
)PY";

TEST(TraceWriter, NpzLoadsInNumpyWithTheSameArraysAsTheSafetensorsFile) {
  std::string why;
  const std::string python = numpy_python(&why);
  if (python.empty()) GTEST_SKIP() << why;
  TempDir tmp;
  const Example e;
  {
    TraceWriter w(tmp.path(), e.arrays, kInfo);
    append_interleaved(w, e);
    w.finish();
  }
  const std::string script = tmp / "read_npz.py";
  write_file_atomic(script, kNpzScript);
  const std::string out = tmp / "npz.json";
  const std::string err = tmp / "npz.err";
  ASSERT_TRUE(run_ok(quote(python) + " " + quote(script) + " " + quote(tmp / "traces.npz") +
                     " >" + quote(out) + " 2>" + quote(err)))
      << read_file(err);
  const json r = json::parse(read_file(out));

  ASSERT_EQ(r.at("members").size(), e.arrays.size());
  for (const TraceArray& a : e.arrays) {
    const json& m = r.at("members").at(a.name + ".npy");
    EXPECT_TRUE(m.at("magic_ok").get<bool>()) << a.name;
    EXPECT_EQ(m.at("version"), json::array({1, 0})) << a.name;
    EXPECT_EQ(m.at("data_offset").get<int>() % 64, 0) << a.name << ": data not 64-byte aligned";
    EXPECT_TRUE(m.at("header_ends_in_newline").get<bool>()) << a.name;

    const json& arr = r.at("arrays").at(a.name);
    EXPECT_EQ(arr.at("dtype"), a.dtype == DType::F32 ? "<f4" : "<i4") << a.name;
    EXPECT_EQ(arr.at("shape").get<std::vector<int64_t>>(), a.shape) << a.name;
  }
  // float32 -> Python float -> JSON -> double is exact, so equality is the right comparison.
  auto as_doubles = [&](const std::string& name) {
    return r.at("arrays").at(name).at("values").get<std::vector<double>>();
  };
  EXPECT_EQ(as_doubles("blocks.0.forget_gate"), std::vector<double>(e.gate.begin(), e.gate.end()));
  EXPECT_EQ(as_doubles("blocks.0.cell_norm"), std::vector<double>(e.norm.begin(), e.norm.end()));
  EXPECT_EQ(r.at("arrays").at("tokens").at("values").get<std::vector<int32_t>>(), e.tokens);
  EXPECT_TRUE(r.at("arrays").at("blocks.1.unused").at("values").empty());
}

TEST(TraceWriter, FinishWithIncompleteArraysNamesThemAndWritesNoFinalFile) {
  TempDir tmp;
  const Example e;
  TraceWriter w(tmp.path(), e.arrays, kInfo);
  append_interleaved(w, e, /*skip_last_token=*/true);
  const std::string msg = error_of([&] { w.finish(); });
  EXPECT_TRUE(contains(msg, "'tokens' misses 1 of 10")) << msg;
  EXPECT_FALSE(contains(msg, "forget_gate")) << msg;
  for (const std::string& name : kFinalNames) {
    EXPECT_FALSE(fs::exists(tmp.path() / name)) << name;
  }

  // The writer stays usable: the missing element can still be appended.
  w.append("tokens", &e.tokens.back(), 1);
  w.finish();
  EXPECT_EQ(files_in(tmp.path()), kFinalNames);
  EXPECT_EQ(decode<int32_t>(safetensors::load(tmp / "traces.safetensors").tensors.at("tokens")),
            e.tokens);
}

TEST(TraceWriter, FinishReportsEveryIncompleteArrayWithItsMissingCount) {
  TempDir tmp;
  const Example e;
  TraceWriter w(tmp.path(), e.arrays, kInfo);
  w.append("blocks.0.cell_norm", e.norm.data(), 3);
  const std::string msg = error_of([&] { w.finish(); });
  EXPECT_TRUE(contains(msg, "'blocks.0.forget_gate' misses 30 of 30")) << msg;
  EXPECT_TRUE(contains(msg, "'blocks.0.cell_norm' misses 4 of 7")) << msg;
  EXPECT_TRUE(contains(msg, "'tokens' misses 10 of 10")) << msg;
  EXPECT_FALSE(contains(msg, "blocks.1.unused")) << msg;
}

TEST(TraceWriter, WriterDestroyedWithoutFinishLeavesNoFile) {
  TempDir tmp;
  const Example e;
  {
    TraceWriter w(tmp.path(), e.arrays, kInfo);
    append_interleaved(w, e);
    EXPECT_FALSE(files_in(tmp.path()).empty()) << "the data should be on disk while appending";
  }
  EXPECT_TRUE(files_in(tmp.path()).empty());
}

TEST(TraceWriter, RejectedAppendsWriteNothing) {
  TempDir tmp;
  const Example e;
  TraceWriter w(tmp.path(), e.arrays, kInfo);
  w.append("blocks.0.cell_norm", e.norm.data(), 5);
  const std::vector<float> junk(8, 99.0f);
  std::string msg = error_of([&] { w.append("blocks.0.cell_norm", junk.data(), 3); });
  EXPECT_TRUE(contains(msg, "append of 3 elements to 'blocks.0.cell_norm' overflows its shape [7]"))
      << msg;
  msg = error_of([&] { w.append("blocks.0.nope", junk.data(), 1); });
  EXPECT_TRUE(contains(msg, "unknown array 'blocks.0.nope'")) << msg;
  msg = error_of([&] { w.append("tokens", junk.data(), 1); });
  EXPECT_TRUE(contains(msg, "F32 data to I32 array 'tokens'")) << msg;
  const std::vector<int32_t> ijunk(1, 99);
  msg = error_of([&] { w.append("blocks.0.forget_gate", ijunk.data(), 1); });
  EXPECT_TRUE(contains(msg, "I32 data to F32 array 'blocks.0.forget_gate'")) << msg;
  msg = error_of([&] { w.append("tokens", static_cast<const int32_t*>(nullptr), 1); });
  EXPECT_TRUE(contains(msg, "null data")) << msg;
  msg = error_of([&] { w.append("tokens", ijunk.data(), -1); });
  EXPECT_TRUE(contains(msg, "negative count")) << msg;

  w.append("blocks.0.cell_norm", e.norm.data() + 5, 2);
  w.append("blocks.0.forget_gate", e.gate.data(), 30);
  w.append("tokens", e.tokens.data(), 10);
  w.finish();
  const safetensors::Contents c = safetensors::load(tmp / "traces.safetensors");
  EXPECT_EQ(decode<float>(c.tensors.at("blocks.0.cell_norm")), e.norm);
  EXPECT_EQ(decode<float>(c.tensors.at("blocks.0.forget_gate")), e.gate);
  EXPECT_EQ(decode<int32_t>(c.tensors.at("tokens")), e.tokens);
}

TEST(TraceWriter, InvalidSpecsAreErrorsNamingTheArrayAndCreateNothing) {
  TempDir tmp;
  const fs::path dir = tmp.path() / "never";
  struct Case {
    std::function<void(std::vector<TraceArray>&, json&)> edit;
    std::string expected;
  };
  const int64_t big = int64_t{1} << 40;
  const std::vector<Case> cases = {
      {[](auto& a, auto&) { a[1].name = ""; }, "empty name"},
      {[](auto& a, auto&) { a[2].name = a[0].name; },
       "duplicate tensor name 'blocks.0.forget_gate'"},
      {[](auto& a, auto&) { a[2].name = "blocks/2"; }, "array 'blocks/2': name contains '/'"},
      {[](auto& a, auto&) { a[0].axes.pop_back(); },
       "array 'blocks.0.forget_gate': 2 axes for shape [2, 5, 3] of rank 3"},
      {[](auto& a, auto&) { a[1].shape = {-7}; }, "'blocks.0.cell_norm' has negative dimension"},
      {[](auto& a, auto&) { a[2].dtype = DType::F64; }, "array 'tokens': dtype F64"},
      {[&](auto& a, auto&) {
         a[1].shape = {big, big};
         a[1].axes = {"x", "y"};
       },
       "'blocks.0.cell_norm' of shape [1099511627776, 1099511627776] makes the file size overflow"},
      {[](auto& a, auto&) { a.clear(); }, "no arrays declared"},
      {[](auto&, auto& info) { info["arrays"] = 1; }, "key \"arrays\" is reserved"},
      {[](auto&, auto& info) { info = json::array({1, 2}); }, "must be a JSON object (got array)"},
      {[](auto& a, auto&) { a[0].meaning = "bad \xff"; }, "not valid UTF-8"},
  };
  for (const Case& c : cases) {
    std::vector<TraceArray> arrays = Example().arrays;
    json info = kInfo;
    c.edit(arrays, info);
    const std::string msg = error_of([&] { TraceWriter w(dir, arrays, info); });
    EXPECT_TRUE(contains(msg, c.expected)) << "expected '" << c.expected << "' in: " << msg;
    EXPECT_TRUE(contains(msg, dir.string())) << msg;
  }
  EXPECT_FALSE(fs::exists(dir)) << "specs are checked before anything is created";
}

TEST(TraceWriter, DirectoryBlockedByAFileIsAnIoErrorNamingIt) {
  TempDir tmp;
  write_file_atomic(tmp / "blocker", "not a directory");
  const fs::path dir = tmp.path() / "blocker" / "traces";
  const std::string msg = error_of<IoError>([&] { TraceWriter w(dir, Example().arrays, kInfo); });
  EXPECT_TRUE(contains(msg, dir.string())) << msg;
}

TEST(TraceWriter, ReadOnlyDirectoryIsAnIoErrorNamingIt) {
  if (::geteuid() == 0) GTEST_SKIP() << "running as root: directory permissions do not stop root";
  TempDir tmp;
  const fs::path dir = tmp.path() / "ro";
  fs::create_directory(dir);
  fs::permissions(dir, fs::perms::owner_read | fs::perms::owner_exec);
  const std::string msg = error_of<IoError>([&] { TraceWriter w(dir, Example().arrays, kInfo); });
  fs::permissions(dir, fs::perms::owner_all);
  EXPECT_TRUE(contains(msg, dir.string())) << msg;
  EXPECT_TRUE(contains(msg, "Permission denied")) << msg;
}

TEST(TraceWriter, FailedRenameInFinishRemovesEveryFileTheWriterMade) {
  TempDir tmp;
  // A directory under the NPZ's name makes its rename fail after the safetensors file is in place.
  fs::create_directory(tmp.path() / "traces.npz");
  const Example e;
  TraceWriter w(tmp.path(), e.arrays, kInfo);
  append_interleaved(w, e);
  const std::string msg = error_of<IoError>([&] { w.finish(); });
  EXPECT_TRUE(contains(msg, (tmp.path() / "traces.npz").string() + ": cannot rename")) << msg;
  EXPECT_EQ(files_in(tmp.path()), std::vector<std::string>{"traces.npz"});
  EXPECT_TRUE(fs::is_directory(tmp.path() / "traces.npz"));
}

// Lowers this process's file size limit (RLIMIT_FSIZE) for its lifetime, so writes past it fail
// with EFBIG the way writes to a full disk fail with ENOSPC; SIGXFSZ is ignored meanwhile, else it
// would kill the test.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    ::getrlimit(RLIMIT_FSIZE, &old_);
    rlimit lowered = old_;
    lowered.rlim_cur = bytes;
    ok_ = ::setrlimit(RLIMIT_FSIZE, &lowered) == 0;
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &old_);
    std::signal(SIGXFSZ, old_handler_);
  }
  bool ok() const { return ok_; }

 private:
  rlimit old_{};
  void (*old_handler_)(int);
  bool ok_;
};

TEST(TraceWriter, FailedWritesAreIoErrorsNamingTheFileAndLeaveNoFile) {
  TempDir tmp;
  const int64_t n = int64_t{1} << 18;  // 1 MiB of F32
  const std::vector<float> data(size_t(n), 0.5f);
  const std::vector<TraceArray> arrays = {{"blocks.0.gate", {"unit"}, {n}, DType::F32, "gate", "gate"}};
  {
    TraceWriter w(tmp.path(), arrays, kInfo);
    std::string msg;
    {
      FileSizeLimit limit(512 << 10);
      ASSERT_TRUE(limit.ok());
      msg = error_of<IoError>([&] { w.append("blocks.0.gate", data.data(), n); });
    }
    EXPECT_TRUE(contains(msg, (tmp.path() / ".traces.safetensors.tmp.").string())) << msg;
    EXPECT_TRUE(contains(msg, "cannot write 262144 elements of 'blocks.0.gate'")) << msg;
  }
  EXPECT_TRUE(files_in(tmp.path()).empty());

  // The data file is complete when the limit drops, so it is libzip writing the NPZ that fails.
  TraceWriter w(tmp.path(), arrays, kInfo);
  w.append("blocks.0.gate", data.data(), n);
  std::string msg;
  {
    FileSizeLimit limit(64 << 10);
    ASSERT_TRUE(limit.ok());
    msg = error_of<IoError>([&] { w.finish(); });
  }
  EXPECT_TRUE(contains(msg, (tmp.path() / ".traces.npz.tmp.").string())) << msg;
  EXPECT_TRUE(contains(msg, "File too large")) << msg;
  EXPECT_EQ(files_in(tmp.path()), std::vector<std::string>{});
}

// A /proc/self/status field in KiB, or -1.
long status_kib(const std::string& key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.compare(0, key.size(), key) == 0) return std::atol(line.c_str() + key.size());
  }
  return -1;
}

// Peak resident size around a 64 MiB export in 1 MiB appends (two arrays, interleaved).
// Writing "5" to /proc/self/clear_refs resets VmHWM, so VmHWM afterwards is the peak of the export
// alone, including inside finish() where libzip streams the NPZ. The 16 MiB slack covers the
// allocator, libzip's buffers and stdio; a writer that kept the export in memory would exceed it
// by 48 MiB at least.
TEST(TraceWriter, PeakMemoryStaysFlatOverA64MiBExportIn1MiBAppends) {
  constexpr int64_t kChunk = int64_t{1} << 18;  // elements per append: 1 MiB
  constexpr int64_t kRows = 32;                 // per array: 32 MiB
  std::vector<float> f(kChunk);
  std::vector<int32_t> n(kChunk);
  const std::vector<TraceArray> arrays = {
      {"blocks.0.input_gate", {"step", "unit"}, {kRows, kChunk}, DType::F32, "gate", "gate"},
      {"blocks.0.argmax", {"step", "unit"}, {kRows, kChunk}, DType::I32, "index", ""}};
  TempDir tmp;
  {
    std::ofstream clear("/proc/self/clear_refs");
    clear << "5";
    clear.flush();
    if (!clear) GTEST_SKIP() << "cannot reset the peak through /proc/self/clear_refs";
  }
  const long before = status_kib("VmRSS:");
  ASSERT_GT(before, 0);
  {
    TraceWriter w(tmp.path(), arrays, {{"task", "memory"}});
    for (int64_t r = 0; r < kRows; ++r) {
      for (int64_t i = 0; i < kChunk; ++i) {
        f[size_t(i)] = static_cast<float>(r) + static_cast<float>(i % 1024) / 1024.0f;
        n[size_t(i)] = static_cast<int32_t>(r * kChunk + i);
      }
      w.append("blocks.0.input_gate", f.data(), kChunk);
      w.append("blocks.0.argmax", n.data(), kChunk);
    }
    w.finish();
  }
  const long growth = status_kib("VmHWM:") - before;
  std::cout << "peak resident size grew by " << growth << " KiB over " << before
            << " KiB during the 64 MiB export\n";
  EXPECT_LT(growth, 16 * 1024);

  EXPECT_GT(fs::file_size(tmp.path() / "traces.npz"), uintmax_t{64} << 20);
  const safetensors::Contents c = safetensors::load(tmp / "traces.safetensors");
  const std::vector<float> gate = decode<float>(c.tensors.at("blocks.0.input_gate"));
  const std::vector<int32_t> idx = decode<int32_t>(c.tensors.at("blocks.0.argmax"));
  ASSERT_EQ(gate.size(), size_t(kRows * kChunk));
  ASSERT_EQ(idx.size(), size_t(kRows * kChunk));
  for (int64_t r = 0; r < kRows; r += 7) {
    for (int64_t i : {int64_t{0}, int64_t{1023}, kChunk - 1}) {
      const size_t at = size_t(r * kChunk + i);
      EXPECT_EQ(gate[at], static_cast<float>(r) + static_cast<float>(i % 1024) / 1024.0f) << at;
      EXPECT_EQ(idx[at], static_cast<int32_t>(at)) << at;
    }
  }
}

}  // namespace
}  // namespace statelab
