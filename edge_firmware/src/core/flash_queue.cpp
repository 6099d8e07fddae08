#include "noctis/flash_queue.h"

#include <cstring>

namespace noctis {

namespace {
constexpr uint8_t kErasedByte = 0xFF;
constexpr uint8_t kIdentityMagic[4] = {'N', 'C', 'T', 'I'};
constexpr size_t kIdentityBytes = 16;  // magic, version, 3 zero bytes, incarnation, CRC-32

bool all_erased(const uint8_t* data, size_t len) {
  for (size_t i = 0; i < len; ++i)
    if (data[i] != kErasedByte) return false;
  return true;
}

// A torn program leaves some of the intended 0-bits at 1; programming the intended value
// again completes it. That is possible exactly when no bit of it is 1 where flash has 0.
bool completable(uint32_t stored, uint32_t intended) { return (intended & ~stored) == 0; }
}  // namespace

void FlashQueue::read_identity() {
  uint8_t record[kIdentityBytes];
  flash_.read(0, record, sizeof record);
  incarnation_ = 0;
  if (std::memcmp(record, kIdentityMagic, 4) == 0 && record[4] == 1 && crc32(record, 12) == get_u32(record + 12))
    incarnation_ = get_u32(record + 8);
}

void FlashQueue::format(uint32_t incarnation) {
  for (uint32_t sector = 0; sector < sectors_; ++sector) {
    flash_.read(address(sector, 0), scratch_, kBlockHeaderBytes);
    if (!all_erased(scratch_, kBlockHeaderBytes)) flash_.erase_sector(sector + 1);
  }
  flash_.erase_sector(0);
  uint8_t record[kIdentityBytes] = {kIdentityMagic[0], kIdentityMagic[1], kIdentityMagic[2], kIdentityMagic[3], 1};
  put_u32(record + 8, incarnation);
  put_u32(record + 12, crc32(record, 12));
  flash_.program(0, record, sizeof record);
  incarnation_ = incarnation;
  tail_ = used_ = 0;
  open_ = finishing_ = false;
  pending_ = 0;
  next_seq_ = 0;
  acked_seq_ = -1;
}

FlashQueue::Info FlashQueue::inspect(uint32_t sector) {
  uint8_t head[kBlockHeaderBytes];
  flash_.read(address(sector, 0), head, sizeof head);
  Info info;
  if (all_erased(head, sizeof head)) return info;  // kErased
  if (std::memcmp(head, kBlockMagic, 4) != 0 || head[kOffVersion] != kBlockFormatVersion) {
    info.state = State::kGarbage;  // a header write cut short: no epoch was committed behind it
    return info;
  }
  info.header.first_seq = get_u32(head + kOffFirstSeq);
  info.header.first_start = get_u32(head + kOffFirstStart);
  info.header.model_version = get_u32(head + kOffModel);
  const uint16_t count = get_u16(head + kOffCount);
  const uint8_t flags = head[kOffFlags];
  const uint32_t crc = get_u32(head + kOffCrc);
  if (count == 0xFFFF && flags == 0xFF && crc == 0xFFFFFFFFu) {
    info.state = State::kOpen;
    return info;
  }
  info.header.count = count;
  info.header.has_stages = flags == kBlockFlagEdgeStages;
  const bool sealed = count >= 1 && count <= kMaxEpochsPerBlock && (flags == 0 || flags == kBlockFlagEdgeStages) &&
                      upload_crc(sector, info.header) == crc;
  info.state = sealed ? State::kSealed : State::kUnfinished;
  return info;
}

uint32_t FlashQueue::committed_slots(uint32_t sector) {
  // Slots are committed in order, each by clearing its bit after its codes are written.
  uint8_t bits[kSlotsOffset - kCommitOffset];
  flash_.read(address(sector, kCommitOffset), bits, sizeof bits);
  for (uint32_t slot = 0; slot < static_cast<uint32_t>(kMaxEpochsPerBlock); ++slot)
    if (bits[slot / 8] & (1u << (slot % 8))) return slot;
  return kMaxEpochsPerBlock;
}

void FlashQueue::load_block(uint32_t sector, const BlockHeader& header) {
  flash_.read(address(sector, 0), scratch_, kBlockHeaderBytes);
  uint8_t night[4];
  flash_.read(address(sector, kOffNightStart), night, sizeof night);
  const uint32_t night_start = get_u32(night);
  // Read the 14-byte slots packed, then spread them to 15 bytes from the last one down:
  // slot i moves from 14 i to 15 i, so no slot is overwritten before it has moved.
  uint8_t* codes = scratch_ + kBlockHeaderBytes;
  flash_.read(address(sector, kSlotsOffset), codes, kStoredCodes * header.count);
  for (int i = header.count - 1; i >= 0; --i) {
    std::memmove(codes + static_cast<size_t>(kFeatureCount) * i, codes + kStoredCodes * i, kStoredCodes);
    codes[static_cast<size_t>(kFeatureCount) * i + kHoursSinceStart] =
        hours_code(header.first_start + static_cast<uint32_t>(kEpochSeconds) * i, night_start);
  }
  if (header.has_stages) flash_.read(address(sector, kStagesOffset), scratch_ + kStagesOffset, (header.count + 3) / 4);
}

uint32_t FlashQueue::upload_crc(uint32_t sector, const BlockHeader& header) {
  // The CRC of the block as encode_block() writes it for an upload (noctis_contract/blocks.py).
  load_block(sector, header);
  uint8_t head[kBlockHeaderBytes];
  std::memcpy(head, scratch_, kBlockHeaderBytes);
  head[kOffFlags] = header.has_stages ? kBlockFlagEdgeStages : 0;
  put_u16(head + kOffCount, header.count);
  uint32_t crc = crc32(head, kOffCrc);
  crc = crc32_update(crc, scratch_ + kBlockHeaderBytes, static_cast<size_t>(kFeatureCount) * header.count);
  if (header.has_stages) crc = crc32_update(crc, scratch_ + kStagesOffset, (header.count + 3) / 4);
  return crc;
}

bool FlashQueue::complete_seal(uint32_t sector, BlockHeader* header) {
  // Each seal field is set to what the committed slots say it must be, if the stored bits
  // allow it (a torn or never-made write); otherwise the sector holds damage, not a cut.
  uint8_t head[kBlockHeaderBytes];
  flash_.read(address(sector, 0), head, sizeof head);
  const uint16_t count = static_cast<uint16_t>(committed_slots(sector));
  if (count == 0 || !completable(get_u16(head + kOffCount), count)) return false;
  uint8_t count_bytes[2];
  put_u16(count_bytes, count);
  flash_.program(address(sector, kOffCount), count_bytes, 2);
  // Stages are trusted only if their flag was fully written after them.
  const bool has_stages = head[kOffFlags] == kBlockFlagEdgeStages;
  const uint8_t flags = has_stages ? kBlockFlagEdgeStages : 0;
  flash_.program(address(sector, kOffFlags), &flags, 1);
  header->count = count;
  header->has_stages = has_stages;
  const uint32_t crc = upload_crc(sector, *header);
  if (!completable(get_u32(head + kOffCrc), crc)) return false;
  uint8_t crc_bytes[4];
  put_u32(crc_bytes, crc);
  flash_.program(address(sector, kOffCrc), crc_bytes, 4);
  return true;
}

void FlashQueue::seal(uint32_t sector, BlockHeader header, const uint8_t* stages) {
  const uint16_t count = header.count;
  header.has_stages = stages != nullptr;
  if (stages != nullptr) {
    uint8_t packed[(kMaxEpochsPerBlock + 3) / 4];
    pack_stages(stages, count, packed);
    flash_.program(address(sector, kStagesOffset), packed, (count + 3) / 4);
  }
  uint8_t count_bytes[2];
  put_u16(count_bytes, count);
  flash_.program(address(sector, kOffCount), count_bytes, 2);
  const uint8_t flags = stages != nullptr ? kBlockFlagEdgeStages : 0;
  flash_.program(address(sector, kOffFlags), &flags, 1);
  uint8_t crc_bytes[4];
  put_u32(crc_bytes, upload_crc(sector, header));
  flash_.program(address(sector, kOffCrc), crc_bytes, 4);
}

RecoveryReport FlashQueue::recover() {
  RecoveryReport report;
  read_identity();
  open_ = finishing_ = false;
  pending_ = 0;
  acked_seq_ = -1;
  bool any = false;
  uint32_t oldest = 0, newest = 0, oldest_seq = 0, newest_seq = 0, newest_end = 0;
  for (uint32_t sector = 0; sector < sectors_; ++sector) {
    Info info = inspect(sector);
    switch (info.state) {
      case State::kErased:
        continue;
      case State::kGarbage:
        flash_.erase_sector(sector + 1);
        ++report.erased_sectors;
        continue;
      case State::kOpen:
        if (committed_slots(sector) == 0) {
          flash_.erase_sector(sector + 1);
          ++report.erased_sectors;
          continue;
        }
        // Its edge stages were in RAM; they are gone, the epochs are not. The server
        // can re-stage them bit-identically from the codes and the model version.
        complete_seal(sector, &info.header);
        ++report.sealed_open_blocks;
        break;
      case State::kUnfinished:
        if (!complete_seal(sector, &info.header)) {
          flash_.erase_sector(sector + 1);
          ++report.corrupt_blocks;
          ++corrupt_;
          continue;
        }
        ++report.completed_seals;
        break;
      case State::kSealed:
        break;
    }
    ++report.blocks;
    pending_ += info.header.count;
    if (!any || info.header.first_seq < oldest_seq) oldest = sector, oldest_seq = info.header.first_seq;
    if (!any || info.header.first_seq >= newest_seq) {
      newest = sector, newest_seq = info.header.first_seq;
      newest_end = info.header.first_seq + info.header.count;
    }
    any = true;
  }
  next_seq_ = any ? newest_end : 0;
  tail_ = any ? oldest : 0;
  used_ = any ? (newest + sectors_ - oldest) % sectors_ + 1 : 0;
  report.pending_epochs = pending_;
  return report;
}

void FlashQueue::drop_oldest() {
  Info info = inspect(tail_);
  if (info.state == State::kSealed) {
    const uint32_t unacked = info.header.count - acked_slots(info.header);
    dropped_ += unacked;
    pending_ -= unacked;
  }
  flash_.erase_sector(tail_ + 1);
  tail_ = (tail_ + 1) % sectors_;
  --used_;
}

void FlashQueue::open_block(const EpochRecord& epoch, uint32_t model_version) {
  // Keep one sector free: the ring never writes into the block it would erase next.
  if (used_ >= sectors_ - 1) drop_oldest();
  const uint32_t sector = (tail_ + used_) % sectors_;
  flash_.read(address(sector, 0), scratch_, kSectorBytes);
  if (!all_erased(scratch_, kSectorBytes)) flash_.erase_sector(sector + 1);  // a cut-short erase
  uint8_t fields[12];
  put_u32(fields, epoch.seq);
  put_u32(fields + 4, epoch.start);
  put_u32(fields + 8, model_version);
  flash_.program(address(sector, kOffFirstSeq), fields, sizeof fields);
  uint8_t night[4];
  put_u32(night, epoch.night_start);
  flash_.program(address(sector, kOffNightStart), night, sizeof night);
  uint8_t magic[5] = {kBlockMagic[0], kBlockMagic[1], kBlockMagic[2], kBlockMagic[3], kBlockFormatVersion};
  flash_.program(address(sector, 0), magic, sizeof magic);
  ++used_;
  open_ = true;
  open_header_ = BlockHeader{epoch.seq, epoch.start, model_version, 0, false};
  open_night_start_ = epoch.night_start;
}

const uint8_t* FlashQueue::complete_stages(const uint8_t* stages, uint32_t first, uint32_t end) {
  for (uint32_t i = first; i < end; ++i)
    if (stages[i] == kNoStage) return nullptr;
  return stages + first;
}

void FlashQueue::seal_with_newest(uint32_t sector, const BlockHeader& header, uint8_t* stages, uint32_t waiting) {
  for (uint32_t i = header.count - waiting; i < header.count; ++i) stages[i] = newest_output_;
  seal(sector, header, complete_stages(stages, 0, header.count));
}

void FlashQueue::seal_finishing() {
  seal_with_newest(finishing_sector_, finishing_header_, finishing_stages_, finishing_waiting());
  finishing_ = false;
}

void FlashQueue::seal_unsealed() {
  if (finishing_) seal_finishing();
  if (open_) {
    seal_with_newest(newest_sector(), open_header_, open_stages_, open_waiting());
    open_ = false;
  }
}

uint32_t FlashQueue::acked_slots(const BlockHeader& header) const {
  if (acked_seq_ < static_cast<int64_t>(header.first_seq)) return 0;
  const int64_t slots = acked_seq_ - header.first_seq + 1;
  return slots < header.count ? static_cast<uint32_t>(slots) : header.count;
}

uint32_t FlashQueue::held_back() const {
  // Waiting epochs the server already holds (from before a reboot) are not held back.
  const auto unacked = [this](uint32_t waiting, const BlockHeader& header) {
    const uint32_t left = header.count - acked_slots(header);
    return waiting < left ? waiting : left;
  };
  return (open_ ? unacked(open_waiting(), open_header_) : 0) +
         (finishing_ ? unacked(finishing_waiting(), finishing_header_) : 0);
}

void FlashQueue::append(const EpochRecord& epoch, uint32_t model_version) {
  const bool same_night = open_ && epoch.seq == open_header_.first_seq + open_header_.count &&
                          epoch.start == open_header_.first_start + static_cast<uint32_t>(kEpochSeconds) * open_header_.count &&
                          model_version == open_header_.model_version && epoch.night_start == open_night_start_;
  if (open_ && !(same_night && open_header_.count < kMaxEpochsPerBlock)) {
    // Full mid-night: the block finishes once the next block's first outputs give its last
    // epochs their stages. Not in a ring of two sectors, where the next block would
    // take the full one's place.
    if (same_night && lookahead_ > 0 && sectors_ > 2) {
      finishing_ = true;
      finishing_sector_ = newest_sector();
      finishing_header_ = open_header_;
      std::memcpy(finishing_stages_, open_stages_, sizeof finishing_stages_);
      open_ = false;
    } else {
      seal_unsealed();
    }
  }
  if (!open_) open_block(epoch, model_version);
  const uint32_t sector = newest_sector();
  const uint32_t slot = open_header_.count;
  flash_.program(address(sector, kSlotsOffset + kStoredCodes * slot), epoch.codes, kStoredCodes);
  // The commit: one bit, so a torn write either commits the slot or leaves it out.
  const uint8_t mark = static_cast<uint8_t>(~(1u << (slot % 8)));
  flash_.program(address(sector, kCommitOffset + slot / 8), &mark, 1);
  // This epoch's output is the stage of the epoch lookahead_ back; its own comes later.
  open_stages_[slot] = kNoStage;
  if (slot >= lookahead_) {
    open_stages_[slot - lookahead_] = epoch.stage;
  } else if (finishing_) {
    finishing_stages_[kMaxEpochsPerBlock + slot - lookahead_] = epoch.stage;
  }
  newest_output_ = epoch.stage;
  ++open_header_.count;
  ++pending_;
  next_seq_ = epoch.seq + 1;
  if (finishing_ && finishing_waiting() == 0) seal_finishing();  // its last epoch has its stage now
}

size_t FlashQueue::read_batch(uint8_t* out, size_t capacity, uint32_t max_epochs, BatchInfo* info) {
  *info = BatchInfo{};
  info->held_from = next_seq_;
  info->reason_below = dropped_ > 0 ? GapReason::kQueueFull : GapReason::kUnknown;
  size_t written = 0;
  bool first = true;
  for (uint32_t i = 0; i < used_; ++i) {
    const uint32_t sector = (tail_ + i) % sectors_;
    const bool is_open = open_ && i == used_ - 1;
    const bool is_finishing = finishing_ && sector == finishing_sector_;
    BlockHeader header;
    if (is_open || is_finishing) {
      header = is_open ? open_header_ : finishing_header_;
      load_block(sector, header);
    } else {
      Info block = inspect(sector);  // checking a sealed block's CRC leaves its upload view in scratch_
      if (block.state != State::kSealed) continue;  // an erased hole
      header = block.header;
    }
    // The view: slots [skip, end), past what the server acknowledged and (in an unsealed
    // block) short of the epochs still waiting for their stage.
    const uint32_t skip = acked_slots(header);
    const uint32_t end = header.count - (is_open ? open_waiting() : is_finishing ? finishing_waiting() : 0);
    if (skip >= end) continue;
    BlockHeader view = header;
    view.first_seq += skip;
    view.first_start += static_cast<uint32_t>(kEpochSeconds) * skip;
    view.count = static_cast<uint16_t>(end - skip);
    const uint8_t* stages = is_open        ? complete_stages(open_stages_, skip, end)
                            : is_finishing ? complete_stages(finishing_stages_, skip, end)
                                           : nullptr;
    if (first) info->held_from = view.first_seq;
    const bool unsealed = is_open || is_finishing;
    const size_t size = block_bytes(view.count, unsealed ? stages != nullptr : header.has_stages);
    if (size > capacity - written || info->epochs + view.count > max_epochs) break;
    uint8_t stored_stages[kMaxEpochsPerBlock];
    if (!unsealed && header.has_stages) {
      for (int e = 0; e < view.count; ++e) stored_stages[e] = stage_at(scratch_ + kStagesOffset, skip + e);
      stages = stored_stages;
    }
    const uint8_t* codes = scratch_ + kBlockHeaderBytes + static_cast<size_t>(kFeatureCount) * skip;
    written += encode_block(view, codes, stages, out + written, capacity - written);
    if (!first && view.first_seq > info->last_seq + 1 && info->gap_count < kMaxBatchGaps) {
      const uint32_t hole_first = static_cast<uint32_t>(info->last_seq + 1);
      info->gaps[info->gap_count++] = SeqGap{hole_first, view.first_seq - hole_first, GapReason::kCorrupt};
    }
    first = false;
    info->epochs += view.count;
    ++info->blocks;
    info->last_seq = static_cast<int64_t>(view.first_seq) + view.count - 1;
  }
  return written;
}

void FlashQueue::acknowledge(int64_t ack_seq) {
  if (ack_seq <= acked_seq_) return;
  while (used_ > 0) {
    const bool is_open = open_ && used_ == 1;
    const bool is_finishing = finishing_ && tail_ == finishing_sector_;
    BlockHeader header;
    if (is_open || is_finishing) {
      header = is_open ? open_header_ : finishing_header_;
    } else {
      Info info = inspect(tail_);
      if (info.state == State::kErased) {  // a hole left by a corrupt block
        tail_ = (tail_ + 1) % sectors_;
        --used_;
        continue;
      }
      header = info.header;
    }
    const uint32_t acked_before = acked_slots(header);
    if (static_cast<int64_t>(header.first_seq) + header.count - 1 > ack_seq) {
      // Partly acknowledged: kept whole, its acknowledged epochs no longer pending.
      const uint32_t acked_now = ack_seq >= header.first_seq ? static_cast<uint32_t>(ack_seq - header.first_seq + 1) : 0;
      if (acked_now > acked_before) pending_ -= acked_now - acked_before;
      break;
    }
    flash_.erase_sector(tail_ + 1);
    pending_ -= header.count - acked_before;
    tail_ = (tail_ + 1) % sectors_;
    --used_;
    if (is_open) open_ = false;
    if (is_finishing) finishing_ = false;
  }
  acked_seq_ = ack_seq;
}

}  // namespace noctis
