// The offline queue: epochs in contract blocks, one per 4 KiB sector, in a ring over the
// queue partition. Every append is durable when it returns; nothing is erased until the
// server's ack_seq covers a whole block; a power cut at any write, torn at any byte or
// bit, loses at most the epoch being written, and never keeps it half-written.
//
// Partition layout: sector 0 is the identity sector (the device's incarnation, see
// noctis_contract/session.py); sectors 1.. are the ring. A ring sector holds
//   [0, 24)      the block header of the upload format (count, flags and CRC are the seal)
//   [24, 28)     the night's start (Unix seconds) for every epoch of the block
//   [28, 62)     the commit bitmap: bit i cleared = slot i is complete
//   [62, 3800)   267 slots of the first 14 feature codes; feature 14 (hours since the
//                night's start) is not stored: it follows from the epoch's start and the
//                night's start, exactly as the device computed it (hours_code())
//   [4029, 4096) the packed edge stages
// Uploads are re-encoded from this (feature 14 restored, stages behind the codes), and the
// stored CRC is the CRC of that upload encoding, so flash damage is still caught end to end.
//
// Edge stages live in RAM until their block is sealed. An edge model with a lookahead L
// (its output on the window ending at an epoch is the stage of the epoch L before it)
// needs L more epochs before an epoch's stage is known: append() places each output on
// the epoch L back, and read_batch() holds back the newest L epochs until theirs arrive.
// A block that fills mid-night stays unsealed (the finishing block) while the next one
// opens, until the next L outputs have given its last epochs their stages: every epoch of
// a night gets its own stage. Only a night's end (or a new model) seals a block early, and
// then its waiting epochs take the night's newest output, as training does at the end of
// a night (staged_late, model_export/edge_model.py). Uploads may end inside the open
// block; the server's ack then covers part of it, and the next upload starts after it.
//
// Write order is what makes recovery possible:
//   open a block:  header fields (seq, start, model) and the night's start, then magic + version;
//   add an epoch:  its 14 code bytes, then its commit bit, a one-bit write that a power cut
//                  either makes or does not (no feature value is read as a mark);
//   seal a block:  stages, then count, then flags, then CRC.
// NOR programming only clears bits, so a torn write leaves a value with extra 1-bits;
// recover() recomputes what each seal field should be from the committed slots and
// completes any field whose stored bits still allow it. Nothing assumes that a
// multi-byte write is atomic.
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
constexpr size_t kStoredCodes = kFeatureCount - 1;  // feature 14, the last, is derived
static_assert(kHoursSinceStart == kFeatureCount - 1, "the derived feature must be the last code of a slot");
constexpr size_t kOffNightStart = kBlockHeaderBytes;
constexpr size_t kCommitOffset = kOffNightStart + 4;
constexpr size_t kSlotsOffset = kCommitOffset + (kMaxEpochsPerBlock + 7) / 8;
constexpr size_t kStagesOffset = kSectorBytes - (kMaxEpochsPerBlock + 3) / 4;
static_assert(kSlotsOffset + kStoredCodes * kMaxEpochsPerBlock <= kStagesOffset, "the slots overlap the stages");
// The upload view that load_block() builds in RAM keeps the stages at the same offset.
static_assert(kBlockHeaderBytes + static_cast<size_t>(kFeatureCount) * kMaxEpochsPerBlock <= kStagesOffset,
              "the upload view overlaps the stages");
constexpr int kMaxBatchGaps = 16;

struct EpochRecord {
  uint32_t seq = 0;
  uint32_t start = 0;  // Unix seconds UTC
  uint32_t night_start = 0;  // Unix seconds: codes[14] must be hours_code(start, night_start)
  uint8_t codes[kFeatureCount] = {};
  // The edge model's output 0..3 on the window ending at this epoch: this epoch's stage,
  // or with a lookahead L the stage of the epoch L before it (see set_lookahead).
  uint8_t stage = kNoStage;
};

struct RecoveryReport {
  uint32_t blocks = 0;             // blocks holding pending epochs
  uint32_t sealed_open_blocks = 0; // blocks left open by a power cut, sealed now
  uint32_t completed_seals = 0;    // seals interrupted or torn, completed now
  uint32_t erased_sectors = 0;     // torn headers and blocks without a committed epoch
  uint32_t corrupt_blocks = 0;     // data that fails its CRC: flash damage, erased and counted
  uint64_t pending_epochs = 0;
};

enum class GapReason : uint8_t { kUnknown = 0, kQueueFull = 1, kCorrupt = 2 };

struct SeqGap {
  uint32_t first_seq = 0;
  uint32_t count = 0;
  GapReason reason = GapReason::kUnknown;
};

// What read_batch put in the body, and what the device no longer holds around it.
struct BatchInfo {
  int64_t last_seq = -1;    // the last epoch's seq, -1 when nothing is pending
  uint32_t epochs = 0;
  uint16_t blocks = 0;
  uint32_t held_from = 0;   // the oldest seq still in flash: nothing below it is held
  GapReason reason_below = GapReason::kUnknown;
  uint16_t gap_count = 0;   // holes between the blocks of this batch (erased as corrupt)
  SeqGap gaps[kMaxBatchGaps];
};

class FlashQueue {
 public:
  explicit FlashQueue(Flash& flash) : flash_(flash), sectors_(flash.sector_count() - 1) {}

  RecoveryReport recover();
  // The incarnation in the identity sector, 0 if there is none (read by recover()).
  uint32_t incarnation() const { return incarnation_; }
  // Starts a new seq space: erases every block and writes the new identity.
  void format(uint32_t incarnation);

  // The running edge model's lookahead in epochs (0: each output is its own epoch's stage).
  void set_lookahead(uint32_t epochs) { lookahead_ = epochs < kMaxEpochsPerBlock ? epochs : kMaxEpochsPerBlock - 1; }
  // Stores one epoch durably. When the ring is full the oldest block is dropped (and
  // counted in dropped_epochs): at one epoch per 30 s that is after 189 days offline.
  void append(const EpochRecord& epoch, uint32_t model_version);
  // Oldest first, in the upload format, up to capacity bytes and max_epochs: every epoch
  // the server has not acknowledged, block by block (the newest lookahead epochs held
  // back); a block is cut only where an earlier ack cut it.
  size_t read_batch(uint8_t* out, size_t capacity, uint32_t max_epochs, BatchInfo* info);
  // The server holds every epoch through ack_seq: erases every block that lies wholly at
  // or below it, and uploads no epoch at or below it again.
  void acknowledge(int64_t ack_seq);

  // Epochs in flash that the server has not acknowledged.
  uint64_t pending_epochs() const { return pending_; }
  // Of those, the ones read_batch() would upload now.
  uint64_t ready_epochs() const { return pending_ - held_back(); }
  // The rest: the newest epochs, waiting for their stage.
  uint32_t held_back() const;
  // One past the newest seq in flash (0 if empty): the firmware never reuses a seq.
  uint32_t next_seq() const { return next_seq_; }
  uint64_t dropped_epochs() const { return dropped_; }
  uint32_t corrupt_blocks() const { return corrupt_; }
  uint32_t capacity_epochs() const { return (sectors_ - 1) * kMaxEpochsPerBlock; }

 private:
  enum class State { kErased, kOpen, kSealed, kUnfinished, kGarbage };
  struct Info {
    State state = State::kErased;
    BlockHeader header;
  };

  Info inspect(uint32_t sector);
  uint32_t committed_slots(uint32_t sector);
  bool complete_seal(uint32_t sector, BlockHeader* header);
  // Builds the block's upload view in scratch_: header, codes with feature 14 restored,
  // stages (if any) at kStagesOffset.
  void load_block(uint32_t sector, const BlockHeader& header);
  uint32_t upload_crc(uint32_t sector, const BlockHeader& header);
  void seal(uint32_t sector, BlockHeader header, const uint8_t* stages);
  void open_block(const EpochRecord& epoch, uint32_t model_version);
  void drop_oldest();
  void read_identity();
  // Stages [first, end) of a block's, or nullptr if any of them lacks one (then none are
  // sent or written).
  static const uint8_t* complete_stages(const uint8_t* stages, uint32_t first, uint32_t end);
  // Seals a block not yet sealed, its epochs still waiting for a stage (its newest
  // `waiting`) given the newest output.
  void seal_with_newest(uint32_t sector, const BlockHeader& header, uint8_t* stages, uint32_t waiting);
  void seal_finishing();
  // Seals the finishing block and then the open one (oldest first).
  void seal_unsealed();
  // Of the open block's epochs, those still waiting for a stage: its newest lookahead_.
  uint32_t open_waiting() const { return lookahead_ < open_header_.count ? lookahead_ : open_header_.count; }
  // Of the finishing block's epochs, those still waiting for a stage.
  uint32_t finishing_waiting() const {
    return finishing_ && open_header_.count < lookahead_ ? lookahead_ - open_header_.count : 0;
  }
  // Slots of a block at or below the server's ack: not uploaded again.
  uint32_t acked_slots(const BlockHeader& header) const;
  uint32_t newest_sector() const { return (tail_ + used_ + sectors_ - 1) % sectors_; }
  // Ring sector i lives in partition sector i + 1 (sector 0 is the identity).
  uint32_t address(uint32_t sector, size_t offset) const {
    return static_cast<uint32_t>((sector + 1) * kSectorBytes + offset);
  }

  Flash& flash_;
  const uint32_t sectors_;  // ring sectors
  uint32_t tail_ = 0;       // oldest occupied sector
  uint32_t used_ = 0;       // sectors from tail_ to the newest block, erased holes included
  bool open_ = false;       // the newest block is still taking epochs
  BlockHeader open_header_;
  uint32_t open_night_start_ = 0;
  uint8_t open_stages_[kMaxEpochsPerBlock] = {};
  uint8_t newest_output_ = kNoStage;  // the edge model's output on the open block's newest epoch
  // A full block whose last epochs wait for outputs of the open block's first ones; it is
  // always the sector before the open block, and the open block then holds < lookahead_.
  bool finishing_ = false;
  uint32_t finishing_sector_ = 0;
  BlockHeader finishing_header_;
  uint8_t finishing_stages_[kMaxEpochsPerBlock] = {};
  uint32_t lookahead_ = 0;
  int64_t acked_seq_ = -1;  // the server's ack in this seq space (RAM: after a reboot, resent)
  uint64_t pending_ = 0;
  uint64_t dropped_ = 0;
  uint32_t corrupt_ = 0;
  uint32_t next_seq_ = 0;
  uint32_t incarnation_ = 0;
  // One sector of scratch space, so no 4 KiB buffer ever sits on the (8 KiB) task stack.
  uint8_t scratch_[kSectorBytes] = {};
};

}  // namespace noctis
