#include "coblk/cmd/ram_expression.h"

#include <cctype>
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

namespace coblk::cmd {
namespace {

// A recursive-descent parser that evaluates as it goes. Depth is bounded
// (kMaxDepth) so that a line of ten thousand '(' is an error, not a stack
// overflow.
class Evaluator {
 public:
  Evaluator(std::string_view text, double ram) : text_(text), ram_(ram) {}

  Result<double> run() {
    const double v = expression();
    if (error_.empty()) {
      skip_space();
      if (pos_ < text_.size()) fail("unexpected '" + std::string(1, text_[pos_]) + "'");
    }
    if (error_.empty() && !std::isfinite(v)) error_ = "the expression's value is not a finite number";
    if (!error_.empty()) return Error(EINVAL, error_);
    return v;
  }

 private:
  static constexpr int kMaxDepth = 64;

  void fail(const std::string& what) {
    if (error_.empty()) error_ = what + " at column " + std::to_string(pos_ + 1);
  }
  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool take(char c) {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  // expression := term (('+' | '-') term)*
  double expression() {
    if (++depth_ > kMaxDepth) {
      fail("expression nested too deeply");
      return 0;
    }
    double v = term();
    while (error_.empty()) {
      if (take('+')) {
        v += term();
      } else if (take('-')) {
        v -= term();
      } else {
        break;
      }
    }
    --depth_;
    return v;
  }

  // term := unary (('*' | '/' | '%') unary)*
  double term() {
    double v = unary();
    while (error_.empty()) {
      if (take('*')) {
        v *= unary();
      } else if (take('/') || take('%')) {
        const bool modulo = text_[pos_ - 1] == '%';
        const size_t at = pos_;
        const double d = unary();
        if (d == 0) {
          pos_ = at;
          fail("division by zero");
          return 0;
        }
        v = modulo ? std::fmod(v, d) : v / d;
      } else {
        break;
      }
    }
    return v;
  }

  // unary := ('-' | '+') unary | power
  double unary() {
    if (++depth_ > kMaxDepth) {
      fail("expression nested too deeply");
      return 0;
    }
    double v = 0;
    if (take('-')) {
      v = -unary();
    } else if (take('+')) {
      v = unary();
    } else {
      v = power();
    }
    --depth_;
    return v;
  }

  // power := primary ('^' unary)?   (right-associative through unary)
  double power() {
    const double base = primary();
    if (error_.empty() && take('^')) return std::pow(base, unary());
    return base;
  }

  // primary := number | name | name '(' args ')' | '(' expression ')'
  double primary() {
    skip_space();
    if (pos_ >= text_.size()) {
      fail("missing a value");
      return 0;
    }
    const char c = text_[pos_];
    if (c == '(') {
      ++pos_;
      const double v = expression();
      if (error_.empty() && !take(')')) fail("missing ')'");
      return v;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') return number();
    if (std::isalpha(static_cast<unsigned char>(c))) return name();
    fail("unexpected '" + std::string(1, c) + "'");
    return 0;
  }

  double number() {
    const size_t start = pos_;
    bool digits = false;
    while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
      ++pos_;
      digits = true;
    }
    if (pos_ < text_.size() && text_[pos_] == '.') {
      ++pos_;
      while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
        ++pos_;
        digits = true;
      }
    }
    if (!digits) {
      pos_ = start;
      fail("malformed number");
      return 0;
    }
    // fasteval reads "4G" as 4e9; here that would be 4e9 MiB. Refuse it.
    if (pos_ < text_.size() && std::isalpha(static_cast<unsigned char>(text_[pos_]))) {
      fail("a unit after a number (the value is in MiB: write 4096, not 4G)");
      return 0;
    }
    return std::strtod(std::string(text_.substr(start, pos_ - start)).c_str(), nullptr);
  }

  double name() {
    const size_t start = pos_;
    while (pos_ < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '_')) ++pos_;
    const std::string word(text_.substr(start, pos_ - start));
    if (word == "ram") return ram_;
    if (word == "e") return std::numbers::e;
    if (word == "pi") return std::numbers::pi;
    skip_space();
    if (pos_ >= text_.size() || text_[pos_] != '(') {
      pos_ = start;
      fail("unknown name '" + word + "' (the variable is 'ram')");
      return 0;
    }
    ++pos_;
    std::vector<double> args;
    if (!take(')')) {
      do {
        args.push_back(expression());
        if (!error_.empty()) return 0;
      } while (take(','));
      if (!take(')')) {
        fail("missing ')' after the arguments of " + word + "()");
        return 0;
      }
    }
    return call(word, args, start);
  }

  double call(const std::string& f, const std::vector<double>& a, size_t at) {
    const auto arity = [&](size_t lo, size_t hi) {
      if (a.size() >= lo && a.size() <= hi) return true;
      pos_ = at;
      fail(f + "() takes " + (lo == hi ? std::to_string(lo) : std::to_string(lo) + " or " + std::to_string(hi)) +
           " argument" + (hi == 1 ? "" : "s") + ", not " + std::to_string(a.size()));
      return false;
    };
    if (f == "min" || f == "max") {
      if (a.empty()) {
        pos_ = at;
        fail(f + "() needs at least one argument");
        return 0;
      }
      double v = a[0];
      for (const double x : a) v = f == "min" ? std::min(v, x) : std::max(v, x);
      return v;
    }
    if (f == "abs" && arity(1, 1)) return std::fabs(a[0]);
    if (f == "floor" && arity(1, 1)) return std::floor(a[0]);
    if (f == "ceil" && arity(1, 1)) return std::ceil(a[0]);
    if (f == "round" && arity(1, 1)) return std::round(a[0]);
    if (f == "int" && arity(1, 1)) return std::trunc(a[0]);
    if (f == "log" && arity(1, 2)) return a.size() == 1 ? std::log10(a[0]) : std::log(a[1]) / std::log(a[0]);
    if (error_.empty()) {
      pos_ = at;
      fail("unknown function '" + f + "()' (min, max, abs, floor, ceil, round, int, log)");
    }
    return 0;
  }

  std::string_view text_;
  double ram_;
  size_t pos_ = 0;
  int depth_ = 0;
  std::string error_;
};

}  // namespace

Result<double> evaluate_ram_expression(std::string_view text, double ram_mib) { return Evaluator(text, ram_mib).run(); }

}  // namespace coblk::cmd
