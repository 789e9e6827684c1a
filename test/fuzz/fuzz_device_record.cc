// Fuzzes cmd/device_record.h: the reader of /run/coblk/ID.json records.
//
// The first byte picks the mode:
//   - even: the rest is a file's text. parse_flat_json and record_from_json
//     must return a value or nullopt, never crash; a record that is read
//     must write (to_json) and read back equal to itself.
//   - odd: the rest is a DeviceRecord (any field values, strings with any
//     bytes, 0..8 args). to_json then record_from_json must give back an
//     equal record; with bit 1 set the record also goes through the real
//     files, save_record then load_record, in a private run directory.
#include <fuzzer/FuzzedDataProvider.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "coblk/cmd/device_record.h"
#include "test/fuzz/check.h"

using coblk::cmd::DeviceRecord;

namespace {

std::string describe(const DeviceRecord& r) { return coblk::cmd::to_json(r); }

bool equal(const DeviceRecord& a, const DeviceRecord& b) {
  return a.dev_id == b.dev_id && a.target == b.target && a.data_path == b.data_path && a.size_bytes == b.size_bytes &&
         a.block_size == b.block_size && a.queues == b.queues && a.depth == b.depth && a.pid == b.pid &&
         a.backing == b.backing && a.compression == b.compression && a.args == b.args && a.warnings == b.warnings;
}

DeviceRecord record_from(FuzzedDataProvider& in) {
  DeviceRecord r;
  r.dev_id = in.ConsumeIntegral<uint32_t>();
  r.target = in.ConsumeRandomLengthString(32);
  r.data_path = in.ConsumeRandomLengthString(32);
  r.size_bytes = in.ConsumeIntegral<uint64_t>();
  r.block_size = in.ConsumeIntegral<uint32_t>();
  r.queues = in.ConsumeIntegral<unsigned>();
  r.depth = in.ConsumeIntegral<unsigned>();
  r.pid = in.ConsumeIntegral<pid_t>();
  r.backing = in.ConsumeRandomLengthString(64);
  r.compression = in.ConsumeRandomLengthString(16);
  const size_t args = in.ConsumeIntegralInRange<size_t>(0, 8);
  for (size_t i = 0; i < args; ++i) r.args.push_back(in.ConsumeRandomLengthString(24));
  const size_t warnings = in.ConsumeIntegralInRange<size_t>(0, 3);
  for (size_t i = 0; i < warnings; ++i) r.warnings.push_back(in.ConsumeRandomLengthString(48));
  return r;
}

// A private run directory, made on first use and removed at exit.
const std::string& run_directory() {
  static const std::string dir = [] {
    char tmpl[] = "/tmp/coblk-fuzz-record-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) coblk::fuzz::fail(__FILE__, __LINE__, "mkdtemp failed");
    ::setenv("COBLK_RUN_DIR", tmpl, 1);
    std::atexit([] { ::rmdir(std::getenv("COBLK_RUN_DIR")); });
    return std::string(tmpl);
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  if ((mode & 1) == 0) {
    const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
    const auto flat = coblk::cmd::parse_flat_json(text);
    const auto record = coblk::cmd::record_from_json(text);
    COBLK_FUZZ_CHECK(flat || !record, "a record from text that is not a flat JSON object");
    if (record) {
      const auto again = coblk::cmd::record_from_json(coblk::cmd::to_json(*record));
      COBLK_FUZZ_CHECK(again && equal(*again, *record),
                       "a record read from text does not survive a rewrite: " + describe(*record) + " came back as " +
                           (again ? describe(*again) : std::string("nothing")));
    }
    return 0;
  }

  FuzzedDataProvider in(data + 1, size - 1);
  const DeviceRecord record = record_from(in);
  const std::string json = coblk::cmd::to_json(record);
  COBLK_FUZZ_CHECK(coblk::cmd::parse_flat_json(json).has_value(),
                   "to_json wrote what parse_flat_json refuses: " + json);
  const auto back = coblk::cmd::record_from_json(json);
  COBLK_FUZZ_CHECK(back && equal(*back, record),
                   "written " + json + " read back as " + (back ? describe(*back) : std::string("nothing")));
  if ((mode & 2) != 0) {
    (void)run_directory();
    COBLK_FUZZ_CHECK(coblk::cmd::save_record(record).ok(), "save_record failed");
    const auto loaded = coblk::cmd::load_record(record.dev_id);
    coblk::cmd::remove_record(record.dev_id);
    COBLK_FUZZ_CHECK(loaded && equal(*loaded, record),
                     "saved " + json + " loaded as " + (loaded ? describe(*loaded) : std::string("nothing")));
  }
  return 0;
}
