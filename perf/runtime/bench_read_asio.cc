// Boost.Asio with io_uring as its only backend. These macros must be seen
// before any Asio header, and only this translation unit includes Asio, so
// no other object file can disagree with them.
#define BOOST_ASIO_HAS_IO_URING 1
#define BOOST_ASIO_DISABLE_EPOLL 1

#include "perf/runtime/bench_read_asio.h"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/random_access_file.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <exception>
#include <memory>
#include <stdexcept>
#include <vector>

namespace coblk::perf {

namespace {

namespace asio = boost::asio;

struct AsioReadState {
  const ReadWorkload* workload;
  std::uint64_t total;
  std::uint64_t next = 0;
  std::uint64_t short_reads = 0;
};

asio::awaitable<void> read_loop(asio::random_access_file& file, AsioReadState& state, char* buffer) {
  while (state.next < state.total) {
    const std::uint64_t offset = state.workload->offset(state.next++);
    const std::size_t n =
        co_await file.async_read_some_at(offset, asio::buffer(buffer, ReadWorkload::block_size), asio::use_awaitable);
    if (n != ReadWorkload::block_size) {
      ++state.short_reads;
    }
  }
}

}  // namespace

double asio_random_reads(const ReadWorkload& workload, unsigned depth, std::uint64_t total) {
  // Concurrency hint 1: one thread runs this context, the usual setting
  // for a thread-per-core Asio server.
  asio::io_context context(1);
  asio::random_access_file file(context, workload.path(), asio::random_access_file::read_only);
  std::vector<char> buffers(static_cast<std::size_t>(depth) * ReadWorkload::block_size);
  AsioReadState state{&workload, total};
  for (unsigned i = 0; i < depth; ++i) {
    asio::co_spawn(context, read_loop(file, state, buffers.data() + i * ReadWorkload::block_size),
                   [&state](const std::exception_ptr& error) {
                     if (error) {
                       ++state.short_reads;  // counted as a failure below
                     }
                   });
  }
  const auto start = std::chrono::steady_clock::now();
  context.run();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (state.short_reads != 0 || state.next != total) {
    throw std::runtime_error("asio: a read failed or came back short");
  }
  return static_cast<double>(total) / seconds;
}

}  // namespace coblk::perf
