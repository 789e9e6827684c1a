#include "perf/compress/corpus.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "coblk/compress/same_fill.h"

namespace coblk::compress::bench {
namespace {

namespace fs = std::filesystem;

// Regular files under `root`, recursively, sorted; at most `limit` of them so
// a huge /usr/lib does not make start-up slow.
std::vector<fs::path> files_under(const fs::path& root, std::size_t limit) {
  std::vector<fs::path> files;
  std::error_code error;
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, error), end;
  for (; !error && it != end && files.size() < limit; it.increment(error)) {
    std::error_code status_error;
    if (it->is_regular_file(status_error) && !it->is_symlink(status_error) && it->file_size(status_error) >= page_size)
      files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Whole pages of `path`, at most `limit`, skipping same-filled ones.
std::vector<Page> read_pages(const fs::path& path, std::size_t limit) {
  std::vector<Page> pages;
  std::ifstream file(path, std::ios::binary);
  Page page;
  std::uint64_t fill;
  while (pages.size() < limit && file.read(reinterpret_cast<char*>(page.data()), page_size))
    if (!is_same_filled(page, fill)) pages.push_back(page);
  return pages;
}

bool looks_like_text(const Page& page) {
  std::size_t printable = 0;
  for (const std::byte b : page) {
    const auto c = static_cast<unsigned char>(b);
    if (c == 0) return false;
    printable += (c >= 0x20 && c < 0x7f) || c == '\n' || c == '\t' || c == '\r' || c >= 0x80;
  }
  return printable > page_size * 95 / 100;
}

bool has_compressed_suffix(const fs::path& path) {
  const std::string ext = path.extension().string();
  return ext == ".gz" || ext == ".xz" || ext == ".bz2" || ext == ".png" || ext == ".zst" || ext == ".jpg";
}

// Takes pages from `files` round-robin-free but spread: at most
// pages_per_file from each file, in file order, until `count`.
template <class Accept>
Corpus collect(std::string name, const std::vector<fs::path>& files, std::size_t count, std::size_t pages_per_file,
               Accept accept) {
  Corpus corpus{std::move(name), {}};
  for (const fs::path& file : files) {
    if (corpus.pages.size() >= count) break;
    if (!accept(file)) continue;
    for (const Page& page : read_pages(file, pages_per_file))
      if (corpus.pages.size() < count) corpus.pages.push_back(page);
  }
  return corpus;
}

}  // namespace

Corpus binaries_corpus(std::size_t count, std::size_t pages_per_file) {
  std::vector<fs::path> files = files_under("/usr/bin", 4000);
  const std::vector<fs::path> libraries = files_under("/usr/lib", 20000);
  // Interleave so both directories are represented whatever `count` is.
  std::vector<fs::path> mixed;
  for (std::size_t i = 0; i < std::max(files.size(), libraries.size()); ++i) {
    if (i < files.size()) mixed.push_back(files[i]);
    if (i < libraries.size() && libraries[i].string().find(".so") != std::string::npos) mixed.push_back(libraries[i]);
  }
  return collect("binaries", mixed, count, pages_per_file, [](const fs::path&) { return true; });
}

Corpus text_corpus(std::size_t count, std::size_t pages_per_file) {
  return collect("text", files_under("/usr/share", 40000), count, pages_per_file, [](const fs::path& file) {
    if (has_compressed_suffix(file)) return false;
    const std::vector<Page> first = read_pages(file, 1);
    return !first.empty() && looks_like_text(first[0]);
  });
}

Corpus compressed_files_corpus(std::size_t count, std::size_t pages_per_file) {
  return collect("compressed_files", files_under("/usr/share", 40000), count, pages_per_file, has_compressed_suffix);
}

Corpus zeros_corpus(std::size_t count) { return Corpus{"zeros", std::vector<Page>(count, Page{})}; }

Corpus random_corpus(std::size_t count) {
  Corpus corpus{"random", std::vector<Page>(count)};
  std::mt19937_64 generator(12345);
  for (Page& page : corpus.pages)
    for (std::size_t offset = 0; offset < page_size; offset += 8) {
      const std::uint64_t word = generator();
      std::memcpy(page.data() + offset, &word, 8);
    }
  return corpus;
}

Corpus half_compressible_corpus(std::size_t count) {
  Corpus corpus = random_corpus(count);
  corpus.name = "fio_compress50";
  constexpr std::size_t chunk = 512;
  for (Page& page : corpus.pages)
    for (std::size_t offset = 0; offset < page_size; offset += chunk)
      std::memset(page.data() + offset + chunk / 2, 0, chunk / 2);
  return corpus;
}

}  // namespace coblk::compress::bench
