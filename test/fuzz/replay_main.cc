// test/fuzz/replay_main.cc - main() that runs a fuzz harness once over given input files, without libFuzzer.
//
// The g++ sanitizer builds (COBLK_SANITIZE set, COBLK_FUZZ off) link each
// harness with this file instead of -fsanitize=fuzzer, so scripts/test-all
// replays every corpus in the ASan + UBSan build it already has, rather
// than building the layers a second time with clang just to run each
// checked-in input once. Fuzzing for real still needs libFuzzer: see
// test/fuzz/run-fuzzers.
//
// Like a libFuzzer binary given files, it feeds each file to
// LLVMFuzzerTestOneInput once, in order; a harness reports a broken
// property by aborting (test/fuzz/check.h), which fails the test.
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s INPUT...\n", argv[0]);
    return 2;
  }
  for (int i = 1; i < argc; ++i) {
    std::ifstream in(argv[i], std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "%s: cannot open %s: %s\n", argv[0], argv[i], std::strerror(errno));
      return 1;
    }
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // A copy of exactly the input's size on the heap, as libFuzzer passes
    // it: ASan then catches a read one byte past the end. new[] of 0 bytes
    // still gives a valid pointer, as libFuzzer's empty input does.
    const std::unique_ptr<uint8_t[]> data(new uint8_t[bytes.size()]);
    std::memcpy(data.get(), bytes.data(), bytes.size());
    (void)LLVMFuzzerTestOneInput(data.get(), bytes.size());
  }
  std::printf("%s: ran %d input(s)\n", argv[0], argc - 1);
  return 0;
}
