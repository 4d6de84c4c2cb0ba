// Seeded, fixed-budget mutation fuzz of the readers of preset files and `--set` overrides
// (load_config, apply_override + config_from_json): a malformed input is refused with a
// ConfigError and never crashes, reads out of bounds or throws anything else, and whatever is
// accepted round-trips through to_json. The shared machinery is tests/support/fuzz.hpp.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/error.hpp"
#include "lab/config.hpp"
#include "tasks/registry.hpp"
#include "tasks/task.hpp"
#include "tests/support/fuzz.hpp"
#include "tests/support/temp_dir.hpp"

namespace statelab {
namespace {

using json = nlohmann::json;
using statelab::testing::TempDir;
using namespace testing::fuzz;  // the shared fuzz machinery

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

}  // namespace
}  // namespace statelab
