// Generators and automata of the regular tasks. `label` runs the task's automaton left to
// right, so running answers and latents cost one pass; chance() is computed exactly by pushing
// the generator's distribution through the same automaton rather than estimated by sampling.
// Checked in tests/tasks/test_regular.cpp against independent evaluators (pair counting,
// step simulation, a recursive-descent parser of the decoded expression).
#include "tasks/regular.hpp"

#include <algorithm>
#include <array>

#include "kernels/error.hpp"

namespace statelab {

namespace {

int mod(int x, int m) { return ((x % m) + m) % m; }

// Best constant answer's accuracy when the final answers of lengths lo..hi (those accepted)
// are mixed uniformly: `distribution(L)` gives P(answer = v) at length L.
template <int K, typename F>
double mixed_chance(const Task& task, int lo, int hi, F distribution) {
  std::array<double, K> mixed{};
  const std::vector<int> lengths = task.lengths_in(lo, hi);
  for (int L : lengths) {
    const std::array<double, K> p = distribution(L);
    for (int v = 0; v < K; ++v) mixed[size_t(v)] += p[size_t(v)] / double(lengths.size());
  }
  return *std::max_element(mixed.begin(), mixed.end());
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Even pairs

EvenPairsTask::EvenPairsTask() : vocab_{{"<pad>", "a", "b", "T", "F"}} {}

std::string EvenPairsTask::definition() const {
  return "symbols a/b uniform; answer at every position: T if the prefix has an even number of "
         "unequal adjacent pairs (ab, ba), i.e. first symbol == current symbol, else F";
}

std::string EvenPairsTask::latent_definition() const {
  return "2*first + current with a=0, b=1 (0: a..a, 1: a..b, 2: b..a, 3: b..b)";
}

void EvenPairsTask::generate(Rng& rng, int length, int32_t* tokens) const {
  require_length(length);
  for (int t = 0; t < length; ++t) tokens[t] = (rng.next_u32() & 1u) ? kB : kA;
}

void EvenPairsTask::label(const int32_t* tokens, int length, int32_t* answers,
                          int32_t* latent) const {
  if (length < 1) throw ConfigError("even_pairs: empty input; expected symbols a and b");
  int first = 0;
  for (int t = 0; t < length; ++t) {
    if (tokens[t] != kA && tokens[t] != kB) reject_token(tokens, t, "a or b");
    const int current = tokens[t] == kB;
    if (t == 0) first = current;
    latent[t] = 2 * first + current;
    answers[t] = first == current ? kTrue : kFalse;
  }
}

// ---------------------------------------------------------------------------------------------
// Cycle navigation

CycleNavigationTask::CycleNavigationTask()
    : vocab_{{"<pad>", "-1", "0", "+1", "p0", "p1", "p2", "p3", "p4"}} {
  // Distribution of the position after L uniform moves, pushed step by step.
  std::vector<std::array<double, kCycle>> after(size_t(kChanceLengthHi) + 1);
  after[0] = {1.0, 0.0, 0.0, 0.0, 0.0};
  for (size_t L = 1; L < after.size(); ++L)
    for (int k = 0; k < kCycle; ++k)
      for (int step = -1; step <= 1; ++step)
        after[L][size_t(mod(k + step, kCycle))] += after[L - 1][size_t(k)] / 3.0;
  chance_ = mixed_chance<kCycle>(*this, kChanceLengthLo, kChanceLengthHi,
                                 [&](int L) { return after[size_t(L)]; });
}

std::string CycleNavigationTask::definition() const {
  return "moves -1/0/+1 uniform on a cycle of 5 starting at p0; answer at every position: the "
         "current position p0..p4";
}

std::string CycleNavigationTask::latent_definition() const {
  return "position on the cycle after the prefix (0..4)";
}

std::vector<int32_t> CycleNavigationTask::answer_tokens() const {
  std::vector<int32_t> ids;
  for (int k = 0; k < kCycle; ++k) ids.push_back(kPosition0 + k);
  return ids;
}

void CycleNavigationTask::generate(Rng& rng, int length, int32_t* tokens) const {
  require_length(length);
  for (int t = 0; t < length; ++t) tokens[t] = kLeft + int32_t(rng.uniform_int(0, 2));
}

void CycleNavigationTask::label(const int32_t* tokens, int length, int32_t* answers,
                                int32_t* latent) const {
  if (length < 1) throw ConfigError("cycle_navigation: empty input; expected moves -1 0 +1");
  int position = 0;
  for (int t = 0; t < length; ++t) {
    if (tokens[t] < kLeft || tokens[t] > kRight) reject_token(tokens, t, "a move -1, 0 or +1");
    position = mod(position + (tokens[t] - kStay), kCycle);
    latent[t] = position;
    answers[t] = kPosition0 + position;
  }
}

// ---------------------------------------------------------------------------------------------
// Modular arithmetic without brackets
//
// The left-to-right evaluator keeps (s, m): s the sum of the finished terms, m the current
// term's signed product after a digit, or after an operator the factor the next digit is
// multiplied by. The value so far is s + m after a digit; (s, m) together are the state (the
// value alone is not: "3" and "1 + 2" agree but differ after "* 2").

ModularArithmeticTask::ModularArithmeticTask()
    : vocab_{{"<pad>", "0", "1", "2", "3", "4", "+", "-", "*", "="}} {
  constexpr int M = kModulus;
  // P(s, m) after the k-th digit, for expressions of k digits (input length 2k).
  std::array<double, M * M> state{};
  for (int d = 0; d < M; ++d) state[size_t(d)] = 1.0 / M;  // s = 0, m = d
  std::vector<std::array<double, M>> value_after(size_t(kChanceLengthHi) / 2 + 1);
  for (size_t k = 1; k < value_after.size(); ++k) {
    if (k > 1) {
      std::array<double, M * M> next{};
      for (int s = 0; s < M; ++s)
        for (int m = 0; m < M; ++m)
          for (int d = 0; d < M; ++d) {
            const double p = state[size_t(M * s + m)] / (3.0 * M);
            next[size_t(M * mod(s + m, M) + d)] += p;          // + d
            next[size_t(M * mod(s + m, M) + mod(-d, M))] += p;  // - d
            next[size_t(M * s + mod(m * d, M))] += p;          // * d
          }
      state = next;
    }
    value_after[k] = {};
    for (int s = 0; s < M; ++s)
      for (int m = 0; m < M; ++m) value_after[k][size_t(mod(s + m, M))] += state[size_t(M * s + m)];
  }
  chance_ = mixed_chance<M>(*this, kChanceLengthLo, kChanceLengthHi,
                            [&](int L) { return value_after[size_t(L / 2)]; });
}

std::string ModularArithmeticTask::definition() const {
  return "d op d ... op d = with digits 0-4 and + - * uniform (* binds tighter), mod 5; answer "
         "after every digit and at '=': the value of the expression so far, as a digit";
}

std::string ModularArithmeticTask::latent_definition() const {
  return "5*s + m: s = finished terms' sum mod 5; m = after a digit the current term's signed "
         "product (value = s + m), after an operator the next digit's factor (1 after +, 4 "
         "after -, the term so far after *); at '=' 5*value";
}

std::vector<int32_t> ModularArithmeticTask::answer_tokens() const {
  std::vector<int32_t> ids;
  for (int d = 0; d < kModulus; ++d) ids.push_back(kDigit0 + d);
  return ids;
}

void ModularArithmeticTask::generate(Rng& rng, int length, int32_t* tokens) const {
  require_length(length);
  for (int t = 0; t + 1 < length; ++t)
    tokens[t] = t % 2 == 0 ? kDigit0 + int32_t(rng.uniform_int(0, kModulus - 1))
                           : kPlus + int32_t(rng.uniform_int(0, 2));
  tokens[length - 1] = kEquals;
}

void ModularArithmeticTask::label(const int32_t* tokens, int length, int32_t* answers,
                                  int32_t* latent) const {
  constexpr int M = kModulus;
  if (length < 1)
    throw ConfigError("modular_arithmetic: empty input; expected d op d ... op d =");
  int s = 0, m = 1;
  for (int t = 0; t < length; ++t) {
    const int32_t tok = tokens[t];
    const bool last = t == length - 1;
    if (t % 2 == 0) {
      if (tok < kDigit0 || tok >= kDigit0 + M)
        reject_token(tokens, t, "a digit 0-4 (digits and operators alternate, from a digit)");
      if (last)
        reject_token(tokens, t, "'=' after the last digit; the input ends without one (inputs have even length)");
      m = mod(m * (tok - kDigit0), M);
      answers[t] = kDigit0 + mod(s + m, M);
      latent[t] = M * s + m;
    } else if (last) {
      if (tok != kEquals) reject_token(tokens, t, "'=' as the last token");
      s = mod(s + m, M);
      m = 0;
      answers[t] = kDigit0 + s;
      latent[t] = M * s;
    } else {
      if (tok == kPlus || tok == kMinus) {
        s = mod(s + m, M);
        m = tok == kPlus ? 1 : M - 1;
      } else if (tok != kTimes) {
        reject_token(tokens, t, "an operator + - * ('=' only as the last token)");
      }  // '*': the term so far becomes the next digit's factor, m unchanged
      answers[t] = Batch::kIgnore;
      latent[t] = M * s + m;
    }
  }
}

// ---------------------------------------------------------------------------------------------

std::unique_ptr<Task> make_even_pairs_task() { return std::make_unique<EvenPairsTask>(); }
std::unique_ptr<Task> make_cycle_navigation_task() {
  return std::make_unique<CycleNavigationTask>();
}
std::unique_ptr<Task> make_modular_arithmetic_task() {
  return std::make_unique<ModularArithmeticTask>();
}

}  // namespace statelab
