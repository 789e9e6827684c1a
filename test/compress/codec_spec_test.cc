// parse_codec_spec, CodecSpec::name and make_codec's level checks.
#include <boost/test/unit_test.hpp>

#include <cerrno>
#include <string>

#include "coblk/compress/codec.h"

BOOST_AUTO_TEST_SUITE(compress_codec_spec_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using compress::Algorithm;
using compress::CodecSpec;
using compress::parse_codec_spec;

BOOST_AUTO_TEST_CASE(plain_algorithm_names_parse_to_their_default_levels) {
  BOOST_TEST((parse_codec_spec("lz4").value() == CodecSpec{Algorithm::lz4, 1}));
  BOOST_TEST((parse_codec_spec("zstd").value() == CodecSpec{Algorithm::zstd, 0}));
}

BOOST_AUTO_TEST_CASE(levels_after_a_colon_are_parsed_including_negative_zstd_levels) {
  BOOST_TEST((parse_codec_spec("lz4:8").value() == CodecSpec{Algorithm::lz4, 8}));
  BOOST_TEST((parse_codec_spec("lz4:65537").value() == CodecSpec{Algorithm::lz4, 65537}));
  BOOST_TEST((parse_codec_spec("zstd:-5").value() == CodecSpec{Algorithm::zstd, -5}));
  BOOST_TEST((parse_codec_spec("zstd:19").value() == CodecSpec{Algorithm::zstd, 19}));
  BOOST_TEST((parse_codec_spec("zstd:22").value() == CodecSpec{Algorithm::zstd, 22}));
  BOOST_TEST((parse_codec_spec("zstd:0").value() == CodecSpec{Algorithm::zstd, 0}));
}

BOOST_AUTO_TEST_CASE(names_are_canonical_and_parse_back_to_the_same_spec) {
  BOOST_TEST(CodecSpec{}.name() == "lz4");
  BOOST_TEST((CodecSpec{Algorithm::lz4, 8}.name()) == "lz4:8");
  BOOST_TEST((CodecSpec{Algorithm::zstd, 0}.name()) == "zstd");
  BOOST_TEST((CodecSpec{Algorithm::zstd, -5}.name()) == "zstd:-5");
  for (const char* text : {"lz4", "lz4:2", "lz4:1000", "zstd", "zstd:1", "zstd:-1", "zstd:-50", "zstd:22"}) {
    BOOST_TEST_CONTEXT(text) {
      const auto spec = parse_codec_spec(text);
      BOOST_TEST_REQUIRE(spec.ok());
      BOOST_TEST(spec->name() == text);
    }
  }
}

BOOST_AUTO_TEST_CASE(bad_specs_are_rejected_with_a_one_line_error_naming_the_input) {
  for (const char* text : {"",         "gzip",    "LZ4",          " lz4",
                           "lz4 ",     "lz4:",    "lz4:0",        "lz4:-1",
                           "lz4:x",    "lz4:8x",  "lz4:65538",    "lz4:99999999999",
                           "lz4:8:9",  "zstd:",   "zstd:99",      "zstd:23",
                           "zstd:1.5", "zstd:+3", "zstd:-999999", "zstd:fast",
                           ":3"}) {
    BOOST_TEST_CONTEXT("'" << text << "'") {
      const auto spec = parse_codec_spec(text);
      BOOST_TEST_REQUIRE(!spec.ok());
      BOOST_TEST(spec.error().code() == EINVAL);
      const std::string& error = spec.error().message();
      BOOST_TEST(!error.empty());
      BOOST_TEST(error.find('\n') == std::string::npos);
      BOOST_TEST(error.find("'" + std::string(text) + "'") != std::string::npos);
    }
  }
}

// Found by test/fuzz (fuzz_codec_spec): the text was quoted as typed, so a
// newline in it split the message in two.
BOOST_AUTO_TEST_CASE(a_rejection_stays_one_line_whatever_the_text_holds) {
  for (const std::string_view text : {"lz4\n", "llzll\n", "zstd:\r1", "\x1b[31m"}) {
    BOOST_TEST_CONTEXT(text.size() << " bytes") {
      const auto spec = parse_codec_spec(text);
      BOOST_TEST_REQUIRE(!spec.ok());
      BOOST_TEST(spec.error().message().find_first_of("\n\r\x1b") == std::string::npos, spec.error().message());
    }
  }
  BOOST_TEST(parse_codec_spec("lz4\n").error().message().starts_with("bad codec 'lz4\\x0a': "));
}

BOOST_AUTO_TEST_CASE(make_codec_refuses_levels_out_of_range) {
  for (const CodecSpec spec : {CodecSpec{Algorithm::lz4, 0}, CodecSpec{Algorithm::lz4, 65538},
                               CodecSpec{Algorithm::zstd, 99}, CodecSpec{static_cast<Algorithm>(7), 1}}) {
    BOOST_TEST_CONTEXT(spec.name()) {
      const auto codec = compress::make_codec(spec);
      BOOST_TEST_REQUIRE(!codec.ok());
      BOOST_TEST(codec.error().code() == EINVAL);
      BOOST_TEST(codec.error().message().find(spec.name()) != std::string::npos);
      BOOST_TEST(codec.error().message().find('\n') == std::string::npos);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_codec_reports_the_spec_it_was_made_from) {
  for (const CodecSpec spec : {CodecSpec{Algorithm::lz4, 1}, CodecSpec{Algorithm::lz4, 17},
                               CodecSpec{Algorithm::zstd, 0}, CodecSpec{Algorithm::zstd, -7}}) {
    BOOST_TEST_CONTEXT(spec.name()) { BOOST_TEST((compress::make_codec(spec).value()->spec() == spec)); }
  }
}

BOOST_AUTO_TEST_SUITE_END()  // compress_codec_spec_test
