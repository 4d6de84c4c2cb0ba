// The task interface: a generator of token sequences with the answer and the task's latent
// state at every position. Tasks are pure data: no model, no training. Randomness comes only
// from the Rng handed in, so a batch is a function of (seed, stream, index) and reproduces
// anywhere. Every task splits into `generate` (the input distribution) and `label` (the task's
// semantics), so a sequence a user types is labelled by the same code as a sampled one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/rng.hpp"

namespace statelab {

struct Vocab {
  std::vector<std::string> names;  // printable name per token id; id 0 is "<pad>"
  int size() const { return int(names.size()); }
  int id(const std::string& name) const;  // -1 if absent
};

// Where the loss and the accuracy apply: the last input position only (the xLSTM harness), or
// every position where the task defines a running answer.
enum class Readout { final, per_token };
Readout readout_from_name(const std::string& name);  // "final" | "per_token"

// One batch, row-major [batch, length]. Rows may be shorter than `length`: a row of n input
// tokens is followed by PAD (token 0) with no target, as in the reference harness.
struct Batch {
  int batch = 0;
  int length = 0;
  std::vector<int32_t> tokens;   // model input
  std::vector<int32_t> targets;  // answer token where the loss applies, kIgnore elsewhere
  std::vector<int32_t> latent;   // the task's latent state after each position, kIgnore on PAD
  std::vector<int32_t> lengths;  // input tokens per row
  static constexpr int32_t kIgnore = -1;

  void resize(int b, int t);
};

class Task {
 public:
  virtual ~Task() = default;
  virtual std::string name() const = 0;
  virtual std::string definition() const = 0;         // one line: input and answer
  virtual std::string latent_definition() const = 0;  // one line: what latent[t] holds
  virtual std::string family() const = 0;  // "state tracking", "context-free", "counting", "memory"
  virtual const Vocab& vocab() const = 0;
  virtual std::vector<int32_t> answer_tokens() const = 0;  // the ids an answer can take
  // Accuracy of the best constant answer at the final position under the generator's
  // distribution (what "chance" means in scaled accuracy).
  virtual double chance() const = 0;
  // Whether answers exist before the last position (the per_token readout).
  virtual bool has_running_answer() const = 0;
  // Lengths the generator can form (counted in input tokens, any "=" included).
  virtual bool accepts_length(int length) const { return length >= 1; }
  virtual std::string length_rule() const { return "length >= 1"; }

  // Writes `length` input tokens drawn from the task's distribution.
  virtual void generate(Rng& rng, int length, int32_t* tokens) const = 0;
  // The task's semantics: for a whole input, answers[t] is the running answer after reading
  // tokens[0..t] (kIgnore where undefined; always defined at the last position) and latent[t]
  // the latent state. Throws ConfigError naming the position when `tokens` is not an input of
  // the task (a symbol in the wrong place, an unbalanced bracket).
  virtual void label(const int32_t* tokens, int length, int32_t* answers,
                     int32_t* latent) const = 0;

  // generate + label into `tokens`, `targets` (per the readout) and `latent`.
  void sample_sequence(Rng& rng, int length, Readout readout, int32_t* tokens, int32_t* targets,
                       int32_t* latent) const;
  // `batch` sequences of exactly `length` tokens.
  void sample(Rng& rng, int batch, int length, Readout readout, Batch& out) const;
  // `batch` sequences whose lengths are drawn row by row uniformly from the lengths in [lo, hi]
  // that the task accepts, padded to the longest; the reference harness's training batches.
  void sample_mixed(Rng& rng, int batch, int lo, int hi, Readout readout, Batch& out) const;
  // The accepted lengths in [lo, hi] (every `step`-th length from lo, those accepted).
  std::vector<int> lengths_in(int lo, int hi, int step = 1) const;

  // Between a human string of space-separated token names ("( 3 + 4 ) * 2 =") and token ids.
  // encode throws ConfigError naming the unknown symbol, its position and the vocabulary.
  std::vector<int32_t> encode(const std::string& text) const;
  std::string decode(const int32_t* tokens, int length) const;

  // The errors every task raises alike, as ConfigError:
  // "<task>: position N holds '<symbol>'; expected <expected>" for an invalid input, and
  // "<task>: cannot form length L; accepted: <length_rule>" for a generator asked for a length
  // it cannot form (a task never silently produces another length).
  [[noreturn]] void reject_token(const int32_t* tokens, int t, const std::string& expected) const;
  void require_length(int length) const;
};

}  // namespace statelab
