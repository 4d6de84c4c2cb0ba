// Seeded, fixed-budget mutation fuzz of every reader that takes input from outside the process:
// preset files and `--set` overrides (load_config, apply_override + config_from_json), checkpoint
// files (load_checkpoint) and typed task strings (Task::encode, Task::label). Each loop proves that
// a malformed input is refused with the reader's documented error type (ConfigError or IoError)
// and never crashes, reads out of bounds or throws anything else, and that whatever is accepted
// is self-consistent: configs round-trip through to_json, task inputs label and re-encode.
#include <cxxabi.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/error.hpp"
#include "kernels/rng.hpp"
#include "lab/checkpoint.hpp"
#include "lab/config.hpp"
#include "lab/files.hpp"
#include "lab/safetensors.hpp"
#include "lab/trainer.hpp"
#include "tasks/registry.hpp"
#include "tasks/task.hpp"
#include "tests/support/temp_dir.hpp"

namespace statelab {
namespace {

namespace st = safetensors;
using json = nlohmann::json;
using statelab::testing::TempDir;

// --- shared helpers --------------------------------------------------------------------------

// The input as a failure report shows it: printable ASCII as is, every other byte as \xNN, cut
// after `limit` bytes so a 64 KiB mutant does not flood the log.
std::string escaped(const std::string& s, size_t limit = 400) {
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

std::string type_name(const std::type_info& t) {
  int status = 0;
  char* demangled = abi::__cxa_demangle(t.name(), nullptr, nullptr, &status);
  std::string out = status == 0 && demangled ? demangled : t.name();
  std::free(demangled);
  return out;
}

bool contains(const std::string& haystack, const std::string& needle) {
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
void write_bytes(const std::string& path, const std::string& bytes) {
  std::remove(path.c_str());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

// JSON values that are extreme, of every type, or just past a schema bound.
const std::vector<std::string>& extreme_literals() {
  static const std::vector<std::string> v = {
      "-1", "0", "1", "2", "1e308", "-1e308", "1e999", "-1e999", "1e-320", "2147483647",
      "2147483648", "-2147483648", "-2147483649", "4294967296", "9223372036854775807",
      "9223372036854775808", "-9223372036854775809", "18446744073709551615",
      "18446744073709551616", "3.5", "0.5", "-0", "-0.0", "1.0", "65536", "65537", "1000000",
      "1000001", "64", "\"x\"", "\"\"", "\"1\"", "null", "true", "false", "[]", "{}", "[1]",
      "[1, 2]", "[2, 1]", "[1, 1000000]", "[0, 5]", "[3, 40]", "[40, 256]", "{\"a\": 1}",
      "01", "1.", ".5", "+1", "NaN", "Infinity", "0x10", "1e", "--1"};
  return v;
}

// Nodes of a document, as JSON pointers, the root included; none below depth 16, because a
// pointer copies its path and a 10000-deep mutant would otherwise cost 10^8 string copies.
void collect_pointers(const json& j, const json::json_pointer& at,
                      std::vector<json::json_pointer>& out, int depth = 0) {
  out.push_back(at);
  if (depth >= 16) return;
  if (j.is_object()) {
    for (const auto& item : j.items())
      collect_pointers(item.value(), at / item.key(), out, depth + 1);
  } else if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i) collect_pointers(j[i], at / i, out, depth + 1);
  }
}

// [begin, length) of every number (or bare word) and every string literal outside strings.
struct Spans {
  std::vector<std::pair<size_t, size_t>> numbers, strings;
};

Spans json_spans(const std::string& s) {
  Spans out;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '"') {
      size_t j = i + 1;
      while (j < s.size() && s[j] != '"') j += s[j] == '\\' ? 2 : 1;
      if (j >= s.size()) break;
      out.strings.push_back({i, j + 1 - i});
      i = j;
    } else if (c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')) {
      size_t j = i + 1;
      while (j < s.size() && s[j] != '\0' &&
             (std::strchr("0123456789.eE+-", s[j]) || (s[j] >= 'a' && s[j] <= 'z')))
        ++j;
      out.numbers.push_back({i, j - i});
      i = j - 1;
    }
  }
  return out;
}

std::string nested(size_t depth, bool objects) {
  std::string out;
  out.reserve(depth * 6 + 2);
  for (size_t i = 0; i < depth; ++i) out += objects ? "{\"a\":" : "[";
  out += "1";
  for (size_t i = 0; i < depth; ++i) out += objects ? "}" : "]";
  return out;
}

// --- 1. preset loader ------------------------------------------------------------------------

std::vector<std::string> preset_seeds() {
  RunConfig base;
  base.name = "base";
  std::vector<std::string> seeds = {
      to_json(base).dump(2),
      R"({"task": {"name": "parity", "train_lengths": [3, 40]}, "model": {"blocks": "ls", )"
      R"("d_model": 16, "heads": 2}, "train": {"steps": 10}})",
      R"({
  "name": "s5_run",
  "task": {"name": "s5", "train_lengths": [2, 20], "readout": "per_token",
           "length_sampling": "per_sample"},
  "model": {"blocks": "sls", "d_model": 24, "heads": 3, "ffn_factor": 0,
            "slstm": {"forget_gate": "exp", "conv_kernel": 0}},
  "train": {"steps": 100, "lr": 0.003, "min_lr": 0, "warmup_steps": 5,
            "seed": 18446744073709551615, "eval_every": 10, "early_stop_evals": 2,
            "early_stop_accuracy": 1, "on_nan": "skip_step", "keep_checkpoints": 1000},
  "eval": {"lengths": [40, 100], "length_step": 10, "samples": 16, "seed": 7,
           "batch_tokens": 4096}
})",
      R"({"schema_version": 1, "device": "cpu", "task": {"name": "anbn", "train_lengths": [2, 2]},
"eval": {"lengths": [4, 8], "length_step": 2},
"model": {"blocks": "l", "d_model": 1, "heads": 1}})",
      R"({"task":{"name":"modular_arithmetic_brackets","train_lengths":[4,30]},)"
      R"("train":{"grad_clip":0,"weight_decay":0,"beta1":0,"beta2":0.5,"eps":1e-300,)"
      R"("checkpoint_every":0,"log_every":2147483647}})",
      "{}"};
#ifdef STATELAB_FAULT_INJECTION
  seeds.push_back(R"({"train": {"steps": 5, "poison": {"step": 3, "parameter": "head.weight"}}})");
#endif
  return seeds;
}

// One mutation of a preset text; `op` selects the kind.
std::string mutate_preset(const std::string& text, Chooser& c, size_t op) {
  std::string m = text;
  const Spans spans = json_spans(m);
  switch (op) {
    case 0:  // bit flips
      for (size_t k = c.in(1, 4); k > 0 && !m.empty(); --k)
        m[c.below(m.size())] ^= static_cast<char>(1u << c.below(8));
      break;
    case 1:  // delete a range
      if (!m.empty()) {
        const size_t at = c.below(m.size());
        m.erase(at, c.in(1, 8));
      }
      break;
    case 2:  // duplicate a range somewhere else
      if (!m.empty()) {
        const size_t at = c.below(m.size());
        const std::string piece = m.substr(at, c.in(1, 24));
        m.insert(c.in(0, m.size()), piece);
      }
      break;
    case 3: {  // random or structural bytes inserted
      static const std::string structural = "{}[]\",:-0123456789.eE \t\n\\";
      for (size_t k = c.in(1, 8); k > 0; --k) {
        const char ch = c.one_in(2) ? static_cast<char>(c.below(256))
                                    : structural[c.below(structural.size())];
        m.insert(c.in(0, m.size()), 1, ch);
      }
      break;
    }
    case 4:  // truncation
      m.resize(c.below(m.size() + 1));
      break;
    case 5:  // a number (or bare word) replaced by an extreme
      if (!spans.numbers.empty()) {
        const auto [at, n] = c.pick(spans.numbers);
        m.replace(at, n, c.pick(extreme_literals()));
      } else {
        m = "{\"train\": {\"steps\": " + c.pick(extreme_literals()) + "}}";
      }
      break;
    case 6: {  // a node replaced by a value of another JSON type (or the same type, other value)
      json j = json::parse(text, nullptr, false);
      if (j.is_discarded()) return mutate_preset(text, c, 0);  // after a stacked mutation
      std::vector<json::json_pointer> nodes;
      collect_pointers(j, json::json_pointer(), nodes);
      const json::json_pointer at = nodes[c.below(nodes.size())];
      static const std::vector<json> values = {
          nullptr, true, false, 0, -1, 3.5, 1e308, "x", "", json::array(), json::object(),
          json::array({1, 2}), json::array({3, 40}), json{{"k", 1}}, 2147483647,
          uint64_t{18446744073709551615u}, "per_token", "exp", "sigmoid", "ls", "parity",
          "s5", "anbn", "flip_flop", "stop", "skip_step", "per_sample", "cpu", "gpu"};
      json replacement = c.pick(values);
      for (int tries = 0; tries < 4 && replacement.type() == j[at].type() && c.one_in(2); ++tries)
        replacement = c.pick(values);
      if (at.empty()) {
        j = replacement;
      } else {
        j[at] = replacement;
      }
      m = j.dump(c.one_in(2) || m.size() > 4096 ? -1 : 2);  // indenting deep nesting is quadratic
      break;
    }
    case 7: {  // a key added to some object: unknown, misspelt, from another section, a duplicate
      static const std::vector<std::string> keys = {
          "stepz", "Steps", "step", "lr_", "", " ", "name", "task", "train", "model", "eval",
          "slstm", "poison", "batch", "heads", "lengths", "seed", "__proto__", "\xc3\xa9",
          std::string("a\0b", 3), std::string(4096, 'k')};
      static const std::vector<std::string> values = {"1", "\"run_2\"", "null", "{}", "[3, 9]",
                                                      "\"parity\"", "true", "0.5"};
      std::vector<size_t> braces;
      for (size_t i = 0; i < m.size(); ++i)
        if (m[i] == '{') braces.push_back(i);
      if (braces.empty()) break;
      const size_t at = c.pick(braces) + 1;
      const bool empty_object = m.find_first_not_of(" \t\r\n", at) < m.size() &&
                                m[m.find_first_not_of(" \t\r\n", at)] == '}';
      m.insert(at, json(c.pick(keys)).dump() + ": " + c.pick(values) +
                       (empty_object ? "" : ", "));
      break;
    }
    case 8: {  // nesting 10000 levels deep: the whole file, one value, or left unclosed
      const std::string deep = nested(10000, c.one_in(2));
      switch (c.below(3)) {
        case 0: m = deep; break;
        case 1:
          if (!spans.numbers.empty()) {
            const auto [at, n] = c.pick(spans.numbers);
            m.replace(at, n, deep);
          } else {
            m = "{\"model\": " + deep + "}";
          }
          break;
        default: m = "{\"train\": " + std::string(10000, '['); break;
      }
      break;
    }
    case 9: {  // very long strings: a value, a key, a run name or a block pattern
      static const std::vector<std::string> longs = {
          std::string(65536, 'a'), std::string(256, 'n'), std::string(255, 'n'),
          std::string(40000, 's'), std::string(20000, 'l') + "x", std::string(4096, '\\')};
      std::string s = c.pick(longs);
      if (s[0] == '\\') s = json(s).dump().substr(1, s.size() * 2);  // escaped backslashes
      if (!spans.strings.empty()) {
        const auto [at, n] = c.pick(spans.strings);
        // An unknown key costs an edit distance to every allowed key: 4 KiB keeps that cheap.
        const size_t next = m.find_first_not_of(" \t\r\n", at + n);
        if (next < m.size() && m[next] == ':' && s.size() > 4096) s.resize(4096);
        m.replace(at + 1, n - 2, s);
      } else {
        m = "{\"name\": \"" + s + "\"}";
      }
      break;
    }
    case 10: {  // invalid UTF-8 or invalid escapes inside a string, or raw bytes outside one
      static const std::vector<std::string> bad = {
          "\xff", "\xfe", "\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\x80",
          "\xe2\x82", "\\ud800", "\\udc00x", "\\u00", "\\x41", "\\", "\x1f", "\t", "\xef\xbb\xbf"};
      const std::string b = c.pick(bad);
      if (!spans.strings.empty() && !c.one_in(4)) {
        const auto [at, n] = c.pick(spans.strings);
        m.insert(at + 1 + c.below(n - 1), b);
      } else {
        m.insert(c.in(0, m.size()), b);
      }
      break;
    }
    case 11: {  // NUL: a raw byte anywhere, one replacing a byte, or an escaped one in a string
      if (c.one_in(3) && !spans.strings.empty()) {
        const auto [at, n] = c.pick(spans.strings);
        m.insert(at + 1 + c.below(n - 1), "\\u0000");
      } else if (c.one_in(2) && !m.empty()) {
        m[c.below(m.size())] = '\0';
      } else {
        m.insert(c.in(0, m.size()), 1, '\0');
      }
      break;
    }
    default: {  // framing: BOM, trailing data, CRLF, a second document, whitespace
      switch (c.below(6)) {
        case 0: m = "\xef\xbb\xbf" + m; break;
        case 1:
          m += c.pick(std::vector<std::string>{"x", "}", "]", "{}", ",", "\n\n", "//"});
          break;
        case 2:
          for (size_t i = m.find('\n'); i != std::string::npos; i = m.find('\n', i + 2))
            m.insert(i, 1, '\r');
          break;
        case 3: m = m + m; break;
        case 4: m = " \t\r\n" + m + " \n"; break;
        default: m = "/* comment */" + m; break;
      }
      break;
    }
  }
  return m;
}

// The config must come back unchanged from its own to_json, and that JSON must be writable.
void expect_round_trip(const RunConfig& cfg, const std::string& input) {
  const json j = to_json(cfg);
  try {
    const RunConfig again = config_from_json(j, "x");
    EXPECT_EQ(to_json(again), j) << "round trip changed the config of input \"" << escaped(input)
                                 << "\"";
    (void)j.dump();  // config.json and the checkpoint metadata are written this way
    // The evaluation grid the config was accepted for: lengths in [lo, hi], `length_step` apart.
    const EvalConfig& e = cfg.eval;
    for (int length :
         make_task(cfg.task.name)->lengths_in(e.lengths[0], e.lengths[1], e.length_step)) {
      if (length >= e.lengths[0] && length <= e.lengths[1] &&
          (length - e.lengths[0]) % e.length_step == 0)
        continue;
      ADD_FAILURE() << "eval length " << length << " is off the grid [" << e.lengths[0] << ", "
                    << e.lengths[1] << "] step " << e.length_step << " of input \""
                    << escaped(input) << "\"";
      break;
    }
  } catch (const std::exception& e) {
    ADD_FAILURE() << "an accepted config does not round-trip through to_json: "
                  << type_name(typeid(e)) << ": " << e.what() << "\n  input: \""
                  << escaped(input) << "\"";
  }
}

TEST(InputFuzz, PresetLoaderRejectsEveryMutationWithAConfigErrorOrLoadsIt) {
  TempDir dir;
  const std::string path = dir / "preset.json";
  const std::vector<std::string> seeds = preset_seeds();
  for (const auto& s : seeds) {
    write_bytes(path, s);
    RunConfig cfg;
    ASSERT_NO_THROW(cfg = load_config(path)) << "seed preset must load: " << s;
  }

  Tally tally;
  auto load = [&](const std::string& text) {
    write_bytes(path, text);
    RunConfig cfg;
    const bool ok = accepts<ConfigError>(
        [&] { cfg = load_config(path); }, "load_config", text, tally,
        [&](const std::string& msg) {
          EXPECT_TRUE(contains(msg, path)) << "ConfigError does not name the preset: " << msg
                                           << "\n  input: \"" << escaped(text) << "\"";
        });
    if (ok) expect_round_trip(cfg, text);
  };

  // Whole-file oddities first, then the seeded mutations.
  for (const std::string& text :
       {std::string(), std::string(" \n"), std::string("null"), std::string("[]"),
        std::string("1"), std::string("\"x\""), std::string("{"), std::string("}"),
        std::string("{}{}"), std::string("\xef\xbb\xbf{}"), std::string("{}\0", 3),
        std::string("{\"name\": \"a\", \"name\": \"b\"}"), nested(10000, false),
        nested(10000, true)})
    load(text);

  Chooser c(0x5eed0001u);
  constexpr int kIterations = 3000;
  constexpr size_t kOps = 13;
  for (int iter = 0; iter < kIterations; ++iter) {
    std::string text = seeds[c.below(seeds.size())];
    text = mutate_preset(text, c, static_cast<size_t>(iter) % kOps);
    if (c.one_in(5)) text = mutate_preset(text, c, c.below(kOps));  // stacked mutations
    load(text);
    if (::testing::Test::HasFatalFailure()) return;
  }
  std::printf("[   fuzz   ] preset loader: %d inputs, %d loaded, %d rejected with ConfigError\n",
              tally.total(), tally.accepted, tally.rejected);
  EXPECT_EQ(tally.total(), kIterations + 14) << "some input threw another exception type";
  EXPECT_GT(tally.accepted, 0);
  EXPECT_GT(tally.rejected, 0);
}

// A `--set` assignment: mostly a real dotted path, sometimes random or malformed segments.
std::string random_assignment(Chooser& c) {
  static const std::vector<std::string> paths = {
      "name", "device", "schema_version", "task.name", "task.train_lengths",
      "task.length_sampling", "task.readout", "model.blocks", "model.d_model", "model.heads",
      "model.ffn_factor", "model.slstm.forget_gate", "model.slstm.conv_kernel", "model.slstm",
      "train.steps", "train.batch", "train.lr", "train.min_lr", "train.warmup_steps",
      "train.weight_decay", "train.beta1", "train.beta2", "train.eps", "train.grad_clip",
      "train.seed", "train.log_every", "train.eval_every", "train.early_stop_evals",
      "train.early_stop_accuracy", "train.checkpoint_every", "train.keep_checkpoints",
      "train.on_nan", "train.poison.step", "train.poison.parameter", "eval.lengths",
      "eval.length_step", "eval.samples", "eval.seed", "eval.batch_tokens", "task", "train",
      "task.name.x", "train.steps.value", "eval.lengths.0"};
  static const std::vector<std::string> segments = {
      "task", "model", "train", "eval", "slstm", "poison", "steps", "x", "Steps", "0", "_",
      "a-b", "a b", "\xc3\xa9", "\xff", "", "$", "name", std::string(300, 'k')};
  static const std::vector<std::string> words = {
      "ss", "ls", "sxl", "exp", "sigmoid", "per_token", "final", "per_sample", "parity", "s5",
      "anbn", "flip_flop", "no_such_task", "skip_step", "stop", "cpu", "cuda", "run_1", "..",
      ".", "a/b", "head.weight", "\"quoted\"", "[", "{\"a\":", "[1,", "tru", "nul", "1 2",
      "=", "a=b", "", " ", "\xff\xfe", "\xc3", std::string("a\0b", 3), "\\u0000",
      std::string(70000, 's'), std::string(300, 'n'), nested(10000, false)};

  std::string key;
  if (!c.one_in(3)) {
    key = c.pick(paths);
  } else {
    for (size_t k = c.in(1, 4); k > 0; --k) key += (key.empty() ? "" : ".") + c.pick(segments);
    if (c.one_in(4)) key = "." + key;
    if (c.one_in(4)) key += ".";
    if (c.one_in(6)) key.insert(c.in(0, key.size()), "..");
  }
  static const std::vector<std::string> plausible = {
      "1", "2", "3", "4", "8", "10", "16", "100", "0.001", "0.9", "0", "[3, 9]", "[40, 100]",
      "sigmoid", "\"exp\"", "run_x", "s5", "per_token", "ss", "{}", "null"};
  if (c.one_in(20)) return key + c.pick(words);  // no '='
  const size_t kind = c.below(3);
  const std::string value = kind == 0   ? c.pick(extreme_literals())
                            : kind == 1 ? c.pick(words)
                                        : c.pick(plausible);
  return key + (c.one_in(25) ? "==" : "=") + value;
}

TEST(InputFuzz, OverridesRejectEveryMalformedAssignmentWithAConfigErrorOrApplyCleanly) {
  std::vector<json> bases;
  for (const auto& s : preset_seeds()) {
    json j = json::parse(s);
    if (!j.contains("name")) j["name"] = "fuzz";
    ASSERT_NO_THROW((void)config_from_json(j, "fuzz.json")) << "seed must load: " << s;
    bases.push_back(std::move(j));
  }

  Tally assignments, configs;
  Chooser c(0x5eed0002u);
  constexpr int kSets = 2000;
  for (int iter = 0; iter < kSets; ++iter) {
    json j = c.one_in(50) ? (c.one_in(2) ? json::array({1}) : json()) : c.pick(bases);
    std::string all;
    bool applied = true;
    for (size_t k = c.in(1, 3); k > 0 && applied; --k) {
      const std::string a = random_assignment(c);
      all += (all.empty() ? "" : " | ") + a;
      applied = accepts<ConfigError>([&] { apply_override(j, a, "fuzz.json"); },
                                     "apply_override", a, assignments,
                                     [](const std::string&) {});
    }
    if (!applied) continue;
    RunConfig cfg;
    if (accepts<ConfigError>([&] { cfg = config_from_json(j, "fuzz.json"); },
                             "config_from_json after apply_override", all, configs,
                             [&](const std::string& msg) {
                               EXPECT_TRUE(contains(msg, "fuzz.json"))
                                   << "ConfigError does not name the source: " << msg
                                   << "\n  input: \"" << escaped(all) << "\"";
                             }))
      expect_round_trip(cfg, all);
    if (::testing::Test::HasFatalFailure()) return;
  }
  std::printf(
      "[   fuzz   ] overrides: %d assignments (%d applied, %d rejected); %d documents validated "
      "(%d loaded, %d rejected with ConfigError)\n",
      assignments.total(), assignments.accepted, assignments.rejected, configs.total(),
      configs.accepted, configs.rejected);
  EXPECT_GT(assignments.accepted, 0);
  EXPECT_GT(assignments.rejected, 0);
  EXPECT_GT(configs.accepted, 0);
  EXPECT_GT(configs.rejected, 0);
}

// --- 2. checkpoint reader --------------------------------------------------------------------

RunConfig tiny_run() {
  RunConfig c;
  c.name = "fuzz_ckpt";
  c.device = "cpu";
  c.model.blocks = "s";
  c.model.d_model = 8;
  c.model.heads = 2;
  c.task.name = "parity";
  c.task.train_lengths = {3, 9};
  c.train.steps = 3;
  c.train.batch = 4;
  c.train.warmup_steps = 1;
  c.train.log_every = 1;
  c.eval.lengths = {5, 12};
  c.eval.samples = 8;
  return c;
}

uint64_t header_length(const std::string& bytes) {
  uint64_t n = 0;
  for (size_t i = 0; i < 8; ++i)
    n |= uint64_t{static_cast<unsigned char>(bytes[i])} << (8 * i);
  return n;
}

std::string with_header(const std::string& header, const std::string& data) {
  std::string out;
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  return out + header + data;
}

// A checkpoint taken apart: tensors in file order and the metadata, to be put back together
// with safetensors::serialize after a semantic edit (the result is a well-formed file).
struct Parts {
  std::vector<std::pair<std::string, st::Entry>> tensors;
  std::map<std::string, std::string> metadata;

  static Parts of(const std::string& bytes) {
    st::Contents contents = st::parse(bytes, "seed");
    Parts p;
    for (const auto& name : contents.order) p.tensors.push_back({name, contents.tensors.at(name)});
    p.metadata = contents.metadata;
    return p;
  }
  std::string bytes() const {
    std::vector<st::TensorRef> refs;
    for (const auto& [name, e] : tensors)
      refs.push_back({name, e.dtype, e.shape, e.bytes.empty() ? nullptr : e.bytes.data()});
    return st::serialize(refs, metadata);
  }
};

// What a mutant is expected to do, beyond "accepted or IoError".
enum class Expect { any, another_config };

struct Mutant {
  std::string bytes;
  Expect expect = Expect::any;
  std::string kind;   // the kind of edit, for the summary
  std::string label;  // the edit itself, for failure messages
};

// A header-JSON edit that leaves the file's framing to the parser to judge.
Mutant raw_header_edit(const std::string& valid, Chooser& c) {
  const size_t n = static_cast<size_t>(header_length(valid));
  json h = json::parse(valid.substr(8, n));
  const std::string data = valid.substr(8 + n);
  std::vector<std::string> names;
  for (const auto& item : h.items())
    if (item.key() != "__metadata__") names.push_back(item.key());
  const std::string name = c.pick(names);
  json& entry = h[name];
  std::string label;
  switch (c.below(7)) {
    case 0: {  // data_offsets
      json& offs = entry["data_offsets"];
      const int64_t begin = offs[0].get<int64_t>(), end = offs[1].get<int64_t>();
      static const std::vector<json> odd = {-1, 0, 1e20, "0", nullptr, 3.5,
                                            uint64_t{18446744073709551615u},
                                            int64_t{9223372036854775807}};
      switch (c.below(6)) {
        case 0: {
          const int64_t shift = static_cast<int64_t>(c.in(1, 8)) * (c.one_in(2) ? 1 : -1);
          offs[c.below(2)] = (c.one_in(2) ? begin : end) + shift;
          break;
        }
        case 1: offs = json::array({end, begin}); break;
        case 2: offs[c.below(2)] = c.pick(odd); break;
        case 3: offs = json::array({begin}); break;
        case 4: offs.push_back(end); break;
        default: offs = json::array({begin + 4, end + 4}); break;
      }
      label = "data_offsets of " + name;
      break;
    }
    case 1: {  // dtype
      static const std::vector<json> dtypes = {"F64", "I32", "I64", "U8", "BF16", "F16", "f32",
                                               "", 5, nullptr, json::array({"F32"})};
      entry["dtype"] = c.pick(dtypes);
      label = "dtype of " + name;
      break;
    }
    case 2: {  // shape
      json& shape = entry["shape"];
      static const std::vector<json> dims = {0, -1, 1, 2, 3, int64_t{4611686018427387904}, 1.0,
                                             "8", nullptr, json::array({1})};
      switch (c.below(5)) {
        case 0: shape.push_back(1); break;
        case 1: if (!shape.empty()) shape.erase(shape.size() - 1); break;
        case 2: if (!shape.empty()) shape[c.below(shape.size())] = c.pick(dims); break;
        case 3: std::reverse(shape.begin(), shape.end()); break;
        default: shape = c.one_in(2) ? json::array() : json("8"); break;
      }
      label = "shape of " + name;
      break;
    }
    case 3:  // tensor entry removed, its bytes left behind
      h.erase(name);
      label = "entry of " + name + " removed";
      break;
    case 4:  // unknown entry key, or the entry not an object
      if (c.one_in(2)) {
        entry["scale"] = 2;
      } else {
        entry = json::array({1, 2});
      }
      label = "entry of " + name + " malformed";
      break;
    case 5: {  // metadata values that are not strings, or no metadata object
      json& meta = h["__metadata__"];
      switch (c.below(4)) {
        case 0: meta["state"] = json::parse(meta["state"].get<std::string>()); break;
        case 1: meta["config"] = nullptr; break;
        case 2: meta = json::array({"format"}); break;
        default: h.erase("__metadata__"); break;
      }
      label = "metadata object";
      break;
    }
    default: {  // invalid UTF-8 in a metadata string: only a raw edit can write it
      std::string text = h.dump();
      const size_t at = text.find("statelab-checkpoint");
      text.insert(at + c.below(19), c.one_in(2) ? "\xff" : "\xc3");
      return {with_header(text, data), Expect::any, "header: invalid UTF-8 in the format",
              "header: invalid UTF-8 in the format"};
    }
  }
  std::string text = h.dump();
  if (c.one_in(2)) text.append(c.below(8), ' ');  // the padding the writer would add
  return {with_header(text, data), Expect::any, "header: " + label.substr(0, label.find(" of ")),
          label};
}

// A well-formed file whose metadata or tensors say something else than the run expects.
Mutant semantic_edit(const std::string& valid, const RunConfig& cfg, Chooser& c) {
  Parts p = Parts::of(valid);
  Mutant m;
  switch (c.below(6)) {
    case 0: {  // one state field: wrong type, negative, huge, fractional
      json s = json::parse(p.metadata.at("state"));
      std::vector<std::string> keys;
      for (const auto& item : s.items()) keys.push_back(item.key());
      static const std::vector<json> values = {
          -1, 0, 1, 2147483647, int64_t{2147483648}, int64_t{-2147483649},
          int64_t{9223372036854775807}, uint64_t{18446744073709551615u}, 1e308, -1e308, 3.5,
          -0.0, "x", "3", nullptr, true, json::array(), json::object()};
      const std::string key = c.pick(keys);
      s[key] = c.pick(values);
      p.metadata["state"] = s.dump();
      m.kind = "state field";
      m.label = "state." + key + " = " + s[key].dump();
      break;
    }
    case 1: {  // the state: a field removed, an extra one, or not the JSON it should be
      json s = json::parse(p.metadata.at("state"));
      static const std::vector<std::string> garbage = {"", "{", "[]", "null", "1", "\"step\"",
                                                       "{\"step\":", "{} {}", "{\"step\": 1}",
                                                       nested(10000, false)};
      switch (c.below(3)) {
        case 0: {
          auto it = s.begin();
          std::advance(it, static_cast<std::ptrdiff_t>(c.below(s.size())));
          const std::string key = it.key();
          s.erase(key);
          p.metadata["state"] = s.dump();
          break;
        }
        case 1:
          s["extra"] = 1;
          p.metadata["state"] = s.dump(2);
          break;
        default: p.metadata["state"] = c.pick(garbage); break;
      }
      m.kind = m.label = "state text";
      break;
    }
    case 2: {  // the config of another run: refused, naming the mismatch
      RunConfig other = cfg;
      switch (c.below(5)) {
        case 0: other.train.lr *= 2; break;
        case 1: other.name = "another_run"; break;
        case 2: other.train.seed += 1; break;
        case 3: other.model.d_model = 16; break;
        default: other.task.train_lengths = {3, 10}; break;
      }
      p.metadata["config"] = to_json(other).dump(c.one_in(2) ? -1 : 2);
      m.expect = Expect::another_config;
      m.kind = m.label = "config of another run";
      break;
    }
    case 3: {  // the same config spelt differently (accepted) or garbage (refused)
      static const std::vector<std::string> garbage = {"", "{", "null", "[]", "{}", "\"x\"",
                                                       "1", "{\"name\": ", nested(10000, true)};
      switch (c.below(3)) {
        case 0: p.metadata["config"] = to_json(cfg).dump(c.in(0, 4)); break;
        case 1: {
          json j = to_json(cfg);
          j["train"]["steps"] = c.one_in(2) ? json("3") : json(3.0);
          p.metadata["config"] = j.dump();
          break;
        }
        default: p.metadata["config"] = c.pick(garbage); break;
      }
      m.kind = m.label = "config text";
      break;
    }
    case 4: {  // format or a whole metadata entry
      static const std::vector<std::string> keys = {"format", "config", "state"};
      if (c.one_in(2)) {
        p.metadata.erase(c.pick(keys));
      } else {
        p.metadata["format"] = c.pick(std::vector<std::string>{
            "statelab-checkpoint-2", "", "statelab-model", "statelab-checkpoint-1 "});
      }
      m.kind = m.label = "metadata entry";
      break;
    }
    default: {  // tensors: removed, renamed, reshaped, converted, shrunk, or one extra
      const size_t k = c.below(p.tensors.size());
      auto& [name, e] = p.tensors[k];
      m.label = "tensor " + name;
      const size_t edit = c.below(6);
      static const char* const edits[] = {" removed", " renamed", " reshaped", " retyped",
                                          " shrunk", " beside an extra tensor"};
      m.label += edits[edit];
      m.kind = std::string("tensor") + edits[edit];
      switch (edit) {
        case 0: p.tensors.erase(p.tensors.begin() + static_cast<std::ptrdiff_t>(k)); break;
        case 1: name += c.one_in(2) ? "_" : ".0"; break;
        case 2:
          if (e.shape.size() >= 2) {
            std::reverse(e.shape.begin(), e.shape.end());
          } else {
            e.shape.insert(e.shape.begin(), 1);
          }
          break;
        case 3: {  // F32 -> F64 (loads, converted) or to an integer dtype (refused)
          const size_t count = e.bytes.size() / 4;
          if (c.one_in(2)) {
            std::string wide(count * 8, '\0');
            for (size_t i = 0; i < count; ++i) {
              float f;
              std::memcpy(&f, e.bytes.data() + 4 * i, 4);
              const double d = f;
              std::memcpy(&wide[8 * i], &d, 8);
            }
            e.dtype = st::DType::F64;
            e.bytes = wide;
            m.label += " to F64";
            m.kind += " to F64";
          } else {
            e.dtype = st::DType::I32;
          }
          break;
        }
        case 4:  // one element fewer
          if (!e.shape.empty() && e.shape.back() > 0) {
            e.shape.back() -= 1;
            int64_t numel = 1;
            for (int64_t d : e.shape) numel *= d;
            e.bytes.resize(static_cast<size_t>(numel) * 4);
          }
          break;
        default: {
          const st::Entry extra{st::DType::F32, {2}, std::string(8, '\0')};
          p.tensors.push_back({"param.extra", extra});
          break;
        }
      }
      break;
    }
  }
  m.bytes = p.bytes();
  return m;
}

// Byte-level damage: bit flips anywhere or in the length prefix, truncation, bytes in the header.
Mutant byte_edit(const std::string& valid, Chooser& c) {
  std::string m = valid;
  const size_t header_end = 8 + static_cast<size_t>(header_length(valid));
  static const std::string structural = "{}[]\",:-0123456789. e";
  std::string label;
  switch (c.below(5)) {
    case 0:
      for (size_t k = c.in(1, 4); k > 0; --k)
        m[c.below(m.size())] ^= static_cast<char>(1u << c.below(8));
      label = "bit flips";
      break;
    case 1:
      m[c.below(8)] ^= static_cast<char>(1u << c.below(8));
      label = "bit flip in the header length";
      break;
    case 2:
      m.resize(c.one_in(2) ? c.below(header_end + 1) : c.below(m.size()));
      label = "truncation";
      break;
    case 3:
      for (size_t k = c.in(1, 4); k > 0; --k)
        m[c.in(8, header_end - 1)] = c.one_in(2) ? static_cast<char>(c.below(256))
                                                 : structural[c.below(structural.size())];
      label = "bytes in the header";
      break;
    default: {  // one digit of the header changed: offsets, shapes, state and config numbers
      std::vector<size_t> digits;
      for (size_t i = 8; i < header_end; ++i)
        if (m[i] >= '0' && m[i] <= '9') digits.push_back(i);
      m[c.pick(digits)] = static_cast<char>('0' + c.below(10));
      label = "a digit of the header";
      break;
    }
  }
  return {m, Expect::any, label, label};
}

struct SavedCheckpoint {
  RunConfig cfg = tiny_run();
  TempDir dir;
  std::unique_ptr<Trainer> trainer;
  std::string path, bytes;

  SavedCheckpoint() {
    trainer = std::make_unique<Trainer>(cfg);
    trainer->train({});
    save_checkpoint(dir.path().string(), trainer->model(), trainer->state(), cfg);
    path = checkpoint_path(dir.path().string(), trainer->state().step);
    bytes = read_file(path);
  }
};

TEST(InputFuzz, CheckpointReaderRejectsEveryMutationWithAnIoErrorOrLoadsIt) {
  SavedCheckpoint saved;
  ASSERT_EQ(saved.trainer->state().step, 3);
  Trainer reader(saved.cfg);  // loading only overwrites its buffers, so one serves every mutant
  const TrainState back = load_checkpoint(saved.path, reader.model(), saved.cfg);
  ASSERT_EQ(back.step, 3);
  ASSERT_EQ(back.optimizer_steps, saved.trainer->state().optimizer_steps);

  Tally tally;
  std::map<std::string, int> accepted_by_kind;
  Chooser c(0x5eed0003u);
  constexpr int kIterations = 1500;
  for (int iter = 0; iter < kIterations; ++iter) {
    Mutant m;
    switch (iter % 4) {
      case 0: m = byte_edit(saved.bytes, c); break;
      case 1: m = raw_header_edit(saved.bytes, c); break;
      default: m = semantic_edit(saved.bytes, saved.cfg, c); break;
    }
    write_bytes(saved.path, m.bytes);
    TrainState s;
    const bool ok = accepts<IoError>(
        [&] { s = load_checkpoint(saved.path, reader.model(), saved.cfg); },
        "load_checkpoint (" + m.label + ")",
        m.bytes, tally, [&](const std::string& msg) {
          EXPECT_TRUE(contains(msg, saved.path))
              << "IoError does not name the file: " << msg << " (" << m.label << ")";
          if (m.expect == Expect::another_config) {
            EXPECT_TRUE(contains(msg, "another config")) << msg;
          }
        });
    if (ok) {
      ++accepted_by_kind[m.kind];
      EXPECT_NE(m.expect, Expect::another_config) << "a checkpoint of another config loaded";
      EXPECT_GE(s.step, 0) << m.label;
      EXPECT_GE(s.optimizer_steps, 0) << m.label;
      EXPECT_GE(s.metrics_lines, 0) << m.label;
      EXPECT_GE(s.checks_lines, 0) << m.label;
    }
    if (::testing::Test::HasFatalFailure()) return;
  }
  std::printf("[   fuzz   ] checkpoint reader: %d mutants, %d loaded, %d rejected with IoError\n",
              tally.total(), tally.accepted, tally.rejected);
  std::string kinds;
  for (const auto& [kind, n] : accepted_by_kind)
    kinds += (kinds.empty() ? "" : ", ") + kind + " " + std::to_string(n);
  std::printf("[   fuzz   ]   loaded by kind of edit: %s\n", kinds.c_str());
  EXPECT_EQ(tally.total(), kIterations) << "some mutant threw another exception type";
  EXPECT_GT(tally.accepted, 0) << "flips in tensor data and respelt configs must still load";
  EXPECT_GT(tally.rejected, 0);
}

TEST(InputFuzz, CheckpointOfAnotherConfigIsRefusedWithAnIoErrorSayingSo) {
  SavedCheckpoint saved;
  RunConfig other = saved.cfg;
  other.train.lr = 2e-3;  // same model shapes: only the config check can tell them apart
  Trainer reader(other);
  try {
    (void)load_checkpoint(saved.path, reader.model(), other);
    ADD_FAILURE() << "a checkpoint written under another config loaded";
  } catch (const IoError& e) {
    const std::string msg = e.what();
    EXPECT_TRUE(contains(msg, saved.path)) << msg;
    EXPECT_TRUE(contains(msg, "another config")) << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected IoError, got " << type_name(typeid(e)) << ": " << e.what();
  }
  // The run's own config still loads it.
  Trainer own(saved.cfg);
  EXPECT_EQ(load_checkpoint(saved.path, own.model(), saved.cfg).step, 3);
}

// --- 3. task strings -------------------------------------------------------------------------

// Pieces of a typed string: the task's own symbols (most often), PAD, words of no task, other
// tasks' symbols, and separators that are whitespace, nothing or control characters.
std::string random_task_text(const Task& task, const std::vector<std::string>& foreign,
                             Chooser& c) {
  static const std::vector<std::string> unknown = {
      "x", "00", "01", "ab", "A", "=", "+", "(", "p5", "r3", "-2", "+1+1", "<PAD>", "<pad",
      "pad", "<unk>", "<-1>", "<3>", "\xc3\xa9", "\xff", std::string("0\0", 2), "1\x7f",
      std::string(5000, '1')};
  static const std::vector<std::string> separators = {
      " ", " ", " ", "  ", "\t", "\n", "\r\n", "\v", "\f", " \t ", "", "\x01", "\x1b",
      std::string(1, '\0')};
  const std::vector<std::string>& names = task.vocab().names;
  std::string out;
  if (c.one_in(4)) out += c.pick(separators);
  for (size_t k = c.below(16); k > 0; --k) {
    const size_t kind = c.below(20);
    if (kind < 14) {
      out += names[c.in(1, names.size() - 1)];
    } else if (kind < 15) {
      out += "<pad>";
    } else if (kind < 17) {
      out += c.pick(unknown);
    } else {
      out += c.pick(foreign);
    }
    out += c.pick(separators);
  }
  return out;
}

// A task's own input, then damaged a token at a time: most edits keep it well-formed text,
// many make it an invalid input of the task.
std::string mutated_task_input(const Task& task, Chooser& c, uint64_t index) {
  const std::vector<int> lengths = task.lengths_in(1, 24);
  const int length = lengths[c.below(lengths.size())];
  std::vector<int32_t> tokens(static_cast<size_t>(length));
  Rng rng(20240611, 7, index);
  task.generate(rng, length, tokens.data());
  std::vector<std::string> words;
  for (int32_t t : tokens) words.push_back(task.vocab().names[static_cast<size_t>(t)]);
  const auto& names = task.vocab().names;
  switch (c.below(8)) {
    case 0: words[c.below(words.size())] = names[c.in(1, names.size() - 1)]; break;
    case 1: words.erase(words.begin() + static_cast<std::ptrdiff_t>(c.below(words.size()))); break;
    case 2: {
      const size_t at = c.below(words.size());
      words.insert(words.begin() + static_cast<std::ptrdiff_t>(at), words[at]);
      break;
    }
    case 3:
      if (words.size() >= 2) {
        const size_t at = c.below(words.size() - 1);
        std::swap(words[at], words[at + 1]);
      }
      break;
    case 4: words.push_back(names[c.in(1, names.size() - 1)]); break;
    case 5:
      words.insert(words.begin() + static_cast<std::ptrdiff_t>(c.below(words.size() + 1)),
                   "<pad>");
      break;
    default: break;  // unchanged words, only the spacing below differs
  }
  static const std::vector<std::string> spaces = {" ", "  ", "\t", "\n", " \r\n "};
  std::string out = c.one_in(3) ? "  " : "";
  for (size_t i = 0; i < words.size(); ++i) out += (i ? c.pick(spaces) : "") + words[i];
  if (c.one_in(3)) out += "\n";
  return out;
}

TEST(InputFuzz, TaskDecoderRejectsEveryMalformedStringWithAConfigErrorOrLabelsIt) {
  std::vector<std::unique_ptr<Task>> tasks;
  std::vector<std::string> foreign;  // every task's symbols, to mix into the others
  for (const auto& name : task_names()) {
    tasks.push_back(make_task(name));
    const auto& names = tasks.back()->vocab().names;
    foreign.insert(foreign.end(), names.begin() + 1, names.end());
  }
  ASSERT_FALSE(tasks.empty());

  Chooser c(0x5eed0004u);
  constexpr int kPerTask = 500;
  Tally encoded_total, labelled_total;
  for (const auto& task : tasks) {
    Tally encoded, labelled;
    for (int iter = 0; iter < kPerTask; ++iter) {
      const uint64_t index = static_cast<uint64_t>(iter);
      const std::string text = iter == 0   ? std::string()
                               : iter == 1 ? std::string(" \t\n ")
                               : iter % 2  ? random_task_text(*task, foreign, c)
                                           : mutated_task_input(*task, c, index);
      std::vector<int32_t> ids;
      const std::string what = task->name() + ": encode";
      if (!accepts<ConfigError>([&] { ids = task->encode(text); }, what, text, encoded,
                                [&](const std::string& msg) {
                                  EXPECT_EQ(msg.rfind(task->name() + ": ", 0), 0u) << msg;
                                }))
        continue;
      for (int32_t id : ids)
        ASSERT_TRUE(id >= 1 && id < task->vocab().size())
            << what << " produced id " << id << " for \"" << escaped(text) << "\"";
      const int n = static_cast<int>(ids.size());
      EXPECT_EQ(task->encode(task->decode(ids.data(), n)), ids) << escaped(text);
      if (n == 0) continue;
      std::vector<int32_t> answers(ids.size(), -7), latent(ids.size(), -7);
      if (accepts<ConfigError>(
              [&] { task->label(ids.data(), n, answers.data(), latent.data()); },
              task->name() + ": label", text, labelled,
              [&](const std::string& msg) {
                EXPECT_TRUE(contains(msg, task->name())) << msg;
              })) {
        EXPECT_NE(answers.back(), Batch::kIgnore)
            << task->name() << ": no answer at the last position of \"" << escaped(text) << "\"";
        for (int32_t a : answers) EXPECT_NE(a, -7) << task->name() << ": answer left unwritten";
      }
    }
    std::printf(
        "[   fuzz   ] %-28s %d strings: %d rejected by encode; %d encoded non-empty: %d labelled, "
        "%d rejected by label\n",
        task->name().c_str(), encoded.total(), encoded.rejected, labelled.total(),
        labelled.accepted, labelled.rejected);
    EXPECT_GT(encoded.rejected, 0) << task->name();
    EXPECT_GT(labelled.accepted, 0) << task->name();
    encoded_total.accepted += encoded.accepted;
    encoded_total.rejected += encoded.rejected;
    labelled_total.accepted += labelled.accepted;
    labelled_total.rejected += labelled.rejected;
  }
  EXPECT_EQ(encoded_total.total(), kPerTask * static_cast<int>(tasks.size()));
  EXPECT_GT(labelled_total.rejected, 0) << "damaged inputs of structured tasks must be refused";
}

TEST(InputFuzz, TaskGeneratedInputsLabelAndSurviveDecodeThenEncode) {
  Chooser c(0x5eed0005u);
  int checked = 0;
  for (const auto& name : task_names()) {
    const auto task = make_task(name);
    const std::vector<int> lengths = task->lengths_in(1, 64);
    ASSERT_FALSE(lengths.empty()) << name;
    std::vector<int> draws;
    for (int k = 0; k < 40; ++k) draws.push_back(lengths[c.below(lengths.size())]);
    draws.push_back(task->lengths_in(19990, 20010).back());  // one long input
    for (size_t k = 0; k < draws.size(); ++k) {
      const int length = draws[k];
      std::vector<int32_t> tokens(static_cast<size_t>(length)), answers(tokens.size()),
          latent(tokens.size());
      Rng rng(99, 11, k);
      task->generate(rng, length, tokens.data());
      const std::string text = task->decode(tokens.data(), length);
      try {
        task->label(tokens.data(), length, answers.data(), latent.data());
        EXPECT_NE(answers.back(), Batch::kIgnore) << name << ": " << escaped(text);
        EXPECT_EQ(task->encode(text), tokens) << name << ": " << escaped(text);
        ++checked;
      } catch (const std::exception& e) {
        ADD_FAILURE() << name << " refused its own input of length " << length << " ("
                      << type_name(typeid(e)) << ": " << e.what() << "): " << escaped(text);
      }
    }
  }
  std::printf("[   fuzz   ] generated inputs: %d labelled and re-encoded exactly\n", checked);
  EXPECT_EQ(checked, 41 * static_cast<int>(task_names().size()));
}

}  // namespace
}  // namespace statelab
