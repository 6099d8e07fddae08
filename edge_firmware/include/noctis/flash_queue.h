// The offline queue: epochs in contract blocks, one per 4 KiB sector, in a ring over the
// queue partition. Every append is durable when it returns; nothing is erased until the
// server's ack_seq covers a whole block; a power cut at any write loses at most the
// epoch being written.
//
// Write order is what makes recovery possible:
//   open a block:  header fields (seq, start, model) first, then magic + version;
//   add an epoch:  its first 14 code bytes, then byte 14 (hours since start, never
//                  255) as the commit mark;
//   seal a block:  the count, then the packed edge stages, then the flags, then the CRC.
// recover() finds each sector's state from those marks, seals what was left open
// and erases what holds no committed epoch.
#pragma once
#include <cstddef>
#include <cstdint>

#include "noctis/codec.h"

namespace noctis {

class Flash {
 public:
  virtual ~Flash() = default;
  virtual uint32_t sector_count() const = 0;
  virtual void read(uint32_t address, uint8_t* out, size_t len) = 0;
  // NOR semantics: programming can only clear bits; erase_sector sets 4 KiB to 0xFF.
  virtual void program(uint32_t address, const uint8_t* data, size_t len) = 0;
  virtual void erase_sector(uint32_t sector) = 0;
};

constexpr uint8_t kNoStage = 0xFF;

struct EpochRecord {
  uint32_t seq = 0;
  uint32_t start = 0;  // Unix seconds UTC
  uint8_t codes[kFeatureCount] = {};
  uint8_t stage = kNoStage;  // the edge model's stage 0..3
};

struct RecoveryReport {
  uint32_t blocks = 0;             // sealed blocks holding pending epochs
  uint32_t sealed_open_blocks = 0; // blocks left open by a power cut, sealed now
  uint32_t completed_seals = 0;    // seals interrupted before the CRC, completed now
  uint32_t erased_sectors = 0;     // torn headers and blocks without a committed epoch
  uint32_t corrupt_blocks = 0;     // CRC mismatch: flash damage, erased and counted
  uint64_t pending_epochs = 0;
};

class FlashQueue {
 public:
  explicit FlashQueue(Flash& flash) : flash_(flash), sectors_(flash.sector_count()) {}

  RecoveryReport recover();
  // Stores one epoch durably. When the ring is full the oldest block is dropped (and
  // counted in dropped_epochs): at one epoch per 30 s that is after 189 days offline.
  void append(const EpochRecord& epoch, uint32_t model_version);
  // Oldest-first whole blocks that fit in capacity, in the upload format. Returns the
  // bytes written; *last_seq is the last epoch's seq, -1 when nothing is pending.
  size_t read_batch(uint8_t* out, size_t capacity, int64_t* last_seq);
  // Erases every block whose epochs are all at or below ack_seq.
  void acknowledge(int64_t ack_seq);

  uint64_t pending_epochs() const { return pending_; }
  // One past the newest seq in flash (0 if empty): the firmware never reuses a seq.
  uint32_t next_seq() const { return next_seq_; }
  uint64_t dropped_epochs() const { return dropped_; }
  uint32_t capacity_epochs() const { return (sectors_ - 1) * kMaxEpochsPerBlock; }

 private:
  enum class State { kErased, kOpen, kSealed, kSealInterrupted, kCorrupt, kGarbage };
  struct Info {
    State state = State::kErased;
    BlockHeader header;
    uint8_t flags = 0xFF;
  };

  Info inspect(uint32_t sector);
  uint32_t committed_slots(uint32_t sector);
  void seal(uint32_t sector, uint16_t count, const uint8_t* stages);
  void finish_seal(uint32_t sector, uint16_t count, bool has_stages);
  void write_crc(uint32_t sector, uint16_t count, bool has_stages);
  void open_block(const EpochRecord& epoch, uint32_t model_version);
  void drop_oldest();
  // The open block's edge stages, or nullptr if any epoch lacks one (then none are written).
  const uint8_t* complete_open_stages() const;
  uint32_t newest_sector() const { return (tail_ + used_ + sectors_ - 1) % sectors_; }
  uint32_t address(uint32_t sector, size_t offset) const { return static_cast<uint32_t>(sector * kSectorBytes + offset); }

  Flash& flash_;
  const uint32_t sectors_;
  uint32_t tail_ = 0;  // oldest occupied sector
  uint32_t used_ = 0;  // sectors from tail_ to the newest block, erased holes included
  bool open_ = false;  // the newest block is still taking epochs
  BlockHeader open_header_;
  uint8_t open_stages_[kMaxEpochsPerBlock] = {};
  uint64_t pending_ = 0;
  uint64_t dropped_ = 0;
  uint32_t next_seq_ = 0;
};

}  // namespace noctis
