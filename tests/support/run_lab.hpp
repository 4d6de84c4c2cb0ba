// Running the `lab` executable from a test as a user would, and reading back what it wrote.
// STATELAB_LAB_BINARY is the path of the built executable (set by tests/CMakeLists.txt).
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace statelab::testing {

struct LabResult {
  int code;            // exit status, -1 when killed by a signal
  std::string output;  // stdout and stderr
};

inline LabResult run_lab(const std::string& args) {
  const std::string cmd = std::string(STATELAB_LAB_BINARY) + " " + args + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace statelab::testing
