// re2size prints "pattern<TAB>ProgramSize" for every line of standard input.
//
// Each line is compiled exactly the way Envoy compiles a google_re2 regex
// (source/common/common/regex.cc: re2::RE2(regex, re2::RE2::Quiet)) and the
// value Envoy compares against re2.max_program_size.error_level
// (re2::RE2::ProgramSize()) is printed. A pattern RE2 rejects is printed as
// "pattern<TAB>error<TAB>message".
//
// Input lines are taken literally (no unescaping); a trailing '\r' is kept
// as part of the pattern, so feed it Unix line endings.
//
// See README.md for how to build it. Source only: never commit a binary.
#include <iostream>
#include <string>

#include <re2/re2.h>

int main() {
  std::string line;
  while (std::getline(std::cin, line)) {
    re2::RE2 re(line, re2::RE2::Quiet);
    if (!re.ok()) {
      std::cout << line << "\terror\t" << re.error() << "\n";
      continue;
    }
    std::cout << line << "\t" << re.ProgramSize() << "\n";
  }
  return 0;
}
