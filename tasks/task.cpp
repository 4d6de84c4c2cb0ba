// What every task shares: batch assembly, length selection, readouts, encode/decode. Rows are
// drawn one after another from the same generator, so a batch is the same whichever way it is
// later split.
#include "tasks/task.hpp"

#include <algorithm>
#include <sstream>

#include "kernels/error.hpp"

namespace statelab {

int Vocab::id(const std::string& name) const {
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return int(i);
  return -1;
}

Readout readout_from_name(const std::string& name) {
  if (name == "final") return Readout::final;
  if (name == "per_token") return Readout::per_token;
  throw ConfigError("unknown readout '" + name + "'; allowed: final, per_token");
}

void Batch::resize(int b, int t) {
  batch = b;
  length = t;
  tokens.assign(size_t(b) * t, 0);
  targets.assign(size_t(b) * t, kIgnore);
  latent.assign(size_t(b) * t, kIgnore);
  lengths.assign(size_t(b), t);
}

void Task::sample_sequence(Rng& rng, int length, Readout readout, int32_t* tokens,
                           int32_t* targets, int32_t* latent) const {
  generate(rng, length, tokens);
  label(tokens, length, targets, latent);
  if (readout == Readout::final) std::fill(targets, targets + length - 1, Batch::kIgnore);
}

void Task::sample(Rng& rng, int batch, int length, Readout readout, Batch& out) const {
  out.resize(batch, length);
  for (int b = 0; b < batch; ++b) {
    const size_t row = size_t(b) * length;
    sample_sequence(rng, length, readout, &out.tokens[row], &out.targets[row], &out.latent[row]);
  }
}

void Task::sample_mixed(Rng& rng, int batch, int lo, int hi, Readout readout, Batch& out) const {
  const std::vector<int> valid = lengths_in(lo, hi);
  SL_CHECK(!valid.empty(), name() + ": no length in [" + std::to_string(lo) + ", " +
                               std::to_string(hi) + "] satisfies " + length_rule());
  std::vector<int32_t> lengths(static_cast<size_t>(batch));
  for (auto& n : lengths) n = valid[size_t(rng.uniform_int(0, int64_t(valid.size()) - 1))];
  const int longest = *std::max_element(lengths.begin(), lengths.end());
  out.resize(batch, longest);
  out.lengths = lengths;
  for (int b = 0; b < batch; ++b) {
    const size_t row = size_t(b) * longest;
    sample_sequence(rng, lengths[size_t(b)], readout, &out.tokens[row], &out.targets[row],
                    &out.latent[row]);
  }
}

std::vector<int> Task::lengths_in(int lo, int hi, int step) const {
  std::vector<int> out;
  for (int64_t L = lo; L <= hi; L += step)  // 64-bit: lo + step may pass INT_MAX
    if (accepts_length(int(L))) out.push_back(int(L));
  return out;
}

std::vector<int32_t> Task::encode(const std::string& text) const {
  std::istringstream in(text);
  std::vector<int32_t> ids;
  std::string symbol;
  while (in >> symbol) {
    const int id = vocab().id(symbol);
    if (id <= 0) {  // unknown, or PAD, which is never an input
      std::string known;
      for (size_t i = 1; i < vocab().names.size(); ++i) known += (i > 1 ? " " : "") + vocab().names[i];
      throw ConfigError(name() + ": symbol '" + symbol + "' at position " +
                        std::to_string(ids.size() + 1) + " is not in the vocabulary: " + known);
    }
    ids.push_back(id);
  }
  return ids;
}

void Task::reject_token(const int32_t* tokens, int t, const std::string& expected) const {
  throw ConfigError(name() + ": position " + std::to_string(t + 1) + " holds '" +
                    decode(tokens + t, 1) + "'; expected " + expected);
}

void Task::require_length(int length) const {
  if (!accepts_length(length))
    throw ConfigError(name() + ": cannot form length " + std::to_string(length) +
                      "; accepted: " + length_rule());
}

std::string Task::decode(const int32_t* tokens, int length) const {
  std::string out;
  for (int t = 0; t < length; ++t) {
    const int32_t id = tokens[t];
    out += (t ? " " : "") + (id >= 0 && id < vocab().size() ? vocab().names[size_t(id)]
                                                            : "<" + std::to_string(id) + ">");
  }
  return out;
}

}  // namespace statelab
