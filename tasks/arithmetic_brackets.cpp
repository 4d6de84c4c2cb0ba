// The bracketed-arithmetic generator and its parser. Both keep their own stacks instead of
// recursing, so a length-100000 input (nesting up to ~n/4) costs memory, not the call stack;
// the price is a hand-written state machine where a recursive parser would read more plainly.
// chance() pushes the generator's length split through the value distribution exactly.
#include "tasks/arithmetic_brackets.hpp"

#include <algorithm>
#include <array>

#include "kernels/error.hpp"

namespace statelab {

namespace {

constexpr int M = ModularArithmeticBracketsTask::kModulus;

int mod(int x) { return ((x % M) + M) % M; }

int apply(int left, int32_t op, int right) {
  switch (op) {
    case ModularArithmeticBracketsTask::kPlus: return mod(left + right);
    case ModularArithmeticBracketsTask::kMinus: return mod(left - right);
    default: return mod(left * right);
  }
}

}  // namespace

ModularArithmeticBracketsTask::ModularArithmeticBracketsTask()
    : vocab_{{"<pad>", "0", "1", "2", "3", "4", "+", "-", "*", "(", ")", "="}} {
  // value[n][v] = P(an n-token expression from the generator has value v).
  const int longest = kChanceLengthHi - 1;
  std::vector<std::array<double, M>> value(size_t(longest) + 1);
  for (int n = 1; n <= std::min(4, longest); ++n) value[size_t(n)].fill(1.0 / M);  // +-d, (d)
  for (int n = 5; n <= longest; ++n) {
    value[size_t(n)] = {};
    for (int left = 1; left <= n - 4; ++left) {
      const auto& a = value[size_t(left)];
      const auto& b = value[size_t(n - left - 3)];
      const double weight = 1.0 / (3.0 * (n - 4));
      for (int x = 0; x < M; ++x)
        for (int y = 0; y < M; ++y)
          for (int32_t op : {kPlus, kMinus, kTimes})
            value[size_t(n)][size_t(apply(x, op, y))] += weight * a[size_t(x)] * b[size_t(y)];
    }
  }
  std::array<double, M> mixed{};
  const std::vector<int> lengths = lengths_in(kChanceLengthLo, kChanceLengthHi);
  for (int L : lengths)
    for (int v = 0; v < M; ++v)
      mixed[size_t(v)] += value[size_t(L - 1)][size_t(v)] / double(lengths.size());
  chance_ = *std::max_element(mixed.begin(), mixed.end());
}

std::string ModularArithmeticBracketsTask::definition() const {
  return "a fully bracketed expression of length-1 tokens over digits 0-4, unary - on digits and "
         "+ - * (Chomsky generator), then '='; answer at '=': its value mod 5, as a digit";
}

std::string ModularArithmeticBracketsTask::latent_definition() const {
  return "bracket depth after the token (open '(' not yet closed)";
}

std::vector<int32_t> ModularArithmeticBracketsTask::answer_tokens() const {
  std::vector<int32_t> ids;
  for (int d = 0; d < M; ++d) ids.push_back(kDigit0 + d);
  return ids;
}

void ModularArithmeticBracketsTask::generate(Rng& rng, int length, int32_t* tokens) const {
  require_length(length);
  struct Span {
    int start, n;
  };
  // Each span is filled in place: its bracket and operator positions are known once the left
  // length is drawn, so the children can be expanded in any order (left first here).
  std::vector<Span> todo{{0, length - 1}};
  while (!todo.empty()) {
    const Span span = todo.back();
    todo.pop_back();
    int32_t* out = tokens + span.start;
    if (span.n <= 4) {
      const int32_t digit = kDigit0 + int32_t(rng.uniform_int(0, M - 1));
      switch (span.n) {
        case 1: out[0] = digit; break;
        case 2: out[0] = kMinus, out[1] = digit; break;
        case 3: out[0] = kOpen, out[1] = digit, out[2] = kClose; break;
        default: out[0] = kOpen, out[1] = kMinus, out[2] = digit, out[3] = kClose; break;
      }
      continue;
    }
    const int left = int(rng.uniform_int(1, span.n - 4));
    const int right = span.n - left - 3;
    out[0] = kOpen;
    out[1 + left] = kPlus + int32_t(rng.uniform_int(0, 2));
    out[span.n - 1] = kClose;
    todo.push_back({span.start + 2 + left, right});
    todo.push_back({span.start + 1, left});
  }
  tokens[length - 1] = kEquals;
}

void ModularArithmeticBracketsTask::label(const int32_t* tokens, int length, int32_t* answers,
                                          int32_t* latent) const {
  if (length < 1)
    throw ConfigError(name() + ": empty input; expected an expression followed by '='");
  // What the parser accepts next.
  enum class Want { expr, negated_digit, close_or_op, close, equals, end };
  struct Open {
    int position;            // of its '('
    int left = 0;            // value of the first operand
    bool left_bare = false;  // first operand was d or - d, so ')' may follow it directly
    int32_t op = 0;          // 0 until the operator is read
    int value = 0;           // value of "left op right" once the right operand is read
  };
  std::vector<Open> open;
  Want want = Want::expr;
  int result = 0;

  auto expected = [&]() -> std::string {
    const std::string unclosed =
        open.empty() ? "" : " (the '(' at position " + std::to_string(open.back().position + 1) +
                                " is open)";
    switch (want) {
      case Want::expr: return "a digit 0-4, '-' or '('" + unclosed;
      case Want::negated_digit: return "a digit 0-4 after the unary '-', which negates digits only";
      case Want::close_or_op:
        return open.back().left_bare
                   ? "an operator + - * or ')'" + unclosed
                   : "an operator + - *: brackets hold 'x op y', a digit or '- d', never a lone "
                     "bracketed expression" + unclosed;
      case Want::close: return "')'" + unclosed;
      case Want::equals: return "'=' after the complete expression";
      default: return "nothing after '=', the last token";
    }
  };
  // An operand (or the whole expression) of value v has been read.
  auto complete = [&](int v, bool bare) {
    if (open.empty()) {
      result = v;
      want = Want::equals;
    } else if (open.back().op == 0) {
      open.back().left = v;
      open.back().left_bare = bare;
      want = Want::close_or_op;
    } else {
      open.back().value = apply(open.back().left, open.back().op, v);
      want = Want::close;
    }
  };

  for (int t = 0; t < length; ++t) {
    const int32_t tok = tokens[t];
    const bool digit = tok >= kDigit0 && tok < kDigit0 + M;
    answers[t] = Batch::kIgnore;
    switch (want) {
      case Want::expr:
        if (digit) {
          complete(tok - kDigit0, true);
        } else if (tok == kMinus) {
          want = Want::negated_digit;
        } else if (tok == kOpen) {
          open.push_back(Open{t});
        } else {
          reject_token(tokens, t, expected());
        }
        break;
      case Want::negated_digit:
        if (!digit) reject_token(tokens, t, expected());
        complete(mod(-(tok - kDigit0)), true);
        break;
      case Want::close_or_op:
        if (tok == kPlus || tok == kMinus || tok == kTimes) {
          open.back().op = tok;
          want = Want::expr;
        } else if (tok == kClose && open.back().left_bare) {
          const int v = open.back().left;
          open.pop_back();
          complete(v, false);
        } else {
          reject_token(tokens, t, expected());
        }
        break;
      case Want::close:
        if (tok != kClose) reject_token(tokens, t, expected());
        {
          const int v = open.back().value;
          open.pop_back();
          complete(v, false);
        }
        break;
      case Want::equals:
        if (tok != kEquals) reject_token(tokens, t, expected());
        want = Want::end;
        answers[t] = kDigit0 + result;
        break;
      case Want::end:
        reject_token(tokens, t, expected());
    }
    latent[t] = int32_t(open.size());
  }
  if (want != Want::end)
    throw ConfigError(name() + ": the input ends unfinished at position " +
                      std::to_string(length) + " ('" + decode(tokens + length - 1, 1) +
                      "'); expected next " + expected());
}

std::unique_ptr<Task> make_modular_arithmetic_brackets_task() {
  return std::make_unique<ModularArithmeticBracketsTask>();
}

}  // namespace statelab
