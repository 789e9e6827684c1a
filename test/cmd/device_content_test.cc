// probe_device_content on image files: zeros are blank; a swap area, an
// ext4, a partition table, a btrfs (whose first 64 KiB are zeros) and data
// without any signature are not; the swap area and each file system are
// named. `coblk up` makes swap or a file system only on a blank device.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "coblk/cmd/device_content.h"
#include "test/require_ok.h"

BOOST_AUTO_TEST_SUITE(cmd_device_content_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

namespace {

// A 4 MiB image file of zeros in /tmp, removed at the end.
struct Image {
  std::string path;
  Image() {
    char name[] = "/tmp/coblk-content-XXXXXX";
    const int fd = ::mkstemp(name);
    BOOST_REQUIRE(fd >= 0);
    BOOST_REQUIRE_EQUAL(::ftruncate(fd, 4 << 20), 0);
    ::close(fd);
    path = name;
  }
  ~Image() { ::unlink(path.c_str()); }
  Image(const Image&) = delete;
  Image& operator=(const Image&) = delete;

  void put(off_t at, const std::vector<char>& bytes) const {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    BOOST_REQUIRE(fd >= 0);
    BOOST_REQUIRE_EQUAL(::pwrite(fd, bytes.data(), bytes.size(), at), static_cast<ssize_t>(bytes.size()));
    ::close(fd);
  }
  // Runs `program` on the image (quietly); false if it is missing or fails.
  bool run(const std::string& program) const {
    return std::system((program + " " + path + " >/dev/null 2>&1").c_str()) == 0;
  }
};

std::vector<char> text(const char* s) { return std::vector<char>(s, s + std::char_traits<char>::length(s)); }

cmd::DeviceContent probe(const Image& image) { return test::require_ok(cmd::probe_device_content(image.path)); }

}  // namespace

BOOST_AUTO_TEST_CASE(zeros_are_blank) {
  const Image image;
  const cmd::DeviceContent c = probe(image);
  BOOST_TEST(c.blank());
  BOOST_TEST(c.signature.empty());
}

BOOST_AUTO_TEST_CASE(a_swap_area_is_named_swap_and_is_not_blank) {
  const Image image;
  BOOST_REQUIRE(image.run("mkswap"));
  const cmd::DeviceContent c = probe(image);
  BOOST_TEST(c.signature == "swap");
  BOOST_TEST(!c.blank());
}

BOOST_AUTO_TEST_CASE(an_ext4_file_system_is_named_and_is_not_blank) {
  const Image image;
  BOOST_REQUIRE(image.run("mkfs.ext4 -q -F"));
  const cmd::DeviceContent c = probe(image);
  BOOST_TEST(c.signature == "ext4");
  BOOST_TEST(!c.blank());
}

BOOST_AUTO_TEST_CASE(a_btrfs_whose_first_64_kib_are_zeros_is_not_blank) {
  // btrfs's superblock lies at 64 KiB: its magic there, zeros before it.
  const Image image;
  image.put(65536 + 0x40, text("_BHRfS_M"));
  const cmd::DeviceContent c = probe(image);
  BOOST_TEST(c.starts_with_zeros);
  BOOST_TEST(c.signature == "btrfs");
  BOOST_TEST(!c.blank());
}

BOOST_AUTO_TEST_CASE(a_partition_table_is_named_and_is_not_blank) {
  // An MBR boot signature with one partition entry (type 0x83).
  const Image image;
  std::vector<char> entry(16, 0);
  entry[4] = static_cast<char>(0x83);
  entry[8] = 8;    // first sector 8 (little-endian)
  entry[12] = 64;  // 64 sectors
  image.put(446, entry);
  image.put(510, {static_cast<char>(0x55), static_cast<char>(0xaa)});
  const cmd::DeviceContent c = probe(image);
  BOOST_TEST(c.signature == "dos");
  BOOST_TEST(!c.blank());
}

BOOST_AUTO_TEST_CASE(data_without_a_signature_is_not_blank) {
  const Image image;
  std::vector<char> noise(4096);
  std::mt19937 rng(7);
  for (char& b : noise) b = static_cast<char>(rng());
  image.put(8192, noise);
  const cmd::DeviceContent c = probe(image);
  BOOST_TEST(c.signature.empty());
  BOOST_TEST(!c.starts_with_zeros);
  BOOST_TEST(!c.blank());
}

BOOST_AUTO_TEST_CASE(a_missing_device_is_a_one_line_error) {
  const std::string m = test::require_error(cmd::probe_device_content("/nonexistent/coblk-device"), ENOENT);
  BOOST_TEST(m.find("/nonexistent/coblk-device") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()  // cmd_device_content_test
