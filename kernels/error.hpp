// The error types every StateLab library throws, and the SL_CHECK macro.
// Host code never calls exit(): the CLI catches in main, the GUI at the panel boundary.
// Errors a user causes (config, files) carry a message meant for them; SL_CHECK adds the
// source location because it guards internal invariants, where that is what a developer needs.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace statelab {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// A preset, an override or a command-line argument that is not allowed.
struct ConfigError : Error {
  using Error::Error;
};
// Tensors whose shapes do not fit the operation.
struct ShapeError : Error {
  using Error::Error;
};
// A file that cannot be read, written or parsed.
struct IoError : Error {
  using Error::Error;
};
// A failure reported by the CUDA runtime or a CUDA library.
struct CudaError : Error {
  using Error::Error;
};

namespace detail {
template <typename E>
[[noreturn]] inline void fail_at(const char* file, int line, const std::string& msg) {
  std::ostringstream s;
  s << msg << " (" << file << ":" << line << ")";
  throw E(s.str());
}
}  // namespace detail

}  // namespace statelab

#define SL_CHECK(cond, msg)                                                        \
  do {                                                                             \
    if (!(cond)) ::statelab::detail::fail_at<::statelab::Error>(__FILE__, __LINE__, (msg)); \
  } while (0)

#define SL_CHECK_SHAPE(cond, msg)                                                          \
  do {                                                                                     \
    if (!(cond)) ::statelab::detail::fail_at<::statelab::ShapeError>(__FILE__, __LINE__, (msg)); \
  } while (0)
