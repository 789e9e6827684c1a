#include "coblk/ublk/control.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "coblk/runtime/io.h"

namespace coblk::ublk {
namespace {

// The kernel reads the command from the second half of a 128-byte SQE.
constexpr size_t kCommandArea = 80;
static_assert(sizeof(abi::ublksrv_ctrl_cmd) <= kCommandArea);

// Commands that address no queue carry queue_id = -1 as a u16.
constexpr uint16_t kNoQueue = 0xffff;

}  // namespace

std::string char_device_path(uint32_t dev_id) { return "/dev/ublkc" + std::to_string(dev_id); }
std::string block_device_path(uint32_t dev_id) { return "/dev/ublkb" + std::to_string(dev_id); }

ControlDevice::~ControlDevice() { close(); }

int ControlDevice::open(const char* path) {
  close();
  fd_ = ::open(path, O_RDWR | O_CLOEXEC);
  if (fd_ < 0) return -errno;
  // Control commands are strictly one at a time; a handful of entries is plenty.
  const int ret = io_uring_queue_init(4, &ring_, IORING_SETUP_SQE128);
  if (ret < 0) {
    close();
    return ret;
  }
  ring_ready_ = true;

  // Probe with the ioctl-encoded GET_FEATURES (it has no legacy form). Kernels
  // before 6.5 answer -EINVAL or -EOPNOTSUPP; they understand the legacy codes.
  ioctl_encoded_ = true;
  uint64_t features = 0;
  const int probe = get_features(features);
  if (probe == 0) {
    features_ = features;
    features_known_ = true;
    ioctl_encoded_ = (features & abi::F_CMD_IOCTL_ENCODE) != 0;
  } else if (probe == -EINVAL || probe == -EOPNOTSUPP || probe == -ENOTTY) {
    features_ = 0;
    features_known_ = false;
    ioctl_encoded_ = false;
  } else {
    close();
    return probe;
  }
  return 0;
}

void ControlDevice::close() {
  if (ring_ready_) io_uring_queue_exit(&ring_);
  ring_ready_ = false;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  features_ = 0;
  features_known_ = false;
  ioctl_encoded_ = false;
}

int ControlDevice::prepare(uint32_t encoded, uint32_t legacy, uint32_t dev_id, void* buf, uint32_t len, uint64_t data,
                           bool with_path, std::vector<char>& staging, uint16_t& path_len) {
  if (!ring_ready_) return -EBADF;
  uint32_t op = encoded;
  if (!ioctl_encoded_) {
    if (legacy == 0) return -EOPNOTSUPP;  // the command is newer than this kernel
    op = legacy;
  }

  abi::ublksrv_ctrl_cmd cmd{};
  cmd.dev_id = dev_id;
  cmd.queue_id = kNoQueue;
  cmd.data[0] = data;

  // Commands on unprivileged devices (and GET_DEV_INFO2) carry the char
  // node's path in front of their buffer; the kernel checks our permission
  // on that node, then skips the path. Control commands are rare, so the
  // staging buffer may come from the heap.
  staging.clear();
  path_len = 0;
  if (with_path) {
    const std::string path = char_device_path(dev_id);
    path_len = static_cast<uint16_t>(path.size() + 1);  // the kernel wants the NUL counted
    staging.resize(path_len + len);
    std::memcpy(staging.data(), path.c_str(), path_len);
    if (len != 0) std::memcpy(staging.data() + path_len, buf, len);
    cmd.dev_path_len = path_len;
    cmd.addr = reinterpret_cast<uint64_t>(staging.data());
    cmd.len = static_cast<uint16_t>(staging.size());
  } else {
    cmd.addr = reinterpret_cast<uint64_t>(buf);
    cmd.len = static_cast<uint16_t>(len);
  }

  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) return -EBUSY;  // impossible: one command in flight at a time
  // The whole 128-byte entry must be clean: the kernel rejects unknown bits.
  std::memset(static_cast<void*>(sqe), 0, 2 * sizeof(io_uring_sqe));
  sqe->opcode = IORING_OP_URING_CMD;
  sqe->fd = fd_;
  sqe->cmd_op = op;
  std::memcpy(sqe->cmd, &cmd, sizeof(cmd));
  return 0;
}

int ControlDevice::issue(uint32_t encoded, uint32_t legacy, uint32_t dev_id, void* buf, uint32_t len, uint64_t data,
                         bool with_path) {
  std::vector<char> staging;
  uint16_t path_len = 0;
  int ret = prepare(encoded, legacy, dev_id, buf, len, data, with_path, staging, path_len);
  if (ret < 0) return ret;
  ret = io_uring_submit(&ring_);
  if (ret < 0) return ret;
  io_uring_cqe* cqe = nullptr;
  do {
    ret = io_uring_wait_cqe(&ring_, &cqe);
  } while (ret == -EINTR);
  if (ret < 0) return ret;
  const int res = cqe->res;
  io_uring_cqe_seen(&ring_, cqe);

  if (with_path && res >= 0 && len != 0) {
    std::memcpy(buf, staging.data() + path_len, len);
  }
  return res;
}

runtime::Task<int> ControlDevice::issue_async(uint32_t encoded, uint32_t legacy, uint32_t dev_id, uint64_t data,
                                              std::stop_token cancel) {
  uint16_t path_len = 0;
  // The staging buffer is a member: if the wait is abandoned, the kernel may
  // still read it, so it must outlive this frame.
  int ret = prepare(encoded, legacy, dev_id, nullptr, 0, data, unprivileged_, async_staging_, path_len);
  if (ret < 0) co_return ret;
  // Returns at once: the driver answers IO_URING_F_NONBLOCK issues with
  // -EAGAIN, so io_uring hands every control command to its worker threads
  // (Linux 6.2+), where a command may sleep as long as it needs.
  ret = io_uring_submit(&ring_);
  if (ret < 0) co_return ret;
  for (;;) {
    io_uring_cqe* cqe = nullptr;
    if (io_uring_peek_cqe(&ring_, &cqe) == 0) {
      const int res = cqe->res;
      io_uring_cqe_seen(&ring_, cqe);
      co_return res;
    }
    // An io_uring's own fd polls readable when its completion queue has an
    // entry; the reactor sleeps on it like on any other fd.
    const int polled = co_await runtime::poll(ring_.ring_fd, POLLIN).with_stop(cancel);
    if (polled == -ECANCELED) {
      // The command is still in the kernel. Closing the ring makes the
      // kernel cancel it (an interruptible wait such as START_DEV's returns
      // -EINTR) in its own time; this object is usable after open() again.
      close();
      co_return -ECANCELED;
    }
    if (polled < 0 && polled != -EINTR) co_return polled;
  }
}

int ControlDevice::get_features(uint64_t& features) {
  // GET_FEATURES is answered before any device lookup, so dev_id is unused.
  return issue(abi::U_CMD_GET_FEATURES, 0, 0, &features, sizeof(features), 0);
}

int ControlDevice::add_device(abi::ublksrv_ctrl_dev_info& info) {
  // The kernel insists that the header's dev_id equals the info's.
  return issue(abi::U_CMD_ADD_DEV, abi::CMD_ADD_DEV, info.dev_id, &info, sizeof(info), 0);
}

int ControlDevice::delete_device(uint32_t dev_id, bool wait) {
  if (!wait && (features_ & abi::F_CMD_IOCTL_ENCODE) != 0) {
    const int ret = issue(abi::U_CMD_DEL_DEV_ASYNC, 0, dev_id, nullptr, 0, 0, unprivileged_);
    if (ret != -EOPNOTSUPP && ret != -EINVAL) return ret;
  }
  return issue(abi::U_CMD_DEL_DEV, abi::CMD_DEL_DEV, dev_id, nullptr, 0, 0, unprivileged_);
}

int ControlDevice::set_params(uint32_t dev_id, const abi::ublk_params& params) {
  abi::ublk_params copy = params;  // issue() takes a mutable buffer
  return issue(abi::U_CMD_SET_PARAMS, abi::CMD_SET_PARAMS, dev_id, &copy, params.len, 0, unprivileged_);
}

int ControlDevice::get_params(uint32_t dev_id, abi::ublk_params& params) {
  params = {};
  params.len = sizeof(params);
  return issue(abi::U_CMD_GET_PARAMS, abi::CMD_GET_PARAMS, dev_id, &params, sizeof(params), 0, unprivileged_);
}

int ControlDevice::start_device(uint32_t dev_id, pid_t server_pid) {
  return issue(abi::U_CMD_START_DEV, abi::CMD_START_DEV, dev_id, nullptr, 0, static_cast<uint64_t>(server_pid),
               unprivileged_);
}

int ControlDevice::stop_device(uint32_t dev_id) {
  return issue(abi::U_CMD_STOP_DEV, abi::CMD_STOP_DEV, dev_id, nullptr, 0, 0, unprivileged_);
}

runtime::Task<int> ControlDevice::start_device_async(uint32_t dev_id, pid_t server_pid, std::stop_token cancel) {
  return issue_async(abi::U_CMD_START_DEV, abi::CMD_START_DEV, dev_id, static_cast<uint64_t>(server_pid),
                     std::move(cancel));
}

runtime::Task<int> ControlDevice::end_user_recovery_async(uint32_t dev_id, pid_t server_pid, std::stop_token cancel) {
  return issue_async(abi::U_CMD_END_USER_RECOVERY, abi::CMD_END_USER_RECOVERY, dev_id,
                     static_cast<uint64_t>(server_pid), std::move(cancel));
}

runtime::Task<int> ControlDevice::stop_device_async(uint32_t dev_id) {
  return issue_async(abi::U_CMD_STOP_DEV, abi::CMD_STOP_DEV, dev_id, 0, {});
}

int ControlDevice::get_device_info(uint32_t dev_id, abi::ublksrv_ctrl_dev_info& info) {
  info = {};
  if (unprivileged_) {
    // GET_DEV_INFO2 always takes the path; only it works without CAP_SYS_ADMIN.
    return issue(abi::U_CMD_GET_DEV_INFO2, abi::CMD_GET_DEV_INFO2, dev_id, &info, sizeof(info), 0, true);
  }
  const int ret = issue(abi::U_CMD_GET_DEV_INFO, abi::CMD_GET_DEV_INFO, dev_id, &info, sizeof(info), 0);
  // An unprivileged device refuses every command without its node's path
  // with -EINVAL, root's included; GET_DEV_INFO2 carries the path, and
  // works on any device the caller may look at.
  if (ret == -EINVAL && (features_ & abi::F_UNPRIVILEGED_DEV) != 0) {
    abi::ublksrv_ctrl_dev_info info2{};
    const int ret2 = issue(abi::U_CMD_GET_DEV_INFO2, abi::CMD_GET_DEV_INFO2, dev_id, &info2, sizeof(info2), 0, true);
    if (ret2 == 0) info = info2;
    return ret2;
  }
  return ret;
}

int ControlDevice::get_queue_affinity(uint32_t dev_id, uint16_t queue_id, cpu_set_t& cpus) {
  CPU_ZERO(&cpus);
  if (!ring_ready_) return -EBADF;
  // The queue travels in data[0]; the kernel copies at most len bytes of its mask.
  return issue(abi::U_CMD_GET_QUEUE_AFFINITY, abi::CMD_GET_QUEUE_AFFINITY, dev_id, &cpus, sizeof(cpus), queue_id,
               unprivileged_);
}

int ControlDevice::start_user_recovery(uint32_t dev_id) {
  return issue(abi::U_CMD_START_USER_RECOVERY, abi::CMD_START_USER_RECOVERY, dev_id, nullptr, 0, 0, unprivileged_);
}

int ControlDevice::end_user_recovery(uint32_t dev_id, pid_t server_pid) {
  return issue(abi::U_CMD_END_USER_RECOVERY, abi::CMD_END_USER_RECOVERY, dev_id, nullptr, 0,
               static_cast<uint64_t>(server_pid), unprivileged_);
}

int ControlDevice::update_size(uint32_t dev_id, uint64_t sectors) {
  return issue(abi::U_CMD_UPDATE_SIZE, 0, dev_id, nullptr, 0, sectors, unprivileged_);
}

}  // namespace coblk::ublk
