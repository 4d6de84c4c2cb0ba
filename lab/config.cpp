// Strict loading of run configs: a preset file plus `--set` overrides becomes a RunConfig, or a
// ConfigError naming the file, the JSON pointer, what is allowed and what was found.
// Validation walks the schema in the declaration order of config.hpp, so the error reported is
// the first one a reader of that header would meet; to_json writes the resolved whole back.
#include "lab/config.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <utility>

#include "cells/catalog.hpp"
#include "kernels/error.hpp"
#include "lab/compute_device.hpp"
#include "lab/files.hpp"
#include "tasks/registry.hpp"

namespace statelab {
namespace {

using json = nlohmann::json;
using Pointer = json::json_pointer;

constexpr int kIntMax = std::numeric_limits<int>::max();
constexpr int kMaxLength = 1000000;
constexpr size_t kMaxShownChars = 200;
constexpr int kMaxDepth = 32;

// Values are quoted back to the user. A `--set` string may hold invalid UTF-8, which must not
// turn the error report itself into a json exception; a whole misplaced section is cut short.
std::string show(const json& v) {
  if (v.is_number_float() && !std::isfinite(v.get<double>())) {
    const double d = v.get<double>();
    return std::isnan(d) ? "nan" : d > 0 ? "inf" : "-inf";
  }
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > kMaxShownChars) s = s.substr(0, kMaxShownChars) + "...";
  return s;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

bool contains(const std::vector<std::string>& items, const std::string& s) {
  for (const auto& i : items)
    if (i == s) return true;
  return false;
}

std::string where(const std::string& source, const Pointer& at) {
  return at.empty() ? source + ": " : source + ": " + at.to_string() + ": ";
}

[[noreturn]] void fail_at(const std::string& source, const Pointer& at, const std::string& expected,
                          const std::string& got) {
  throw ConfigError(where(source, at) + "expected " + expected + ", got " + got);
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// A misspelt key is the usual cause of an unknown one; naming the likely intent saves a lookup.
std::string suggestion(const std::string& key, const std::vector<std::string>& allowed) {
  std::string best;
  size_t best_distance = 3;
  for (const auto& a : allowed) {
    const size_t d = edit_distance(key, a);
    if (d < best_distance) {
      best_distance = d;
      best = a;
    }
  }
  return best.empty() ? "" : "; did you mean " + best + "?";
}

std::optional<int64_t> as_integer(const json& v) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > uint64_t(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return int64_t(u);
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  return std::nullopt;
}

// One key of a schema object. `value` is null when the key is absent and the default stands.
struct Field {
  const std::string& source;
  Pointer at;
  const json* value;

  [[noreturn]] void fail(const std::string& expected, const std::string& detail = "") const {
    fail_at(source, at, expected, show(*value) + detail);
  }
  // For checks between fields, where the offending side may be a default the file never wrote:
  // saying so tells the user which key to add.
  template <typename T>
  void require(bool ok, const std::string& expected, const T& resolved) const {
    if (ok) return;
    if (value) fail(expected);
    fail_at(source, at, expected, show(json(resolved)) + " (the default)");
  }
};

// One object of the schema. Unknown keys are checked before any field is read, so a typo is
// reported as a typo and not as the missing value it left behind.
class Section {
 public:
  Section(const std::string& source, Pointer at, const json* j, std::vector<std::string> allowed)
      : source_(source), at_(std::move(at)), j_(j) {
    if (!j_) return;
    if (!j_->is_object()) fail_at(source_, at_, "an object with keys " + join(allowed), show(*j_));
    for (const auto& item : j_->items())
      if (!contains(allowed, item.key()))
        throw ConfigError(where(source_, at_ / item.key()) + "unknown key; allowed keys: " +
                          join(allowed) + suggestion(item.key(), allowed));
  }

  Field field(const std::string& key) const { return {source_, at_ / key, find(key)}; }
  Section section(const std::string& key, std::vector<std::string> allowed) const {
    return Section(source_, at_ / key, find(key), std::move(allowed));
  }

 private:
  const json* find(const std::string& key) const {
    if (!j_) return nullptr;
    const auto it = j_->find(key);
    return it == j_->end() ? nullptr : &*it;
  }

  const std::string& source_;
  Pointer at_;
  const json* j_;
};

std::string integer_range(int64_t lo, int64_t hi) {
  if (hi == kIntMax) return "integer >= " + std::to_string(lo);
  return "integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
}

void read_int(const Field& f, int lo, int hi, int& out) {
  if (!f.value) return;
  const std::optional<int64_t> n = as_integer(*f.value);
  if (n && *n >= lo && *n <= hi) {
    out = int(*n);
    return;
  }
  // Past int's range, ">= 1" alone would not explain the rejection.
  if (n && *n > hi) f.fail("integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  f.fail(integer_range(lo, hi));
}

void read_seed(const Field& f, uint64_t& out) {
  if (!f.value) return;
  if (f.value->is_number_unsigned()) {
    out = f.value->get<uint64_t>();
    return;
  }
  // A json built in code holds a non-negative int as number_integer, not number_unsigned.
  if (f.value->is_number_integer() && f.value->get<int64_t>() >= 0) {
    out = uint64_t(f.value->get<int64_t>());
    return;
  }
  f.fail("integer in [0, " + std::to_string(std::numeric_limits<uint64_t>::max()) + "]");
}

template <typename Ok>
void read_number(const Field& f, double& out, Ok ok, const std::string& expected) {
  if (!f.value) return;
  if (f.value->is_number()) {
    const double d = f.value->get<double>();
    if (std::isfinite(d) && ok(d)) {
      out = d;
      return;
    }
  }
  f.fail(expected);
}

// Returns whether the key was present, so the caller validates only what the file wrote.
bool read_string(const Field& f, std::string& out, const std::string& expected) {
  if (!f.value) return false;
  if (!f.value->is_string()) f.fail(expected);
  out = f.value->get<std::string>();
  return true;
}

void read_one_of(const Field& f, std::string& out, const std::vector<std::string>& allowed) {
  const std::string expected = "one of " + join(allowed);
  if (read_string(f, out, expected) && !contains(allowed, out)) f.fail(expected);
}

void read_lengths(const Field& f, std::vector<int>& out) {
  if (!f.value) return;
  const std::string expected = "[lo, hi] with 1 <= lo <= hi <= " + std::to_string(kMaxLength);
  const json& v = *f.value;
  if (!v.is_array() || v.size() != 2) f.fail(expected);
  const std::optional<int64_t> lo = as_integer(v[0]);
  const std::optional<int64_t> hi = as_integer(v[1]);
  if (!lo || !hi || *lo < 1 || *lo > *hi || *hi > kMaxLength) f.fail(expected);
  out = {int(*lo), int(*hi)};
}

bool is_name_char(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         ch == '_';
}

// The name becomes a directory under the runs folder, so it must stay one path component.
bool is_run_name(const std::string& s) {
  if (s.empty() || s.size() > 255 || s == "." || s == "..") return false;
  for (const char ch : s)
    if (!is_name_char(ch) && ch != '.' && ch != '-') return false;
  return true;
}

void read_blocks(const Field& f, std::string& out) {
  std::string letters, legend;
  for (const auto& k : block_kinds()) {
    letters += k.letter;
    legend += (legend.empty() ? "" : ", ") + std::string(1, k.letter) + " = " + k.cell;
  }
  const std::string expected = "a non-empty string of block letters (" + legend + ") or xlstm[a:b]";
  if (!read_string(f, out, expected)) return;
  try {
    if (expand_xlstm_ratio(out, out)) return;
  } catch (const ConfigError& e) {
    f.fail(e.what());
  }
  if (out.empty()) f.fail(expected);
  const size_t bad = out.find_first_not_of(letters);
  if (bad != std::string::npos)
    f.fail(expected, " (" + show(json(std::string(1, out[bad]))) + " at index " +
                         std::to_string(bad) + " is not a block letter)");
}

// The cells of a pattern whose transitions model.eigen_range signs, e.g. "mlstm, gdn".
std::string linear_cells_of(const std::string& pattern) {
  std::vector<std::string> cells;
  for (const char letter : pattern)
    if (const BlockKind* k = find_block_kind(letter); k && k->linear && !contains(cells, k->cell))
      cells.push_back(k->cell);
  return join(cells);
}

// A preset that cannot be read is a config problem to the user, whatever the cause.
std::string read_preset(const std::string& path) {
  try {
    return read_file(path);
  } catch (const IoError& e) {
    throw ConfigError(e.what());
  }
}

// nlohmann keeps the last of two equal keys without a word; in a preset that silently drops a
// setting the author believes is in force, so the parse tracks the keys of each open object.
class DuplicateKeyCheck {
 public:
  explicit DuplicateKeyCheck(const std::string& path) : path_(path) {}

  bool operator()(int depth, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        // Presets nest a few levels; a deep document would only exhaust the stack of the
        // recursive code that later prints or walks it.
        if (depth >= kMaxDepth)
          throw ConfigError(where(path_, pointer()) + "nested deeper than " +
                            std::to_string(kMaxDepth) + " levels; presets nest a few");
        frames_.push_back({event == json::parse_event_t::object_start, {}, {}, 0});
        break;
      case json::parse_event_t::key: {
        Frame& top = frames_.back();
        top.key = parsed.get<std::string>();
        if (!top.keys.insert(top.key).second)
          throw ConfigError(where(path_, pointer()) + "duplicate key; each key may appear once");
        break;
      }
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        frames_.pop_back();
        count_element();
        break;
      case json::parse_event_t::value:
        count_element();
        break;
    }
    return true;
  }

 private:
  struct Frame {
    bool object;
    std::set<std::string> keys;
    std::string key;  // the key whose value is being read
    size_t index;     // the array element being read
  };

  void count_element() {
    if (!frames_.empty() && !frames_.back().object) ++frames_.back().index;
  }
  Pointer pointer() const {
    Pointer p;
    for (const Frame& f : frames_) p = f.object ? p / f.key : p / f.index;
    return p;
  }

  const std::string& path_;
  std::vector<Frame> frames_;
};

json parse_preset(const std::string& path, const std::string& text) {
  DuplicateKeyCheck check(path);
  try {
    return json::parse(text, std::ref(check));
  } catch (const json::exception& e) {
    // Drop the "[json.exception.parse_error.101] " tag; "at line L, column C" stays.
    std::string what = e.what();
    const size_t tag_end = what.find("] ");
    if (what.rfind("[json.exception.", 0) == 0 && tag_end != std::string::npos)
      what = what.substr(tag_end + 2);
    throw ConfigError(path + ": invalid JSON: " + what);
  }
}

}  // namespace

RunConfig load_config(const std::string& path, const std::vector<std::string>& overrides) {
  json j = parse_preset(path, read_preset(path));
  if (!j.is_object()) fail_at(path, Pointer(), "a JSON object at the top level", show(j));
  for (const auto& o : overrides) apply_override(j, o, path);
  if (!j.contains("name")) j["name"] = std::filesystem::path(path).stem().string();
  return config_from_json(j, path);
}

void apply_override(json& j, const std::string& assignment, const std::string& source) {
  const ConfigError malformed("--set '" + assignment +
                              "': expected KEY=VALUE with KEY a dotted config path such as "
                              "train.steps");
  const size_t eq = assignment.find('=');
  if (eq == std::string::npos) throw malformed;
  const std::string key = assignment.substr(0, eq);
  std::vector<std::string> segments(1);
  for (const char ch : key) {
    if (ch == '.')
      segments.emplace_back();
    else if (is_name_char(ch))
      segments.back() += ch;
    else
      throw malformed;
  }
  for (const auto& s : segments)
    if (s.empty()) throw malformed;

  // `model.blocks=ss` must work without shell-quoting JSON strings, so text that is not JSON
  // is taken as the string it spells.
  const std::string text = assignment.substr(eq + 1);
  json value = json::parse(
      text,
      [&](int depth, json::parse_event_t, json&) {
        if (depth >= kMaxDepth)
          throw ConfigError("--set '" + key + "=...': value nested deeper than " +
                            std::to_string(kMaxDepth) + " levels");
        return true;
      },
      false);
  if (value.is_discarded()) value = text;

  if (j.is_null()) j = json::object();
  if (!j.is_object())
    fail_at(source, Pointer(), "a JSON object to apply --set '" + assignment + "' to", show(j));
  json* node = &j;
  Pointer at;
  for (size_t i = 0; i + 1 < segments.size(); ++i) {
    at /= segments[i];
    auto it = node->find(segments[i]);
    if (it == node->end()) {
      node = &((*node)[segments[i]] = json::object());
    } else if (it->is_object()) {
      node = &*it;
    } else {
      throw ConfigError(source + ": --set '" + assignment + "': " + at.to_string() +
                        ": expected an object, got " + show(*it));
    }
  }
  (*node)[segments.back()] = std::move(value);
}

RunConfig config_from_json(const json& j, const std::string& source) {
  RunConfig c;
  const Section top(source, Pointer(), &j,
                    {"schema_version", "name", "device", "precision", "task", "model", "train",
                     "eval"});
  if (const Field f = top.field("schema_version"); f.value) {
    const std::optional<int64_t> v = as_integer(*f.value);
    if (!v || *v != 1) f.fail("1");
  }
  const std::string name_rule =
      "a run directory name: 1 to 255 of A-Z a-z 0-9 _ . - and not \".\" or \"..\"";
  if (const Field f = top.field("name"); read_string(f, c.name, name_rule) && !is_run_name(c.name))
    f.fail(name_rule);
  if (const Field f = top.field("device"); read_string(f, c.device, device_spec_error("cpu")) &&
                                            !device_spec_error(c.device).empty())
    f.fail(device_spec_error(c.device));
  read_one_of(top.field("precision"), c.precision, {"fp32", "tf32", "bf16"});

  const Section task =
      top.section("task", {"name", "train_lengths", "length_sampling", "readout"});
  read_one_of(task.field("name"), c.task.name, task_names());
  const auto task_impl = make_task(c.task.name);
  const Field train_lengths = task.field("train_lengths");
  read_lengths(train_lengths, c.task.train_lengths);
  train_lengths.require(
      !task_impl->lengths_in(c.task.train_lengths[0], c.task.train_lengths[1]).empty(),
      "[lo, hi] holding a length " + c.task.name + " accepts (" + task_impl->length_rule() + ")",
      c.task.train_lengths);
  read_one_of(task.field("length_sampling"), c.task.length_sampling, {"per_batch", "per_sample"});
  const Field readout = task.field("readout");
  read_one_of(readout, c.task.readout, {"final", "per_token"});
  readout.require(c.task.readout == "final" || task_impl->has_running_answer(),
                  "\"final\" (" + c.task.name + " defines no running answer for per_token)",
                  c.task.readout);

  ModelConfig& m = c.model;
  const Section model =
      top.section("model", {"blocks", "d_model", "heads", "ffn_factor", "eigen_range", "chunk_size",
                            "slstm", "mlstm", "mamba2", "gdn", "transformer"});
  read_blocks(model.field("blocks"), m.blocks);
  read_int(model.field("d_model"), 1, 65536, m.d_model);
  const Field heads = model.field("heads");
  read_int(heads, 1, kIntMax, m.heads);
  heads.require(m.d_model % m.heads == 0,
                "integer >= 1 that divides d_model = " + std::to_string(m.d_model), m.heads);
  read_number(model.field("ffn_factor"), m.ffn_factor, [](double d) { return d >= 0 && d <= 64; },
              "number in [0, 64]");
  const Field eigen_range = model.field("eigen_range");
  read_one_of(eigen_range, m.eigen_range, {"01", "pm1"});
  const std::string linear_cells = linear_cells_of(m.blocks);
  eigen_range.require(m.eigen_range == "01" || !linear_cells.empty(),
                      "\"01\" (\"pm1\" signs the transitions of mlstm, mamba2 and gdn blocks; "
                      "model.blocks = \"" +
                          m.blocks + "\" has none)",
                      m.eigen_range);
  read_int(model.field("chunk_size"), 1, 65536, m.chunk_size);

  const Section slstm = model.section("slstm", {"forget_gate", "conv_kernel"});
  read_one_of(slstm.field("forget_gate"), m.slstm.forget_gate, {"sigmoid", "exp"});
  read_int(slstm.field("conv_kernel"), 0, 64, m.slstm.conv_kernel);

  const Section mlstm = model.section("mlstm", {"forget_gate", "conv_kernel", "proj_factor"});
  const Field mlstm_forget = mlstm.field("forget_gate");
  read_one_of(mlstm_forget, m.mlstm.forget_gate, {"sigmoid", "exp"});
  const bool signed_mlstm = m.eigen_range == "pm1" && m.blocks.find('m') != std::string::npos;
  mlstm_forget.require(!signed_mlstm || m.mlstm.forget_gate == "sigmoid",
                       "\"sigmoid\" (eigen_range \"pm1\" makes the mLSTM forget gate "
                       "2·sigmoid − 1; an exp gate has no sign)",
                       m.mlstm.forget_gate);
  read_int(mlstm.field("conv_kernel"), 1, 64, m.mlstm.conv_kernel);
  read_int(mlstm.field("proj_factor"), 1, 16, m.mlstm.proj_factor);

  const Section mamba2 = model.section("mamba2", {"expand", "state_size", "conv_kernel"});
  read_int(mamba2.field("expand"), 1, 16, m.mamba2.expand);
  read_int(mamba2.field("state_size"), 1, 1024, m.mamba2.state_size);
  read_int(mamba2.field("conv_kernel"), 1, 64, m.mamba2.conv_kernel);

  const Section gdn = model.section("gdn", {"expand_v", "conv_kernel"});
  read_int(gdn.field("expand_v"), 1, 16, m.gdn.expand_v);
  read_int(gdn.field("conv_kernel"), 1, 64, m.gdn.conv_kernel);

  const Section transformer = model.section("transformer", {"position", "rope_base"});
  read_one_of(transformer.field("position"), m.transformer.position, {"rope", "none"});
  read_number(
      transformer.field("rope_base"), m.transformer.rope_base,
      [](double d) { return d > 1 && d <= 1e12; }, "number in (1, 1e12]");
  const bool rope = m.transformer.position == "rope" && m.blocks.find('t') != std::string::npos;
  heads.require(!rope || (m.d_model / m.heads) % 2 == 0,
                "integer >= 1 that divides d_model = " + std::to_string(m.d_model) +
                    " into heads of even width (RoPE rotates pairs of units)",
                m.heads);

  TrainConfig& t = c.train;
  std::vector<std::string> train_keys = {
      "steps",      "batch",           "lr",         "min_lr",     "warmup_steps",
      "weight_decay", "beta1",         "beta2",      "eps",        "grad_clip",
      "seed",       "log_every",       "eval_every", "early_stop_evals", "early_stop_accuracy",
      "checkpoint_every", "keep_checkpoints", "on_nan"};
#ifdef STATELAB_FAULT_INJECTION
  train_keys.push_back("poison");
#endif
  const Section train = top.section("train", train_keys);
  read_int(train.field("steps"), 1, 1000000000, t.steps);
  read_int(train.field("batch"), 1, 1000000, t.batch);
  read_number(train.field("lr"), t.lr, [](double d) { return d > 0; }, "number > 0");
  const std::string min_lr_rule = "number in [0, lr = " + show(json(t.lr)) + "]";
  const Field min_lr = train.field("min_lr");
  read_number(min_lr, t.min_lr, [&](double d) { return d >= 0 && d <= t.lr; }, min_lr_rule);
  min_lr.require(t.min_lr <= t.lr, min_lr_rule, t.min_lr);
  // Unset, warm-up is a tenth of training (the reference runs: 2,000 of 20,000), so changing
  // train.steps alone never leaves a warm-up longer than the run.
  const Field warmup = train.field("warmup_steps");
  if (!warmup.value) t.warmup_steps = t.steps / 10;
  read_int(warmup, 0, kIntMax, t.warmup_steps);
  warmup.require(t.warmup_steps <= t.steps,
                 "integer in [0, steps = " + std::to_string(t.steps) + "]", t.warmup_steps);
  read_number(train.field("weight_decay"), t.weight_decay, [](double d) { return d >= 0; },
              "number >= 0");
  const auto unit = [](double d) { return d >= 0 && d < 1; };
  read_number(train.field("beta1"), t.beta1, unit, "number in [0, 1)");
  read_number(train.field("beta2"), t.beta2, unit, "number in [0, 1)");
  read_number(train.field("eps"), t.eps, [](double d) { return d > 0; }, "number > 0");
  read_number(train.field("grad_clip"), t.grad_clip, [](double d) { return d >= 0; },
              "number >= 0 (0 = off)");
  read_seed(train.field("seed"), t.seed);
  read_int(train.field("log_every"), 1, kIntMax, t.log_every);
  read_int(train.field("eval_every"), 0, kIntMax, t.eval_every);
  const Field early_stop = train.field("early_stop_evals");
  read_int(early_stop, 0, kIntMax, t.early_stop_evals);
  early_stop.require(t.early_stop_evals == 0 || t.eval_every > 0,
                     "0 while train.eval_every is 0 (early stopping needs evaluations)",
                     t.early_stop_evals);
  read_number(train.field("early_stop_accuracy"), t.early_stop_accuracy,
              [](double d) { return d > 0 && d <= 1; }, "number in (0, 1]");
  read_int(train.field("checkpoint_every"), 0, kIntMax, t.checkpoint_every);
  read_int(train.field("keep_checkpoints"), 1, 1000, t.keep_checkpoints);
  read_one_of(train.field("on_nan"), t.on_nan, {"stop", "skip_step"});
#ifdef STATELAB_FAULT_INJECTION
  const Section poison = train.section("poison", {"step", "parameter"});
  read_int(poison.field("step"), 0, kIntMax, t.poison_step);
  const Field parameter = poison.field("parameter");
  if (read_string(parameter, t.poison_parameter, "a parameter name (A-Z a-z 0-9 _ .)") &&
      (t.poison_parameter.empty() ||
       t.poison_parameter.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                             "0123456789_.") != std::string::npos))
    parameter.fail("a parameter name (A-Z a-z 0-9 _ .)");
  parameter.require(t.poison_step == 0 || !t.poison_parameter.empty(),
                    "a parameter name when poison.step > 0", t.poison_parameter);
#endif

  EvalConfig& e = c.eval;
  const Section eval =
      top.section("eval", {"lengths", "length_step", "samples", "seed", "batch_tokens"});
  const Field eval_lengths = eval.field("lengths");
  read_lengths(eval_lengths, e.lengths);
  read_int(eval.field("length_step"), 1, kIntMax, e.length_step);
  eval_lengths.require(!task_impl->lengths_in(e.lengths[0], e.lengths[1], e.length_step).empty(),
                       "[lo, hi] holding a length " + c.task.name + " accepts (" +
                           task_impl->length_rule() + ") on the length_step grid",
                       e.lengths);
  read_int(eval.field("samples"), 1, 10000000, e.samples);
  read_seed(eval.field("seed"), e.seed);
  read_int(eval.field("batch_tokens"), 1, kIntMax, e.batch_tokens);
  return c;
}

json to_json(const RunConfig& c) {
  json j;
  j["schema_version"] = c.schema_version;
  // Only config_from_json on a document without a name leaves it empty, and "" is not a valid
  // name, so writing it would break the round trip; load_config always fills it in.
  if (!c.name.empty()) j["name"] = c.name;
  j["device"] = c.device;
  j["precision"] = c.precision;
  j["task"] = {{"name", c.task.name},
               {"train_lengths", c.task.train_lengths},
               {"length_sampling", c.task.length_sampling},
               {"readout", c.task.readout}};
  j["model"] = {
      {"blocks", c.model.blocks},
      {"d_model", c.model.d_model},
      {"heads", c.model.heads},
      {"ffn_factor", c.model.ffn_factor},
      {"eigen_range", c.model.eigen_range},
      {"chunk_size", c.model.chunk_size},
      {"slstm",
       {{"forget_gate", c.model.slstm.forget_gate}, {"conv_kernel", c.model.slstm.conv_kernel}}},
      {"mlstm",
       {{"forget_gate", c.model.mlstm.forget_gate},
        {"conv_kernel", c.model.mlstm.conv_kernel},
        {"proj_factor", c.model.mlstm.proj_factor}}},
      {"mamba2",
       {{"expand", c.model.mamba2.expand},
        {"state_size", c.model.mamba2.state_size},
        {"conv_kernel", c.model.mamba2.conv_kernel}}},
      {"gdn", {{"expand_v", c.model.gdn.expand_v}, {"conv_kernel", c.model.gdn.conv_kernel}}},
      {"transformer",
       {{"position", c.model.transformer.position}, {"rope_base", c.model.transformer.rope_base}}}};
  const TrainConfig& t = c.train;
  j["train"] = {{"steps", t.steps},
                {"batch", t.batch},
                {"lr", t.lr},
                {"min_lr", t.min_lr},
                {"warmup_steps", t.warmup_steps},
                {"weight_decay", t.weight_decay},
                {"beta1", t.beta1},
                {"beta2", t.beta2},
                {"eps", t.eps},
                {"grad_clip", t.grad_clip},
                {"seed", t.seed},
                {"log_every", t.log_every},
                {"eval_every", t.eval_every},
                {"early_stop_evals", t.early_stop_evals},
                {"early_stop_accuracy", t.early_stop_accuracy},
                {"checkpoint_every", t.checkpoint_every},
                {"keep_checkpoints", t.keep_checkpoints},
                {"on_nan", t.on_nan}};
  if (t.poison_step > 0)
    j["train"]["poison"] = {{"step", t.poison_step}, {"parameter", t.poison_parameter}};
  const EvalConfig& e = c.eval;
  j["eval"] = {{"lengths", e.lengths},
               {"length_step", e.length_step},
               {"samples", e.samples},
               {"seed", e.seed},
               {"batch_tokens", e.batch_tokens}};
  return j;
}

std::string config_hash(const RunConfig& c) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char byte : to_json(c).dump()) {
    h ^= byte;
    h *= 1099511628211ull;
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

}  // namespace statelab
