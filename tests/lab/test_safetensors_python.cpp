// Interop with the reference implementation: files written here must load with Python's
// `safetensors.numpy.load_file`, and files written by Python must parse here. The tests build a
// venv with safetensors and numpy from PyPI once (under $STATELAB_PYENV, or ./pyenv in the test's
// working directory, the build dir under ctest) and skip, saying why, when that is impossible
// (no python3, no venv module, no network); the price is a slow first run.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/error.hpp"
#include "lab/files.hpp"
#include "lab/safetensors.hpp"
#include "tests/support/temp_dir.hpp"

namespace fs = std::filesystem;
namespace st = statelab::safetensors;
using st::DType;

namespace {

using statelab::testing::TempDir;

// Single-quoted for /bin/sh, so paths with spaces or quotes survive std::system.
std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

bool run_ok(const std::string& command) {
  int rc = std::system(command.c_str());
  return rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0;
}

std::string tail_of(const std::string& path) {
  std::string text;
  try {
    text = statelab::read_file(path);
  } catch (const statelab::IoError&) {
    return "";
  }
  return text.size() > 800 ? "..." + text.substr(text.size() - 800) : text;
}

struct PythonEnv {
  std::string python;  // empty when unusable
  std::string why;     // the reason, when unusable
};

PythonEnv make_python_env() {
  const char* env_dir = std::getenv("STATELAB_PYENV");
  const fs::path dir = (env_dir != nullptr && *env_dir != '\0') ? fs::path(env_dir)
                                                                 : fs::current_path() / "pyenv";
  const std::string python = (dir / "bin" / "python").string();
  const std::string log = dir.string() + "-setup.log";
  const std::string check = quote(python) + " -c 'import safetensors, numpy' >/dev/null 2>&1";

  // ctest may run the two tests of this file at once; the lock keeps them from building one venv
  // twice over each other.
  const std::string lock_path = dir.string() + ".lock";
  int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (lock_fd < 0) {
    return {"", "cannot create lock file " + lock_path + ": " + std::strerror(errno)};
  }
  struct LockGuard {
    int fd;
    ~LockGuard() { ::close(fd); }  // closing releases the flock
  } guard{lock_fd};
  if (::flock(lock_fd, LOCK_EX) != 0) {
    return {"", "cannot lock " + lock_path + ": " + std::strerror(errno)};
  }

  if (run_ok(check)) return {python, ""};
  if (!run_ok("command -v python3 >/dev/null 2>&1")) {
    return {"", "python3 is not on PATH, so the venv with safetensors cannot be created"};
  }
  // An existing venv (perhaps the user's, via STATELAB_PYENV) is completed, never recreated.
  if (!fs::exists(python) &&
      !run_ok("python3 -m venv " + quote(dir.string()) + " >" + quote(log) + " 2>&1")) {
    return {"", "`python3 -m venv " + dir.string() +
                    "` failed (is the venv/ensurepip module installed, e.g. python3-venv?): " +
                    tail_of(log)};
  }
  if (!run_ok(quote(python) +
              " -m pip install --disable-pip-version-check --retries 1 --timeout 30 "
              "safetensors numpy >" + quote(log) + " 2>&1")) {
    return {"", "`pip install safetensors numpy` into " + dir.string() +
                    " failed (no network access to PyPI?): " + tail_of(log)};
  }
  if (!run_ok(check)) {
    return {"", "safetensors and numpy were installed into " + dir.string() +
                    " but `import safetensors, numpy` still fails"};
  }
  return {python, ""};
}

const PythonEnv& python_env() {
  static const PythonEnv env = make_python_env();
  return env;
}

// Both directions live in one script: `check PATH` verifies the file C++ wrote, `write PATH`
// writes the file C++ then verifies. Values are exact in binary so no rounding can differ.
const char* const kScript = R"PY(
import sys
import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

def fail(msg):
    print("MISMATCH: " + msg)
    sys.exit(1)

mode, path = sys.argv[1], sys.argv[2]
if mode == "check":
    expected = {
        "layer.0.w": np.array([[0.5, -1.25, 3.0], [2.0 ** -100, -0.0, 7.75]], dtype=np.float32),
        "scalar": np.array(3.141592653589793, dtype=np.float64),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "ints": np.array([-7, 0, 2147483647], dtype=np.int32),
        "longs": np.array([[-9000000000], [1], [42]], dtype=np.int64),
        "u8": np.array([[0, 1], [255, 128]], dtype=np.uint8),
    }
    tensors = load_file(path)
    if sorted(tensors) != sorted(expected):
        fail("names %s, expected %s" % (sorted(tensors), sorted(expected)))
    for name, want in expected.items():
        got = tensors[name]
        if got.dtype != want.dtype:
            fail("%s: dtype %s, expected %s" % (name, got.dtype, want.dtype))
        if got.shape != want.shape:
            fail("%s: shape %s, expected %s" % (name, got.shape, want.shape))
        if not np.array_equal(got, want):
            fail("%s: values %r, expected %r" % (name, got, want))
    if not np.signbit(tensors["layer.0.w"][1, 1]):
        fail("layer.0.w[1,1] lost the sign of -0.0")
    with safe_open(path, framework="np") as f:
        metadata = f.metadata()
    want_md = {"format": "pt", "statelab.step": "1200", "note": "unicode \u00e9"}
    if metadata != want_md:
        fail("metadata %r, expected %r" % (metadata, want_md))
    print("ok")
elif mode == "write":
    save_file({
        "emb": (np.arange(6, dtype=np.float32) * 0.25 - 0.5).reshape(3, 2),
        "bias": np.array([2.0 ** -1000, -2.5], dtype=np.float64),
        "idx": np.array([-1, 0, 2 ** 40, 7], dtype=np.int64),
        "count": np.array(5, dtype=np.int32),
        "mask": np.zeros((0,), dtype=np.uint8),
        "flags": np.array([1, 0, 255], dtype=np.uint8),
    }, path, metadata={"source": "python", "version": "1"})
    print("ok")
else:
    fail("unknown mode " + mode)
)PY";

// Runs the script; on failure returns its output for the test message.
bool run_script(const std::string& python, const std::string& script, const std::string& mode,
                const std::string& path, std::string* output) {
  const std::string out_path = path + ".out";
  const bool ok = run_ok(quote(python) + " " + quote(script) + " " + mode + " " + quote(path) +
                         " >" + quote(out_path) + " 2>&1");
  *output = tail_of(out_path);
  return ok;
}

template <typename T>
std::vector<T> decode(const st::Entry& e) {
  std::vector<T> out(e.bytes.size() / sizeof(T));
  std::memcpy(out.data(), e.bytes.data(), out.size() * sizeof(T));
  return out;
}

TEST(SafetensorsPython, CppWrittenFileLoadsInPythonWithSameNamesDtypesShapesValuesMetadata) {
  const PythonEnv& env = python_env();
  if (env.python.empty()) GTEST_SKIP() << env.why;
  TempDir dir;
  const std::string script = dir / "interop.py";
  statelab::write_file_atomic(script, kScript);

  const std::vector<float> w = {0.5f, -1.25f, 3.0f, std::ldexp(1.0f, -100), -0.0f, 7.75f};
  const double scalar = 3.141592653589793;
  const std::vector<int32_t> ints = {-7, 0, 2147483647};
  const std::vector<int64_t> longs = {-9000000000LL, 1, 42};
  const std::vector<uint8_t> u8 = {0, 1, 255, 128};
  const std::string path = dir / "from_cpp.safetensors";
  st::save(path,
           {{"layer.0.w", DType::F32, {2, 3}, w.data()},
            {"scalar", DType::F64, {}, &scalar},
            {"empty", DType::F32, {0, 4}, nullptr},
            {"ints", DType::I32, {3}, ints.data()},
            {"longs", DType::I64, {3, 1}, longs.data()},
            {"u8", DType::U8, {2, 2}, u8.data()}},
           {{"format", "pt"}, {"statelab.step", "1200"}, {"note", "unicode \xc3\xa9"}});

  std::string output;
  EXPECT_TRUE(run_script(env.python, script, "check", path, &output)) << output;
}

TEST(SafetensorsPython, PythonWrittenFileParsesInCppWithSameValues) {
  const PythonEnv& env = python_env();
  if (env.python.empty()) GTEST_SKIP() << env.why;
  TempDir dir;
  const std::string script = dir / "interop.py";
  statelab::write_file_atomic(script, kScript);
  const std::string path = dir / "from_python.safetensors";
  std::string output;
  ASSERT_TRUE(run_script(env.python, script, "write", path, &output)) << output;

  st::Contents c = st::load(path);
  EXPECT_EQ(c.metadata, (std::map<std::string, std::string>{{"source", "python"}, {"version", "1"}}));
  ASSERT_EQ(c.tensors.size(), 6u);
  EXPECT_EQ(c.order.size(), 6u);

  std::vector<double> emb(6);
  st::copy_tensor(c, "emb", {3, 2}, emb.data(), path);
  EXPECT_EQ(emb, (std::vector<double>{-0.5, -0.25, 0.0, 0.25, 0.5, 0.75}));
  EXPECT_EQ(c.tensors.at("emb").dtype, DType::F32);

  const st::Entry& bias = c.tensors.at("bias");
  EXPECT_EQ(bias.dtype, DType::F64);
  EXPECT_EQ(decode<double>(bias), (std::vector<double>{std::ldexp(1.0, -1000), -2.5}));

  const st::Entry& idx = c.tensors.at("idx");
  EXPECT_EQ(idx.dtype, DType::I64);
  EXPECT_EQ(idx.shape, std::vector<int64_t>{4});
  EXPECT_EQ(decode<int64_t>(idx), (std::vector<int64_t>{-1, 0, int64_t{1} << 40, 7}));

  const st::Entry& count = c.tensors.at("count");
  EXPECT_EQ(count.dtype, DType::I32);
  EXPECT_TRUE(count.shape.empty());
  EXPECT_EQ(decode<int32_t>(count), std::vector<int32_t>{5});

  const st::Entry& mask = c.tensors.at("mask");
  EXPECT_EQ(mask.dtype, DType::U8);
  EXPECT_EQ(mask.shape, std::vector<int64_t>{0});
  EXPECT_TRUE(mask.bytes.empty());

  const st::Entry& flags = c.tensors.at("flags");
  EXPECT_EQ(flags.dtype, DType::U8);
  EXPECT_EQ(decode<uint8_t>(flags), (std::vector<uint8_t>{1, 0, 255}));
}

}  // namespace
