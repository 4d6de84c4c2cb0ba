// Seeded, fixed-budget mutation fuzz of the checkpoint reader (load_checkpoint): header edits,
// well-formed files that say something else than the run expects, and byte-level damage are
// refused with an IoError and never crash, read out of bounds or throw anything else; what is
// accepted loads the saved state. The shared machinery is tests/support/fuzz.hpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/error.hpp"
#include "lab/checkpoint.hpp"
#include "lab/config.hpp"
#include "lab/files.hpp"
#include "lab/safetensors.hpp"
#include "lab/trainer.hpp"
#include "tests/support/fuzz.hpp"
#include "tests/support/temp_dir.hpp"

namespace statelab {
namespace {

namespace st = safetensors;
using json = nlohmann::json;
using statelab::testing::TempDir;
using namespace testing::fuzz;  // the shared fuzz machinery

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

}  // namespace
}  // namespace statelab
