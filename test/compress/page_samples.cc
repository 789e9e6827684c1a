#include "test/compress/page_samples.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace coblk::compress::testing {
namespace {

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

// Appends the whole pages of `path` to `pages` until it holds `count`.
void append_file_pages(const std::filesystem::path& path, std::size_t count, std::vector<Page>& pages) {
  std::ifstream file(path, std::ios::binary);
  Page page;
  while (pages.size() < count && file.read(reinterpret_cast<char*>(page.data()), page_size)) pages.push_back(page);
}

// Regular files under `directory` (not recursive), sorted so runs repeat.
std::vector<std::filesystem::path> files_in(const std::filesystem::path& directory) {
  std::vector<std::filesystem::path> files;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(directory, error))
    if (entry.is_regular_file(error) && !entry.is_symlink(error)) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

Page zero_page() { return Page{}; }

Page repeated_word_page(std::uint64_t word) {
  Page page;
  for (std::size_t offset = 0; offset < page_size; offset += sizeof word)
    std::memcpy(page.data() + offset, &word, sizeof word);
  return page;
}

Page repeated_text_page(const std::string& pattern) {
  Page page;
  for (std::size_t i = 0; i < page_size; ++i) page[i] = static_cast<std::byte>(pattern[i % pattern.size()]);
  return page;
}

Page random_page(std::uint64_t seed) {
  Page page;
  for (std::size_t offset = 0; offset < page_size; offset += 8) {
    const std::uint64_t word = splitmix64(seed);
    std::memcpy(page.data() + offset, &word, 8);
  }
  return page;
}

std::vector<Page> text_pages(std::size_t count) {
  std::vector<Page> pages;
  for (const auto& file : files_in("/usr/share/common-licenses")) append_file_pages(file, count, pages);
  if (pages.size() < count) {
    // Generated English-like text: words drawn from a small vocabulary.
    static const char* const words[] = {"the ",  "page ",   "is ",    "stored ", "compressed ",
                                        "in ",   "memory ", "and ",   "read ",   "back ",
                                        "when ", "a ",      "block ", "device ", "asks. "};
    std::uint64_t seed = 42;
    std::string text;
    while (pages.size() < count) {
      while (text.size() < page_size) text += words[splitmix64(seed) % std::size(words)];
      Page page;
      std::memcpy(page.data(), text.data(), page_size);
      text.erase(0, page_size);
      pages.push_back(page);
    }
  }
  return pages;
}

std::vector<Page> binary_pages(std::size_t count) {
  std::vector<Page> pages;
  append_file_pages("/proc/self/exe", count / 2, pages);
  for (const auto& file : files_in("/usr/bin")) {
    if (pages.size() >= count) break;
    // A few pages from each of many files rather than all of one.
    std::vector<Page> from_file;
    append_file_pages(file, 8, from_file);
    for (const Page& page : from_file)
      if (pages.size() < count) pages.push_back(page);
  }
  return pages;
}

}  // namespace coblk::compress::testing
