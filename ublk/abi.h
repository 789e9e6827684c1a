// ublk/abi.h - the ublk kernel ABI (include/uapi/linux/ublk_cmd.h of Linux 7.x), written out again.
#pragma once

// Why not include <linux/ublk_cmd.h>: the build host's headers (Debian
// bookworm: Linux 6.1) predate most of the features coblk uses (ioctl-encoded
// commands, USER_COPY, AUTO_BUF_REG, ...) while the kernels coblk runs on are
// much newer. The structures are append-only kernel ABI, so our own copy with
// every size and offset pinned by static_assert is as safe as the header.
//
// Names keep the kernel's spelling minus the "UBLK_" prefix, and with
// "UBLKSRV_" shortened to "SRV_" (the kernel header's macros own those
// prefixes, and both headers must coexist in the ABI test), so
// UBLK_U_CMD_ADD_DEV is abi::U_CMD_ADD_DEV and UBLKSRV_IO_BUF_OFFSET is
// abi::SRV_IO_BUF_OFFSET. Type names are the kernel's own.

#include <cerrno>
#include <cstddef>
#include <cstdint>

namespace coblk::ublk::abi {

// ---------------------------------------------------------------------------
// ioctl-style command encoding (asm-generic/ioctl.h: dir:2 size:14 type:8 nr:8)

/// Direction bits of an ioctl number (asm-generic values, used on x86/arm64).
enum : uint32_t { IOC_NONE = 0U, IOC_WRITE = 1U, IOC_READ = 2U };

/// Encodes an ioctl number the way the kernel's _IOC() macro does.
constexpr uint32_t ioc(uint32_t dir, uint32_t type, uint32_t nr, uint32_t size) {
  return (dir << 30) | (size << 16) | (type << 8) | nr;
}
/// The command number (_IOC_NR) of an ioctl-encoded or legacy opcode.
constexpr uint32_t ioc_nr(uint32_t op) { return op & 0xffU; }

/// Every ublk command uses ioctl type 'u'.
inline constexpr uint32_t IOC_TYPE = 'u';

// ---------------------------------------------------------------------------
// Structures

/// Control command, carried in the 80-byte command area of a 128-byte SQE
/// sent to /dev/ublk-control.
struct ublksrv_ctrl_cmd {
  uint32_t dev_id;        ///< target device; U32_MAX in ADD_DEV lets the kernel choose
  uint16_t queue_id;      ///< 0xffff unless the command addresses one queue
  uint16_t len;           ///< length of the buffer at addr
  uint64_t addr;          ///< command-specific in/out buffer
  uint64_t data[1];       ///< inline argument (server pid for START_DEV, ...)
  uint16_t dev_path_len;  ///< unprivileged / GET_DEV_INFO2: bytes of path prefixed at addr
  uint16_t pad;           ///< zero
  uint32_t reserved;      ///< zero
};

/// Device description: written by ADD_DEV, read back by GET_DEV_INFO.
struct ublksrv_ctrl_dev_info {
  uint16_t nr_hw_queues;      ///< hardware queues; each is served by one Queue
  uint16_t queue_depth;       ///< tags per queue, at most MAX_QUEUE_DEPTH
  uint16_t state;             ///< one of S_DEV_*
  uint16_t pad0;              ///< zero
  uint32_t max_io_buf_bytes;  ///< largest request in bytes, and the size of each tag buffer
  uint32_t dev_id;            ///< the N of /dev/ublkbN and /dev/ublkcN; U32_MAX in ADD_DEV lets the kernel choose
  int32_t ublksrv_pid;        ///< the serving process, sent with START_DEV
  uint32_t pad1;              ///< zero
  uint64_t flags;             ///< F_* feature flags of this device
  uint64_t ublksrv_flags;     ///< opaque to the kernel, for the server's own use
  uint32_t owner_uid;         ///< stored by the kernel
  uint32_t owner_gid;         ///< stored by the kernel
  uint64_t reserved1;         ///< zero
  uint64_t reserved2;         ///< zero
};

/// One request's descriptor, in the array the server mmaps from /dev/ublkcN.
struct ublksrv_io_desc {
  uint32_t op_flags;  ///< op in bits 0-7, IO_F_* flags in bits 8-31
  union {
    uint32_t nr_sectors;  ///< length of the request in 512-byte sectors
    uint32_t nr_zones;    ///< for IO_OP_REPORT_ZONES
  };
  uint64_t start_sector;  ///< first 512-byte sector of the request
  uint64_t addr;          ///< server buffer address (copy mode)
};

/// The request's operation (IO_OP_*).
constexpr uint8_t get_op(const ublksrv_io_desc& d) { return static_cast<uint8_t>(d.op_flags & 0xffU); }
/// The request's flags shifted down: test against IO_F_* >> 8, or use op_flags directly.
constexpr uint32_t get_flags(const ublksrv_io_desc& d) { return d.op_flags >> 8; }

/// I/O command (FETCH_REQ, COMMIT_AND_FETCH_REQ, ...) sent to /dev/ublkcN.
struct ublksrv_io_cmd {
  uint16_t q_id;   ///< the queue of the tag
  uint16_t tag;    ///< the tag being fetched or committed
  int32_t result;  ///< COMMIT*: bytes done or negative errno
  union {
    uint64_t addr;             ///< FETCH*: server buffer (copy mode)
    uint64_t zone_append_lba;  ///< COMMIT of a ZONE_APPEND
  };
};

/// AUTO_BUF_REG data, carried in the 64-bit sqe->addr of FETCH/COMMIT.
struct ublk_auto_buf_reg {
  uint16_t index;      ///< fixed-buffer slot to register the request's pages into
  uint8_t flags;       ///< AUTO_BUF_REG_FALLBACK
  uint8_t reserved0;   ///< zero, or the kernel fails the command
  uint32_t reserved1;  ///< zero, or the kernel fails the command
};

/// Packs an ublk_auto_buf_reg into the sqe->addr layout the kernel decodes.
constexpr uint64_t auto_buf_reg_to_sqe_addr(const ublk_auto_buf_reg& r) {
  return uint64_t{r.index} | uint64_t{r.flags} << 16 | uint64_t{r.reserved0} << 24 | uint64_t{r.reserved1} << 32;
}

/// Element header of the batch I/O commands (F_BATCH_IO).
struct ublk_elem_header {
  uint16_t tag;        ///< the request
  uint16_t buf_index;  ///< its fixed-buffer index (F_AUTO_BUF_REG only)
  int32_t result;      ///< bytes done or negative errno (commit only)
};

/// Batch I/O command (PREP_IO_CMDS / COMMIT_IO_CMDS / FETCH_IO_CMDS).
struct ublk_batch_io {
  uint16_t q_id;       ///< the queue all elements belong to
  uint16_t flags;      ///< BATCH_F_*
  uint16_t nr_elem;    ///< elements in the command buffer
  uint8_t elem_bytes;  ///< size of one element: 8, plus 8 per optional field the flags ask for
  uint8_t reserved;    ///< zero
  uint64_t reserved2;  ///< zero
};

/// Parameter buffer of CMD_REG_BUF (F_SHMEM_ZC).
struct ublk_shmem_buf_reg {
  uint64_t addr;   ///< start of the shared memory in the server
  uint32_t len;    ///< its size, page-aligned, at most 4 GiB
  uint32_t flags;  ///< SHMEM_BUF_READ_ONLY
};

/// Basic queue limits; mandatory in SET_PARAMS.
struct ublk_param_basic {
  uint32_t attrs;               ///< ATTR_*
  uint8_t logical_bs_shift;     ///< 9..12
  uint8_t physical_bs_shift;    ///< log2 of the physical block size
  uint8_t io_opt_shift;         ///< log2 of the optimal I/O size
  uint8_t io_min_shift;         ///< log2 of the minimum I/O size
  uint32_t max_sectors;         ///< <= max_io_buf_bytes >> 9
  uint32_t chunk_sectors;       ///< requests never cross a multiple of this (0 = no boundary)
  uint64_t dev_sectors;         ///< device size in 512-byte sectors
  uint64_t virt_boundary_mask;  ///< segments must meet on (mask + 1) boundaries (0 = none)
};

/// Discard / write-zeroes limits (PARAM_TYPE_DISCARD).
struct ublk_param_discard {
  uint32_t discard_alignment;         ///< offset of the first discard unit, in bytes
  uint32_t discard_granularity;       ///< must be non-zero
  uint32_t max_discard_sectors;       ///< largest discard (0 = none)
  uint32_t max_write_zeroes_sectors;  ///< largest write-zeroes (0 = none)
  uint16_t max_discard_segments;      ///< the kernel accepts only 1
  uint16_t reserved0;                 ///< zero
};

/// Device numbers; read-only (GET_PARAMS), disk numbers valid once started.
struct ublk_param_devt {
  uint32_t char_major;  ///< /dev/ublkcN
  uint32_t char_minor;  ///< /dev/ublkcN
  uint32_t disk_major;  ///< /dev/ublkbN, valid once started
  uint32_t disk_minor;  ///< /dev/ublkbN, valid once started
};

/// Zoned limits (PARAM_TYPE_ZONED, needs F_ZONED).
struct ublk_param_zoned {
  uint32_t max_open_zones;           ///< 0 = no limit
  uint32_t max_active_zones;         ///< 0 = no limit
  uint32_t max_zone_append_sectors;  ///< largest ZONE_APPEND
  uint8_t reserved[20];              ///< zero
};

/// DMA alignment (PARAM_TYPE_DMA_ALIGN).
struct ublk_param_dma_align {
  uint32_t alignment;  ///< mask: buffer addresses and lengths must be aligned to alignment + 1
  uint8_t pad[4];      ///< zero
};

/// Segment limits (PARAM_TYPE_SEGMENT); none of the three may be zero.
struct ublk_param_segment {
  uint64_t seg_boundary_mask;  ///< a segment never crosses a (mask + 1) boundary; mask + 1 is a power of two >= 4096
  uint32_t max_segment_size;   ///< >= MIN_SEGMENT_SIZE
  uint16_t max_segments;       ///< segments per request
  uint8_t pad[2];              ///< zero
};

/// Integrity metadata (PARAM_TYPE_INTEGRITY, needs F_INTEGRITY).
struct ublk_param_integrity {
  uint32_t flags;                   ///< LBMD_PI_CAP_* of linux/fs.h
  uint16_t max_integrity_segments;  ///< 0 = no limit
  uint8_t interval_exp;             ///< log2 of the bytes each protection tuple covers
  uint8_t metadata_size;            ///< metadata bytes per interval; must be non-zero
  uint8_t pi_offset;                ///< offset of the protection information in the metadata
  uint8_t csum_type;                ///< LBMD_PI_CSUM_* of linux/fs.h
  uint8_t tag_size;                 ///< bytes of the application tag
  uint8_t pad[5];                   ///< zero
};

/// SET_PARAMS / GET_PARAMS payload. `len` must be set for both commands;
/// older kernels accept a shorter len (they know fewer parts).
struct ublk_params {
  uint32_t len;                    ///< sizeof(ublk_params); the kernel may lower it to what it knows
  uint32_t types;                  ///< PARAM_TYPE_* present
  ublk_param_basic basic;          ///< PARAM_TYPE_BASIC (mandatory)
  ublk_param_discard discard;      ///< PARAM_TYPE_DISCARD
  ublk_param_devt devt;            ///< PARAM_TYPE_DEVT (GET_PARAMS only)
  ublk_param_zoned zoned;          ///< PARAM_TYPE_ZONED
  ublk_param_dma_align dma;        ///< PARAM_TYPE_DMA_ALIGN
  ublk_param_segment seg;          ///< PARAM_TYPE_SEGMENT
  ublk_param_integrity integrity;  ///< PARAM_TYPE_INTEGRITY
};

// ---------------------------------------------------------------------------
// Control commands

// Legacy plain opcodes: accepted only by kernels built with
// CONFIG_BLKDEV_UBLK_LEGACY_OPCODES; use the U_CMD_* forms when the kernel
// reports F_CMD_IOCTL_ENCODE.
inline constexpr uint32_t CMD_GET_QUEUE_AFFINITY =
    0x01;                                           ///< the CPUs a queue's requests come from (a cpu_set_t at addr)
inline constexpr uint32_t CMD_GET_DEV_INFO = 0x02;  ///< reads the device's ublksrv_ctrl_dev_info
inline constexpr uint32_t CMD_ADD_DEV = 0x04;       ///< creates /dev/ublkcN from a ublksrv_ctrl_dev_info
inline constexpr uint32_t CMD_DEL_DEV = 0x05;       ///< removes a device; waits until /dev/ublkcN is closed
inline constexpr uint32_t CMD_START_DEV = 0x06;     ///< creates /dev/ublkbN once every tag has a FETCH queued
inline constexpr uint32_t CMD_STOP_DEV = 0x07;      ///< removes /dev/ublkbN; every FETCH completes with IO_RES_ABORT
inline constexpr uint32_t CMD_SET_PARAMS = 0x08;    ///< sets the ublk_params (before START_DEV)
inline constexpr uint32_t CMD_GET_PARAMS = 0x09;    ///< reads the ublk_params
inline constexpr uint32_t CMD_START_USER_RECOVERY =
    0x10;  ///< begins recovery of a device whose server died (F_USER_RECOVERY*)
inline constexpr uint32_t CMD_END_USER_RECOVERY = 0x11;  ///< ends recovery: the new server's FETCHes are queued
inline constexpr uint32_t CMD_GET_DEV_INFO2 =
    0x12;  ///< CMD_GET_DEV_INFO with the device path prefixed (unprivileged devices)
// Numbers that exist only in ioctl-encoded form.
inline constexpr uint32_t CMD_GET_FEATURES = 0x13;  ///< the F_* flags this kernel supports (FEATURES_LEN bytes at addr)
inline constexpr uint32_t CMD_DEL_DEV_ASYNC = 0x14;  ///< CMD_DEL_DEV without waiting for /dev/ublkcN to close
inline constexpr uint32_t CMD_UPDATE_SIZE = 0x15;    ///< resizes a live device to data[0] sectors (F_UPDATE_SIZE)
inline constexpr uint32_t CMD_QUIESCE_DEV = 0x16;    ///< quiesces a live device for a server upgrade (F_QUIESCE)
inline constexpr uint32_t CMD_TRY_STOP_DEV =
    0x17;  ///< CMD_STOP_DEV only if nobody has /dev/ublkbN open (F_SAFE_STOP_DEV)
inline constexpr uint32_t CMD_REG_BUF =
    0x18;  ///< registers shared memory for zero copy; returns its index (F_SHMEM_ZC)
inline constexpr uint32_t CMD_UNREG_BUF = 0x19;  ///< unregisters the shared memory buffer with index data[0]

namespace detail {
constexpr uint32_t ctrl_r(uint32_t nr) { return ioc(IOC_READ, IOC_TYPE, nr, sizeof(ublksrv_ctrl_cmd)); }
constexpr uint32_t ctrl_rw(uint32_t nr) { return ioc(IOC_READ | IOC_WRITE, IOC_TYPE, nr, sizeof(ublksrv_ctrl_cmd)); }
constexpr uint32_t io_rw(uint32_t nr) { return ioc(IOC_READ | IOC_WRITE, IOC_TYPE, nr, sizeof(ublksrv_io_cmd)); }
constexpr uint32_t batch_rw(uint32_t nr) { return ioc(IOC_READ | IOC_WRITE, IOC_TYPE, nr, sizeof(ublk_batch_io)); }
}  // namespace detail

inline constexpr uint32_t U_CMD_GET_QUEUE_AFFINITY =
    detail::ctrl_r(CMD_GET_QUEUE_AFFINITY);  ///< CMD_GET_QUEUE_AFFINITY, ioctl-encoded: the opcode to send
inline constexpr uint32_t U_CMD_GET_DEV_INFO =
    detail::ctrl_r(CMD_GET_DEV_INFO);  ///< CMD_GET_DEV_INFO, ioctl-encoded: the opcode to send
inline constexpr uint32_t U_CMD_ADD_DEV =
    detail::ctrl_rw(CMD_ADD_DEV);  ///< CMD_ADD_DEV, ioctl-encoded: the opcode to send
inline constexpr uint32_t U_CMD_DEL_DEV =
    detail::ctrl_rw(CMD_DEL_DEV);  ///< CMD_DEL_DEV, ioctl-encoded: the opcode to send
inline constexpr uint32_t U_CMD_START_DEV =
    detail::ctrl_rw(CMD_START_DEV);  ///< CMD_START_DEV, ioctl-encoded: the opcode to send
inline constexpr uint32_t U_CMD_STOP_DEV =
    detail::ctrl_rw(CMD_STOP_DEV);  ///< CMD_STOP_DEV, ioctl-encoded: the opcode to send
inline constexpr uint32_t U_CMD_SET_PARAMS =
    detail::ctrl_rw(CMD_SET_PARAMS);  ///< CMD_SET_PARAMS, ioctl-encoded: the opcode to send
inline constexpr uint32_t U_CMD_GET_PARAMS =
    detail::ctrl_r(CMD_GET_PARAMS);  ///< CMD_GET_PARAMS, ioctl-encoded: the opcode to send
inline constexpr uint32_t U_CMD_START_USER_RECOVERY =
    detail::ctrl_rw(CMD_START_USER_RECOVERY);  ///< CMD_START_USER_RECOVERY, ioctl-encoded: the opcode to send
inline constexpr uint32_t U_CMD_END_USER_RECOVERY =
    detail::ctrl_rw(CMD_END_USER_RECOVERY);  ///< CMD_END_USER_RECOVERY, ioctl-encoded: the opcode to send
inline constexpr uint32_t U_CMD_GET_DEV_INFO2 =
    detail::ctrl_r(CMD_GET_DEV_INFO2);  ///< CMD_GET_DEV_INFO2, ioctl-encoded: the opcode to send
inline constexpr uint32_t U_CMD_GET_FEATURES =
    detail::ctrl_r(CMD_GET_FEATURES);  ///< CMD_GET_FEATURES, ioctl-encoded: the opcode to send
inline constexpr uint32_t U_CMD_DEL_DEV_ASYNC =
    detail::ctrl_r(CMD_DEL_DEV_ASYNC);  ///< CMD_DEL_DEV_ASYNC, ioctl-encoded: the opcode to send
inline constexpr uint32_t U_CMD_UPDATE_SIZE =
    detail::ctrl_rw(CMD_UPDATE_SIZE);  ///< CMD_UPDATE_SIZE, ioctl-encoded: the opcode to send
inline constexpr uint32_t U_CMD_QUIESCE_DEV =
    detail::ctrl_rw(CMD_QUIESCE_DEV);  ///< CMD_QUIESCE_DEV, ioctl-encoded: the opcode to send
inline constexpr uint32_t U_CMD_TRY_STOP_DEV =
    detail::ctrl_rw(CMD_TRY_STOP_DEV);  ///< CMD_TRY_STOP_DEV, ioctl-encoded: the opcode to send
inline constexpr uint32_t U_CMD_REG_BUF =
    detail::ctrl_rw(CMD_REG_BUF);  ///< CMD_REG_BUF, ioctl-encoded: the opcode to send
inline constexpr uint32_t U_CMD_UNREG_BUF =
    detail::ctrl_rw(CMD_UNREG_BUF);  ///< CMD_UNREG_BUF, ioctl-encoded: the opcode to send

/// ublk_shmem_buf_reg::flags: pin the pages without write access, so a
/// write-sealed memfd can be registered.
inline constexpr uint32_t SHMEM_BUF_READ_ONLY = 1U << 0;

/// Bytes of the GET_FEATURES answer.
inline constexpr unsigned FEATURES_LEN = 8;

// ---------------------------------------------------------------------------
// I/O commands (sent to /dev/ublkcN)

inline constexpr uint32_t IO_FETCH_REQ = 0x20;             ///< legacy opcode of U_IO_FETCH_REQ
inline constexpr uint32_t IO_COMMIT_AND_FETCH_REQ = 0x21;  ///< legacy opcode of U_IO_COMMIT_AND_FETCH_REQ
inline constexpr uint32_t IO_NEED_GET_DATA = 0x22;         ///< legacy opcode of U_IO_NEED_GET_DATA

inline constexpr uint32_t U_IO_FETCH_REQ =
    detail::io_rw(IO_FETCH_REQ);  ///< arms a tag: completes when a request arrives (or IO_RES_ABORT)
inline constexpr uint32_t U_IO_COMMIT_AND_FETCH_REQ =
    detail::io_rw(IO_COMMIT_AND_FETCH_REQ);  ///< completes the tag's request with `result` and re-arms the tag
inline constexpr uint32_t U_IO_NEED_GET_DATA =
    detail::io_rw(IO_NEED_GET_DATA);  ///< gives a WRITE its buffer after IO_RES_NEED_GET_DATA (F_NEED_GET_DATA)
inline constexpr uint32_t U_IO_REGISTER_IO_BUF =
    detail::io_rw(0x23);  ///< registers a request's pages as fixed buffer `addr` (F_SUPPORT_ZERO_COPY)
inline constexpr uint32_t U_IO_UNREGISTER_IO_BUF =
    detail::io_rw(0x24);  ///< unregisters it; the request completes once unregistered and committed
inline constexpr uint32_t U_IO_PREP_IO_CMDS = detail::batch_rw(0x25);  ///< arms many tags in one command (F_BATCH_IO)
inline constexpr uint32_t U_IO_COMMIT_IO_CMDS =
    detail::batch_rw(0x26);  ///< commits many requests; returns the bytes of elements handled (F_BATCH_IO)
inline constexpr uint32_t U_IO_FETCH_IO_CMDS =
    detail::batch_rw(0x27);  ///< multishot: fetches arriving requests into a buffer (F_BATCH_IO)

// Flags of ublk_batch_io.
inline constexpr uint16_t BATCH_F_HAS_ZONE_LBA = 1U << 0;  ///< elements carry a zone-append LBA
inline constexpr uint16_t BATCH_F_HAS_BUF_ADDR = 1U << 1;  ///< elements carry a buffer address
inline constexpr uint16_t BATCH_F_AUTO_BUF_REG_FALLBACK = 1U
                                                          << 2;  ///< as AUTO_BUF_REG_FALLBACK, for the batch commands

// FETCH completion results. Only IO_RES_ABORT means "do not re-fetch".
inline constexpr int IO_RES_OK = 0;             ///< a request arrived: handle it, then commit
inline constexpr int IO_RES_NEED_GET_DATA = 1;  ///< a WRITE waits for U_IO_NEED_GET_DATA (F_NEED_GET_DATA)
inline constexpr int IO_RES_ABORT = -ENODEV;    ///< the device is stopping: do not re-fetch this tag

// ---------------------------------------------------------------------------
// mmap / pread / pwrite offsets on /dev/ublkcN

/// mmap offset of queue 0's descriptor array; queue q's array follows at
/// q * round_up(depth * sizeof(ublksrv_io_desc), page size).
inline constexpr uint64_t SRV_CMD_BUF_OFFSET = 0;
/// pread/pwrite base offset of request data in USER_COPY mode.
inline constexpr uint64_t SRV_IO_BUF_OFFSET = 0x80000000ULL;

/// Tags are 16 bits, but the kernel caps a queue's depth at 4096.
inline constexpr unsigned MAX_QUEUE_DEPTH = 4096;

inline constexpr unsigned IO_BUF_OFF = 0;    ///< bit offset of the byte offset in a USER_COPY offset
inline constexpr unsigned IO_BUF_BITS = 25;  ///< one request's buffer is at most 32 MiB
inline constexpr uint64_t IO_BUF_BITS_MASK = (1ULL << IO_BUF_BITS) - 1;  ///< the byte offset's bits
inline constexpr unsigned TAG_OFF = IO_BUF_BITS;                         ///< bit offset of the tag
inline constexpr unsigned TAG_BITS = 16;                                 ///< bits of the tag
inline constexpr uint64_t TAG_BITS_MASK = (1ULL << TAG_BITS) - 1;        ///< the tag's bits, shifted down
inline constexpr unsigned QID_OFF = TAG_OFF + TAG_BITS;                  ///< bit offset of the queue id
inline constexpr unsigned QID_BITS = 12;                                 ///< bits of the queue id
inline constexpr uint64_t QID_BITS_MASK = (1ULL << QID_BITS) - 1;        ///< the queue id's bits, shifted down
inline constexpr unsigned MAX_NR_QUEUES = 1U << QID_BITS;                ///< most hardware queues a device may have
inline constexpr unsigned SRV_IO_BUF_TOTAL_BITS =
    QID_OFF + QID_BITS;  ///< bits of a USER_COPY offset above SRV_IO_BUF_OFFSET
inline constexpr uint64_t SRV_IO_BUF_TOTAL_SIZE = 1ULL << SRV_IO_BUF_TOTAL_BITS;  ///< span of all USER_COPY offsets
/// Set in a USER_COPY offset to copy the integrity buffer instead of data.
inline constexpr unsigned INTEGRITY_FLAG_OFF = 62;
inline constexpr uint64_t SRV_IO_INTEGRITY_FLAG = 1ULL << INTEGRITY_FLAG_OFF;  ///< the integrity bit, in place

/// The pread/pwrite offset on /dev/ublkcN of byte `offset` of request
/// (q_id, tag)'s data in USER_COPY mode.
constexpr uint64_t user_copy_offset(uint16_t q_id, uint16_t tag, uint32_t offset = 0) {
  return SRV_IO_BUF_OFFSET + (uint64_t{q_id} << QID_OFF) + (uint64_t{tag} << TAG_OFF) + (offset & IO_BUF_BITS_MASK);
}

// Shared-memory zero-copy address encoding (IO_F_SHMEM_ZC): the
// descriptor's addr holds a buffer index and a byte offset in it.
inline constexpr uint64_t SHMEM_ZC_OFF_MASK = 0xffffffffULL;  ///< the byte offset's bits
inline constexpr unsigned SHMEM_ZC_IDX_OFF = 32;              ///< bit offset of the buffer index in the address
inline constexpr uint64_t SHMEM_ZC_IDX_MASK = 0xffffULL;      ///< the buffer index's bits, shifted down

// ---------------------------------------------------------------------------
// Device feature flags (ublksrv_ctrl_dev_info::flags, GET_FEATURES)

inline constexpr uint64_t F_SUPPORT_ZERO_COPY =
    1ULL << 0;  ///< request pages registered by U_IO_REGISTER_IO_BUF, used as fixed buffers
inline constexpr uint64_t F_URING_CMD_COMP_IN_TASK =
    1ULL << 1;  ///< complete I/O commands from task work (a comparison knob; ignored now)
inline constexpr uint64_t F_NEED_GET_DATA =
    1ULL << 2;  ///< a WRITE first completes with IO_RES_NEED_GET_DATA, to get its buffer late
inline constexpr uint64_t F_USER_RECOVERY = 1ULL
                                            << 3;  ///< the device outlives its server; I/O in flight when it dies fails
inline constexpr uint64_t F_USER_RECOVERY_REISSUE =
    1ULL << 4;  ///< as F_USER_RECOVERY, but I/O in flight is reissued to the new server
inline constexpr uint64_t F_UNPRIVILEGED_DEV = 1ULL << 5;  ///< an unprivileged user may add and own the device
inline constexpr uint64_t F_CMD_IOCTL_ENCODE = 1ULL << 6;  ///< commands are sent with their ioctl-encoded (U_*) opcodes
inline constexpr uint64_t F_USER_COPY =
    1ULL << 7;  ///< the server moves data with pread/pwrite on /dev/ublkcN (user_copy_offset)
inline constexpr uint64_t F_ZONED = 1ULL << 8;  ///< a zoned device (needs F_USER_COPY, PARAM_TYPE_ZONED)
inline constexpr uint64_t F_USER_RECOVERY_FAIL_IO = 1ULL
                                                    << 9;  ///< as F_USER_RECOVERY, and I/O fails while no server runs
inline constexpr uint64_t F_UPDATE_SIZE = 1ULL << 10;      ///< CMD_UPDATE_SIZE resizes a live device
inline constexpr uint64_t F_AUTO_BUF_REG =
    1ULL << 11;  ///< each request's pages are registered as a fixed buffer before its FETCH completes
inline constexpr uint64_t F_QUIESCE = 1ULL << 12;        ///< CMD_QUIESCE_DEV (needs F_USER_RECOVERY)
inline constexpr uint64_t F_PER_IO_DAEMON = 1ULL << 13;  ///< each tag, not each queue, may have its own serving task
inline constexpr uint64_t F_BUF_REG_OFF_DAEMON = 1ULL << 14;  ///< U_IO_(UN)REGISTER_IO_BUF may come from any task
inline constexpr uint64_t F_BATCH_IO = 1ULL << 15;            ///< the batch I/O commands replace FETCH/COMMIT
inline constexpr uint64_t F_INTEGRITY = 1ULL << 16;      ///< requests may carry integrity metadata (needs F_USER_COPY)
inline constexpr uint64_t F_SAFE_STOP_DEV = 1ULL << 17;  ///< CMD_TRY_STOP_DEV exists
inline constexpr uint64_t F_NO_AUTO_PART_SCAN = 1ULL << 18;  ///< START_DEV does not scan /dev/ublkbN for partitions
inline constexpr uint64_t F_SHMEM_ZC = 1ULL << 19;  ///< zero copy through shared memory registered with CMD_REG_BUF

// ---------------------------------------------------------------------------
// Device states (ublksrv_ctrl_dev_info::state)

inline constexpr uint16_t S_DEV_DEAD = 0;      ///< not started, or stopped
inline constexpr uint16_t S_DEV_LIVE = 1;      ///< /dev/ublkbN exists and requests reach the server
inline constexpr uint16_t S_DEV_QUIESCED = 2;  ///< the server is gone (or quiesced); requests wait for recovery
inline constexpr uint16_t S_DEV_FAIL_IO =
    3;  ///< the server is gone; requests fail until recovery (F_USER_RECOVERY_FAIL_IO)

// ---------------------------------------------------------------------------
// Request operations and flags (ublksrv_io_desc::op_flags)

inline constexpr uint8_t IO_OP_READ = 0;          ///< fill the buffer from the device
inline constexpr uint8_t IO_OP_WRITE = 1;         ///< store the buffer
inline constexpr uint8_t IO_OP_FLUSH = 2;         ///< make completed writes durable
inline constexpr uint8_t IO_OP_DISCARD = 3;       ///< forget a range
inline constexpr uint8_t IO_OP_WRITE_SAME = 4;    ///< repeat one block over a range (not sent by current kernels)
inline constexpr uint8_t IO_OP_WRITE_ZEROES = 5;  ///< make a range read as zeros
inline constexpr uint8_t IO_OP_ZONE_OPEN = 10;    ///< open a zone (F_ZONED)
inline constexpr uint8_t IO_OP_ZONE_CLOSE = 11;   ///< close a zone (F_ZONED)
inline constexpr uint8_t IO_OP_ZONE_FINISH = 12;  ///< mark a zone full (F_ZONED)
inline constexpr uint8_t IO_OP_ZONE_APPEND = 13;  ///< write at a zone's write pointer; commit returns the LBA (F_ZONED)
inline constexpr uint8_t IO_OP_ZONE_RESET_ALL = 14;  ///< reset every zone (F_ZONED)
inline constexpr uint8_t IO_OP_ZONE_RESET = 15;      ///< reset a zone's write pointer (F_ZONED)
inline constexpr uint8_t IO_OP_REPORT_ZONES =
    18;  ///< fill a blk_zone array for nr_zones zones from start_sector (F_ZONED)

inline constexpr uint32_t IO_F_FAILFAST_DEV = 1U << 8;        ///< do not retry on device errors
inline constexpr uint32_t IO_F_FAILFAST_TRANSPORT = 1U << 9;  ///< do not retry on transport errors
inline constexpr uint32_t IO_F_FAILFAST_DRIVER = 1U << 10;    ///< do not retry on driver errors
inline constexpr uint32_t IO_F_META = 1U << 11;               ///< file system metadata
inline constexpr uint32_t IO_F_FUA = 1U << 13;                ///< the write must be durable when it completes
inline constexpr uint32_t IO_F_NOUNMAP = 1U << 15;            ///< write-zeroes must keep the range allocated
inline constexpr uint32_t IO_F_SWAP = 1U << 16;               ///< swap I/O
inline constexpr uint32_t IO_F_NEED_REG_BUF =
    1U << 17;  ///< automatic registration failed: register the buffer by hand (AUTO_BUF_REG_FALLBACK)
inline constexpr uint32_t IO_F_INTEGRITY = 1U << 18;  ///< the request carries an integrity buffer
inline constexpr uint32_t IO_F_SHMEM_ZC = 1U << 19;   ///< addr is a shared-memory index and offset (F_SHMEM_ZC)

/// ublk_auto_buf_reg::flags: on registration failure complete the FETCH with
/// IO_F_NEED_REG_BUF instead of failing the request.
inline constexpr uint8_t AUTO_BUF_REG_FALLBACK = 1U << 0;
inline constexpr uint8_t AUTO_BUF_REG_F_MASK = AUTO_BUF_REG_FALLBACK;  ///< every valid ublk_auto_buf_reg flag

// ---------------------------------------------------------------------------
// Parameters

inline constexpr uint32_t ATTR_READ_ONLY = 1U << 0;       ///< the disk is read-only
inline constexpr uint32_t ATTR_ROTATIONAL = 1U << 1;      ///< the disk is rotational
inline constexpr uint32_t ATTR_VOLATILE_CACHE = 1U << 2;  ///< the device has a write cache: the kernel sends FLUSH
inline constexpr uint32_t ATTR_FUA = 1U << 3;             ///< the device honours IO_F_FUA

inline constexpr uint32_t PARAM_TYPE_BASIC = 1U << 0;      ///< ublk_params::basic is set
inline constexpr uint32_t PARAM_TYPE_DISCARD = 1U << 1;    ///< ublk_params::discard is set
inline constexpr uint32_t PARAM_TYPE_DEVT = 1U << 2;       ///< ublk_params::devt is set (GET_PARAMS only)
inline constexpr uint32_t PARAM_TYPE_ZONED = 1U << 3;      ///< ublk_params::zoned is set
inline constexpr uint32_t PARAM_TYPE_DMA_ALIGN = 1U << 4;  ///< ublk_params::dma is set
inline constexpr uint32_t PARAM_TYPE_SEGMENT = 1U << 5;    ///< ublk_params::seg is set
inline constexpr uint32_t PARAM_TYPE_INTEGRITY = 1U << 6;  ///< ublk_params::integrity is set (needs F_INTEGRITY)

/// Smallest legal ublk_param_segment::max_segment_size.
inline constexpr uint32_t MIN_SEGMENT_SIZE = 4096;

// ---------------------------------------------------------------------------
// Layout checks: every size and offset as the kernel lays it out.

static_assert(sizeof(ublksrv_ctrl_cmd) == 32);
static_assert(offsetof(ublksrv_ctrl_cmd, dev_id) == 0);
static_assert(offsetof(ublksrv_ctrl_cmd, queue_id) == 4);
static_assert(offsetof(ublksrv_ctrl_cmd, len) == 6);
static_assert(offsetof(ublksrv_ctrl_cmd, addr) == 8);
static_assert(offsetof(ublksrv_ctrl_cmd, data) == 16);
static_assert(offsetof(ublksrv_ctrl_cmd, dev_path_len) == 24);
static_assert(offsetof(ublksrv_ctrl_cmd, pad) == 26);
static_assert(offsetof(ublksrv_ctrl_cmd, reserved) == 28);

static_assert(sizeof(ublksrv_ctrl_dev_info) == 64);
static_assert(offsetof(ublksrv_ctrl_dev_info, nr_hw_queues) == 0);
static_assert(offsetof(ublksrv_ctrl_dev_info, queue_depth) == 2);
static_assert(offsetof(ublksrv_ctrl_dev_info, state) == 4);
static_assert(offsetof(ublksrv_ctrl_dev_info, pad0) == 6);
static_assert(offsetof(ublksrv_ctrl_dev_info, max_io_buf_bytes) == 8);
static_assert(offsetof(ublksrv_ctrl_dev_info, dev_id) == 12);
static_assert(offsetof(ublksrv_ctrl_dev_info, ublksrv_pid) == 16);
static_assert(offsetof(ublksrv_ctrl_dev_info, pad1) == 20);
static_assert(offsetof(ublksrv_ctrl_dev_info, flags) == 24);
static_assert(offsetof(ublksrv_ctrl_dev_info, ublksrv_flags) == 32);
static_assert(offsetof(ublksrv_ctrl_dev_info, owner_uid) == 40);
static_assert(offsetof(ublksrv_ctrl_dev_info, owner_gid) == 44);
static_assert(offsetof(ublksrv_ctrl_dev_info, reserved1) == 48);
static_assert(offsetof(ublksrv_ctrl_dev_info, reserved2) == 56);

static_assert(sizeof(ublksrv_io_desc) == 24);
static_assert(offsetof(ublksrv_io_desc, op_flags) == 0);
static_assert(offsetof(ublksrv_io_desc, nr_sectors) == 4);
static_assert(offsetof(ublksrv_io_desc, nr_zones) == 4);
static_assert(offsetof(ublksrv_io_desc, start_sector) == 8);
static_assert(offsetof(ublksrv_io_desc, addr) == 16);

static_assert(sizeof(ublksrv_io_cmd) == 16);
static_assert(offsetof(ublksrv_io_cmd, q_id) == 0);
static_assert(offsetof(ublksrv_io_cmd, tag) == 2);
static_assert(offsetof(ublksrv_io_cmd, result) == 4);
static_assert(offsetof(ublksrv_io_cmd, addr) == 8);
static_assert(offsetof(ublksrv_io_cmd, zone_append_lba) == 8);

static_assert(sizeof(ublk_auto_buf_reg) == 8);
static_assert(offsetof(ublk_auto_buf_reg, index) == 0);
static_assert(offsetof(ublk_auto_buf_reg, flags) == 2);
static_assert(offsetof(ublk_auto_buf_reg, reserved0) == 3);
static_assert(offsetof(ublk_auto_buf_reg, reserved1) == 4);

static_assert(sizeof(ublk_elem_header) == 8);
static_assert(offsetof(ublk_elem_header, buf_index) == 2);
static_assert(offsetof(ublk_elem_header, result) == 4);

static_assert(sizeof(ublk_batch_io) == 16);
static_assert(offsetof(ublk_batch_io, flags) == 2);
static_assert(offsetof(ublk_batch_io, nr_elem) == 4);
static_assert(offsetof(ublk_batch_io, elem_bytes) == 6);
static_assert(offsetof(ublk_batch_io, reserved) == 7);
static_assert(offsetof(ublk_batch_io, reserved2) == 8);

static_assert(sizeof(ublk_shmem_buf_reg) == 16);
static_assert(offsetof(ublk_shmem_buf_reg, len) == 8);
static_assert(offsetof(ublk_shmem_buf_reg, flags) == 12);

static_assert(sizeof(ublk_param_basic) == 32);
static_assert(offsetof(ublk_param_basic, attrs) == 0);
static_assert(offsetof(ublk_param_basic, logical_bs_shift) == 4);
static_assert(offsetof(ublk_param_basic, physical_bs_shift) == 5);
static_assert(offsetof(ublk_param_basic, io_opt_shift) == 6);
static_assert(offsetof(ublk_param_basic, io_min_shift) == 7);
static_assert(offsetof(ublk_param_basic, max_sectors) == 8);
static_assert(offsetof(ublk_param_basic, chunk_sectors) == 12);
static_assert(offsetof(ublk_param_basic, dev_sectors) == 16);
static_assert(offsetof(ublk_param_basic, virt_boundary_mask) == 24);

static_assert(sizeof(ublk_param_discard) == 20);
static_assert(offsetof(ublk_param_discard, discard_alignment) == 0);
static_assert(offsetof(ublk_param_discard, discard_granularity) == 4);
static_assert(offsetof(ublk_param_discard, max_discard_sectors) == 8);
static_assert(offsetof(ublk_param_discard, max_write_zeroes_sectors) == 12);
static_assert(offsetof(ublk_param_discard, max_discard_segments) == 16);
static_assert(offsetof(ublk_param_discard, reserved0) == 18);

static_assert(sizeof(ublk_param_devt) == 16);
static_assert(offsetof(ublk_param_devt, char_minor) == 4);
static_assert(offsetof(ublk_param_devt, disk_major) == 8);
static_assert(offsetof(ublk_param_devt, disk_minor) == 12);

static_assert(sizeof(ublk_param_zoned) == 32);
static_assert(offsetof(ublk_param_zoned, max_active_zones) == 4);
static_assert(offsetof(ublk_param_zoned, max_zone_append_sectors) == 8);
static_assert(offsetof(ublk_param_zoned, reserved) == 12);

static_assert(sizeof(ublk_param_dma_align) == 8);
static_assert(offsetof(ublk_param_dma_align, pad) == 4);

static_assert(sizeof(ublk_param_segment) == 16);
static_assert(offsetof(ublk_param_segment, max_segment_size) == 8);
static_assert(offsetof(ublk_param_segment, max_segments) == 12);
static_assert(offsetof(ublk_param_segment, pad) == 14);

static_assert(sizeof(ublk_param_integrity) == 16);
static_assert(offsetof(ublk_param_integrity, max_integrity_segments) == 4);
static_assert(offsetof(ublk_param_integrity, interval_exp) == 6);
static_assert(offsetof(ublk_param_integrity, metadata_size) == 7);
static_assert(offsetof(ublk_param_integrity, pi_offset) == 8);
static_assert(offsetof(ublk_param_integrity, csum_type) == 9);
static_assert(offsetof(ublk_param_integrity, tag_size) == 10);
static_assert(offsetof(ublk_param_integrity, pad) == 11);

static_assert(sizeof(ublk_params) == 152);
static_assert(offsetof(ublk_params, len) == 0);
static_assert(offsetof(ublk_params, types) == 4);
static_assert(offsetof(ublk_params, basic) == 8);
static_assert(offsetof(ublk_params, discard) == 40);
static_assert(offsetof(ublk_params, devt) == 60);
static_assert(offsetof(ublk_params, zoned) == 76);
static_assert(offsetof(ublk_params, dma) == 108);
static_assert(offsetof(ublk_params, seg) == 120);
static_assert(offsetof(ublk_params, integrity) == 136);

// ioctl numbers: spot values computed by hand from _IOWR('u', 4, 32 bytes).
static_assert(U_CMD_ADD_DEV == 0xc0207504U);
static_assert(U_CMD_GET_FEATURES == 0x80207513U);
static_assert(U_IO_FETCH_REQ == 0xc0107520U);
static_assert(SRV_IO_BUF_TOTAL_BITS == 53);

}  // namespace coblk::ublk::abi
