// Finding a Python that imports numpy, for the tests that read our exports with real numpy.
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace statelab::testing {

// Single-quoted for /bin/sh, so paths with spaces or quotes survive std::system.
inline std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

inline bool run_ok(const std::string& command) {
  int rc = std::system(command.c_str());
  return rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0;
}

// The first Python that imports numpy: the venv test_safetensors_python.cpp builds (it installs
// numpy), the python3 on PATH, then Debian's, whose python3-numpy a PATH Python (pyenv, conda)
// does not see. Empty, with what was tried in `why`, when none does.
inline std::string numpy_python(std::string* why) {
  namespace fs = std::filesystem;
  const char* env_dir = std::getenv("STATELAB_PYENV");
  const fs::path venv =
      (env_dir != nullptr && *env_dir != '\0') ? fs::path(env_dir) : fs::current_path() / "pyenv";
  for (const std::string& python : {(venv / "bin" / "python").string(), std::string("python3"),
                                    std::string("/usr/bin/python3")}) {
    if (run_ok(quote(python) + " -c 'import numpy' >/dev/null 2>&1")) return python;
    *why += (why->empty() ? "" : ", ") + python;
  }
  *why =
      "no Python with numpy (tried " + *why + "); install python3-numpy (scripts/setup.sh --tests)";
  return "";
}

}  // namespace statelab::testing
