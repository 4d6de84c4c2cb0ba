// Flip-flop generator and labeller. Follows the paper's FFL(0.8) sampling (first instruction w,
// last r, the rest i.i.d.); the one change is the format: the final read's bit is left out of
// the input and becomes the answer, so the task fits the next-token harness.
#include "tasks/flip_flop.hpp"

#include "kernels/error.hpp"

namespace statelab {

namespace {
bool is_instruction(int32_t id) {
  return id == FlipFlopTask::kWriteOp || id == FlipFlopTask::kReadOp ||
         id == FlipFlopTask::kIgnoreOp;
}
bool is_bit(int32_t id) { return id == FlipFlopTask::kBit0 || id == FlipFlopTask::kBit1; }
}  // namespace

FlipFlopTask::FlipFlopTask() : vocab_{{"<pad>", "w", "r", "i", "0", "1"}} {
  constexpr double total = kIgnoreProbability + kWriteProbability + kReadProbability;
  static_assert(total > 1.0 - 1e-12 && total < 1.0 + 1e-12, "instruction probabilities sum to 1");
}

std::string FlipFlopTask::definition() const {
  return "pairs (w|i|r, bit) starting with a write, read bits equal to the last written bit, "
         "then a final r; answer at that r (and at every inner r): the last written bit";
}

void FlipFlopTask::generate(Rng& rng, int length, int32_t* tokens) const {
  require_length(length);
  const auto random_bit = [&rng] { return (rng.next_u32() & 1u) ? kBit1 : kBit0; };
  tokens[0] = kWriteOp;
  tokens[1] = random_bit();
  int32_t reg = tokens[1];
  for (int t = 2; t + 1 < length; t += 2) {
    const double u = rng.uniform();
    if (u < kIgnoreProbability) {
      tokens[t] = kIgnoreOp;
      tokens[t + 1] = random_bit();
    } else if (u < kIgnoreProbability + kWriteProbability) {
      tokens[t] = kWriteOp;
      tokens[t + 1] = reg = random_bit();
    } else {
      tokens[t] = kReadOp;
      tokens[t + 1] = reg;
    }
  }
  tokens[length - 1] = kReadOp;
}

void FlipFlopTask::label(const int32_t* tokens, int length, int32_t* answers,
                         int32_t* latent) const {
  const auto fail = [&](int t, const std::string& allowed) { reject_token(tokens, t, allowed); };
  int32_t reg = -1;  // no write yet
  for (int t = 0; t < length; ++t) {
    const int32_t tok = tokens[t];
    answers[t] = Batch::kIgnore;
    if (t % 2 == 0) {  // instruction slot (1-based odd positions)
      if (t == 0 && tok != kWriteOp) fail(t, "w (a sequence starts with a write)");
      if (!is_instruction(tok)) fail(t, "an instruction w, i or r");
      if (tok == kReadOp) answers[t] = reg == 1 ? kBit1 : kBit0;
    } else {  // bit slot
      if (!is_bit(tok)) fail(t, "a bit 0 or 1");
      const int32_t bit = tok == kBit1 ? 1 : 0;
      if (tokens[t - 1] == kWriteOp) reg = bit;
      if (tokens[t - 1] == kReadOp && bit != reg)
        fail(t, std::string("the bit read after r, the last written bit ") + (reg ? "1" : "0"));
    }
    latent[t] = reg;
  }
  if (length < 1 || tokens[length - 1] != kReadOp)
    throw ConfigError("flip_flop: the input must end with a read instruction r, whose bit is the "
                      "answer; " +
                      (length < 1 ? std::string("the input is empty")
                                  : "position " + std::to_string(length) + " holds '" +
                                        decode(tokens + length - 1, 1) + "'"));
}

std::unique_ptr<Task> make_flip_flop_task() { return std::make_unique<FlipFlopTask>(); }

}  // namespace statelab
