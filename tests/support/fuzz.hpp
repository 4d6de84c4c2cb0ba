// The input-fuzz tests' shared pieces (tests/lab/test_fuzz_*.cpp): a seeded chooser, the check
// that a reader either accepts an input or refuses it with its documented error type, and ways to
// show and write mutants.
#pragma once

#include <cxxabi.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <random>
#include <string>
#include <typeinfo>
#include <vector>

namespace statelab::testing::fuzz {

// The input as a failure report shows it: printable ASCII as is, every other byte as \xNN, cut
// after `limit` bytes so a 64 KiB mutant does not flood the log.
inline std::string escaped(const std::string& s, size_t limit = 400) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < limit; ++i) {
    const unsigned char ch = static_cast<unsigned char>(s[i]);
    if (ch == '\\') {
      out += "\\\\";
    } else if (ch >= 0x20 && ch < 0x7f) {
      out += static_cast<char>(ch);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", ch);
      out += hex;
    }
  }
  if (s.size() > limit) out += "... (" + std::to_string(s.size()) + " bytes in all)";
  return out;
}

inline std::string type_name(const std::type_info& t) {
  int status = 0;
  char* demangled = abi::__cxa_demangle(t.name(), nullptr, nullptr, &status);
  std::string out = status == 0 && demangled ? demangled : t.name();
  std::free(demangled);
  return out;
}

inline bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

struct Tally {
  int accepted = 0;
  int rejected = 0;
  int total() const { return accepted + rejected; }
};

// Runs `read`, a reader fed `input`. Returns true when it accepted the input; its documented
// error `Expected` counts as a rejection and has its message passed to `check_message`; any
// other exception is a test failure that prints the exception and the (escaped) input.
template <typename Expected, typename Read, typename Check>
bool accepts(const Read& read, const std::string& what, const std::string& input, Tally& tally,
             const Check& check_message) {
  try {
    read();
    ++tally.accepted;
    return true;
  } catch (const Expected& e) {
    ++tally.rejected;
    check_message(std::string(e.what()));
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << " threw " << type_name(typeid(e)) << " instead of "
                  << type_name(typeid(Expected)) << ": " << e.what() << "\n  input: \""
                  << escaped(input) << "\"";
  } catch (...) {
    ADD_FAILURE() << what << " threw a non-std exception instead of "
                  << type_name(typeid(Expected)) << "\n  input: \"" << escaped(input) << "\"";
  }
  return false;
}

// The fuzz's choices: one seeded std::mt19937, so every run tries the same inputs.
class Chooser {
 public:
  explicit Chooser(uint32_t seed) : rng_(seed) {}
  size_t below(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
  size_t in(size_t lo, size_t hi) { return std::uniform_int_distribution<size_t>(lo, hi)(rng_); }
  bool one_in(size_t n) { return below(n) == 0; }
  template <typename T>
  const T& pick(const std::vector<T>& items) {
    return items[below(items.size())];
  }

 private:
  std::mt19937 rng_;
};

// Writes a fresh file: rewriting one in place through O_TRUNC makes ext4 flush it on close
// (auto_da_alloc), which costs milliseconds per mutant.
inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::remove(path.c_str());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

inline std::string nested(size_t depth, bool objects) {
  std::string out;
  out.reserve(depth * 6 + 2);
  for (size_t i = 0; i < depth; ++i) out += objects ? "{\"a\":" : "[";
  out += "1";
  for (size_t i = 0; i < depth; ++i) out += objects ? "}" : "]";
  return out;
}

}  // namespace statelab::testing::fuzz
