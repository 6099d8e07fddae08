#include "noctis/flash_queue.h"

#include <cstring>

namespace noctis {

namespace {
constexpr uint8_t kErasedByte = 0xFF;

bool all_erased(const uint8_t* data, size_t len) {
  for (size_t i = 0; i < len; ++i)
    if (data[i] != kErasedByte) return false;
  return true;
}
}  // namespace

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
  const uint32_t crc = get_u32(head + kOffCrc);
  if (count == 0xFFFF) {
    info.state = State::kOpen;
    return info;
  }
  info.header.count = count;
  info.flags = head[kOffFlags];
  info.header.has_stages = info.flags != 0xFF && (info.flags & kBlockFlagEdgeStages) != 0;
  if (count < 1 || count > kMaxEpochsPerBlock) {
    info.state = State::kCorrupt;
    return info;
  }
  if (crc == 0xFFFFFFFFu || info.flags == 0xFF) {
    info.state = State::kSealInterrupted;
    return info;
  }
  uint8_t block[kSectorBytes];
  const size_t size = block_bytes(count, info.header.has_stages);
  flash_.read(address(sector, 0), block, size);
  BlockHeader parsed;
  size_t parsed_size = 0;
  info.state = decode_block(block, size, &parsed, &parsed_size) == DecodeError::kNone ? State::kSealed
                                                                                     : State::kCorrupt;
  return info;
}

uint32_t FlashQueue::committed_slots(uint32_t sector) {
  // Byte 14 of a slot (hours since start) is written last and is never 255.
  for (uint32_t slot = 0; slot < static_cast<uint32_t>(kMaxEpochsPerBlock); ++slot) {
    uint8_t mark;
    flash_.read(address(sector, kBlockHeaderBytes + slot * kFeatureCount + kHoursSinceStart), &mark, 1);
    if (mark == kErasedByte) return slot;
  }
  return kMaxEpochsPerBlock;
}

void FlashQueue::write_crc(uint32_t sector, uint16_t count, bool has_stages) {
  uint8_t block[kSectorBytes];
  const size_t size = block_bytes(count, has_stages);
  flash_.read(address(sector, 0), block, size);
  uint32_t crc = crc32(block, kOffCrc);
  crc = crc32_update(crc, block + kBlockHeaderBytes, size - kBlockHeaderBytes);
  uint8_t bytes[4];
  put_u32(bytes, crc);
  flash_.program(address(sector, kOffCrc), bytes, 4);
}

void FlashQueue::seal(uint32_t sector, uint16_t count, const uint8_t* stages) {
  // Count first: from here on the slots are no longer scanned, so the stage bytes that
  // follow the last epoch cannot be mistaken for epochs. Flags stay 0xFF ("stages not
  // finished") until the stages are written.
  uint8_t count_bytes[2];
  put_u16(count_bytes, count);
  flash_.program(address(sector, kOffCount), count_bytes, 2);
  if (stages != nullptr) {
    uint8_t packed[(kMaxEpochsPerBlock + 3) / 4];
    pack_stages(stages, count, packed);
    flash_.program(address(sector, kBlockHeaderBytes + kFeatureCount * count), packed, (count + 3) / 4);
  }
  finish_seal(sector, count, stages != nullptr);
}

void FlashQueue::finish_seal(uint32_t sector, uint16_t count, bool has_stages) {
  const uint8_t flags = has_stages ? kBlockFlagEdgeStages : 0;
  flash_.program(address(sector, kOffFlags), &flags, 1);
  write_crc(sector, count, has_stages);
}

RecoveryReport FlashQueue::recover() {
  RecoveryReport report;
  open_ = false;
  pending_ = 0;
  bool any = false;
  uint32_t oldest = 0, newest = 0, oldest_seq = 0, newest_seq = 0;
  for (uint32_t sector = 0; sector < sectors_; ++sector) {
    Info info = inspect(sector);
    switch (info.state) {
      case State::kErased:
        continue;
      case State::kGarbage:
        flash_.erase_sector(sector);
        ++report.erased_sectors;
        continue;
      case State::kCorrupt:
        flash_.erase_sector(sector);
        ++report.corrupt_blocks;
        continue;
      case State::kOpen: {
        const uint32_t count = committed_slots(sector);
        if (count == 0) {
          flash_.erase_sector(sector);
          ++report.erased_sectors;
          continue;
        }
        // Its edge stages were in RAM; they are gone, the epochs are not. The server
        // can re-stage them bit-identically from the codes and the model version.
        seal(sector, static_cast<uint16_t>(count), nullptr);
        info.header.count = static_cast<uint16_t>(count);
        ++report.sealed_open_blocks;
        break;
      }
      case State::kSealInterrupted:
        // Flags still 0xFF: the stages may be half written, so the block goes without them.
        if (info.flags == 0xFF) finish_seal(sector, info.header.count, false), info.header.has_stages = false;
        else write_crc(sector, info.header.count, info.header.has_stages);
        ++report.completed_seals;
        break;
      case State::kSealed:
        break;
    }
    ++report.blocks;
    pending_ += info.header.count;
    if (!any || info.header.first_seq < oldest_seq) oldest = sector, oldest_seq = info.header.first_seq;
    if (!any || info.header.first_seq >= newest_seq) newest = sector, newest_seq = info.header.first_seq;
    any = true;
  }
  if (any) {
    Info newest_info = inspect(newest);
    next_seq_ = newest_info.header.first_seq + newest_info.header.count;
  }
  tail_ = any ? oldest : 0;
  used_ = any ? (newest + sectors_ - oldest) % sectors_ + 1 : 0;
  report.pending_epochs = pending_;
  return report;
}

void FlashQueue::drop_oldest() {
  Info info = inspect(tail_);
  if (info.state == State::kSealed || info.state == State::kSealInterrupted) {
    dropped_ += info.header.count;
    pending_ -= info.header.count;
  }
  flash_.erase_sector(tail_);
  tail_ = (tail_ + 1) % sectors_;
  --used_;
}

void FlashQueue::open_block(const EpochRecord& epoch, uint32_t model_version) {
  // Keep one sector free: the ring never writes into the block it would erase next.
  if (used_ >= sectors_ - 1) drop_oldest();
  const uint32_t sector = (tail_ + used_) % sectors_;
  uint8_t sector_bytes[kSectorBytes];
  flash_.read(address(sector, 0), sector_bytes, kSectorBytes);
  if (!all_erased(sector_bytes, kSectorBytes)) flash_.erase_sector(sector);  // a cut-short erase
  uint8_t fields[12];
  put_u32(fields, epoch.seq);
  put_u32(fields + 4, epoch.start);
  put_u32(fields + 8, model_version);
  flash_.program(address(sector, kOffFirstSeq), fields, sizeof fields);
  uint8_t magic[5] = {kBlockMagic[0], kBlockMagic[1], kBlockMagic[2], kBlockMagic[3], kBlockFormatVersion};
  flash_.program(address(sector, 0), magic, sizeof magic);
  ++used_;
  open_ = true;
  open_header_ = BlockHeader{epoch.seq, epoch.start, model_version, 0, false};
}

const uint8_t* FlashQueue::complete_open_stages() const {
  for (int i = 0; i < open_header_.count; ++i)
    if (open_stages_[i] == kNoStage) return nullptr;
  return open_stages_;
}

void FlashQueue::append(const EpochRecord& epoch, uint32_t model_version) {
  const bool continues = open_ && open_header_.count < kMaxEpochsPerBlock &&
                         epoch.seq == open_header_.first_seq + open_header_.count &&
                         epoch.start == open_header_.first_start + static_cast<uint32_t>(kEpochSeconds) * open_header_.count &&
                         model_version == open_header_.model_version;
  if (open_ && !continues) {
    seal(newest_sector(), open_header_.count, complete_open_stages());
    open_ = false;
  }
  if (!open_) open_block(epoch, model_version);
  const uint32_t sector = newest_sector();
  const size_t slot = kBlockHeaderBytes + static_cast<size_t>(kFeatureCount) * open_header_.count;
  flash_.program(address(sector, slot), epoch.codes, kHoursSinceStart);
  flash_.program(address(sector, slot + kHoursSinceStart), &epoch.codes[kHoursSinceStart], 1);
  open_stages_[open_header_.count] = epoch.stage;
  ++open_header_.count;
  ++pending_;
  next_seq_ = epoch.seq + 1;
}

size_t FlashQueue::read_batch(uint8_t* out, size_t capacity, int64_t* last_seq) {
  size_t written = 0;
  *last_seq = -1;
  for (uint32_t i = 0; i < used_; ++i) {
    const uint32_t sector = (tail_ + i) % sectors_;
    const bool is_open = open_ && i == used_ - 1;
    uint8_t block[kSectorBytes];
    size_t size = 0;
    BlockHeader header;
    if (is_open) {
      // The open block leaves in the upload format without being sealed.
      flash_.read(address(sector, kBlockHeaderBytes), block, kFeatureCount * open_header_.count);
      const uint8_t* stages = complete_open_stages();
      header = open_header_;
      if (block_bytes(header.count, stages != nullptr) > capacity - written) break;
      size = encode_block(header, block, stages, out + written, capacity - written);
    } else {
      Info info = inspect(sector);
      if (info.state != State::kSealed) continue;  // an erased hole
      header = info.header;
      size = block_bytes(header.count, header.has_stages);
      if (size > capacity - written) break;
      flash_.read(address(sector, 0), out + written, size);
    }
    written += size;
    *last_seq = static_cast<int64_t>(header.first_seq) + header.count - 1;
  }
  return written;
}

void FlashQueue::acknowledge(int64_t ack_seq) {
  while (used_ > 0) {
    const bool is_open = open_ && used_ == 1;
    uint32_t first = 0, count = 0;
    if (is_open) {
      first = open_header_.first_seq, count = open_header_.count;
    } else {
      Info info = inspect(tail_);
      if (info.state == State::kErased) {  // a hole left by a corrupt block
        tail_ = (tail_ + 1) % sectors_;
        --used_;
        continue;
      }
      first = info.header.first_seq, count = info.header.count;
    }
    if (static_cast<int64_t>(first) + count - 1 > ack_seq) return;
    flash_.erase_sector(tail_);
    pending_ -= count;
    tail_ = (tail_ + 1) % sectors_;
    --used_;
    if (is_open) open_ = false;
  }
}

}  // namespace noctis
