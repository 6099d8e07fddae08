#include "noctis/device.h"

#include <cmath>
#include <cstring>

#include "noctis/codec.h"

namespace noctis {

Device::Device(Flash& flash, Transport& transport, RandomSource& random, KeyValueStore& store, Stager& stager,
               DeviceConfig config)
    : queue_(flash), sync_(queue_, transport, random, config.sync), random_(random), store_(store), stager_(stager),
      config_(config) {
  queue_.set_lookahead(config.lookahead_epochs);
}

RecoveryReport Device::boot() {
  const RecoveryReport report = queue_.recover();
  const uint32_t kept = store_.get_u32("incarnation", 0);
  const uint32_t on_flash = queue_.incarnation();
  // The flash's identity wins when it still holds epochs of that space, or when NVS agrees
  // (then NVS's next seq covers epochs already acknowledged and erased).
  if (on_flash != 0 && (queue_.pending_epochs() > 0 || kept == on_flash)) {
    incarnation_ = on_flash;
    const uint32_t from_store = kept == on_flash ? store_.get_u32("next_seq", 0) : 0;
    next_seq_ = queue_.next_seq() > from_store ? queue_.next_seq() : from_store;
  } else {
    // Nothing tells where the old seq space ended: begin a new one that the server
    // places after everything it holds.
    do incarnation_ = random_.next();
    while (incarnation_ == 0);
    queue_.format(incarnation_);
    next_seq_ = 0;
  }
  store_.set_u32("incarnation", incarnation_);
  store_.set_u32("next_seq", next_seq_);
  const uint32_t boots = store_.get_u32("boots", 0) + 1;
  store_.set_u32("boots", boots);
  night_start_ = store_.get_u32("night_start", 0);
  last_start_ = store_.get_u32("last_start", 0);
  sync_.set_identity(incarnation_, boots, config_.firmware_version, config_.model_version);
  return report;
}

void Device::set_time(uint64_t now_ms, uint32_t unix_s) {
  anchored_ = true;
  anchor_ms_ = now_ms;
  anchor_unix_ = unix_s;
  for (; unanchored_count_ > 0; --unanchored_count_) {
    Unanchored& e = unanchored_[unanchored_first_];
    const int64_t offset_s = (static_cast<int64_t>(e.start_ms) - static_cast<int64_t>(anchor_ms_)) / 1000;
    store(static_cast<uint32_t>(anchor_unix_ + offset_s), e.codes, e.present);
    unanchored_first_ = (unanchored_first_ + 1) % kMaxUnanchored;
  }
}

void Device::record_epoch(uint64_t epoch_start_ms, const double features[kFeatureCount]) {
  uint8_t codes[kFeatureCount];
  quantize_epoch(features, codes);
  const bool present = !std::isnan(features[kPresenceRatio]) && features[kPresenceRatio] >= kPresentRatio;
  if (anchored_) {
    const int64_t offset_s = (static_cast<int64_t>(epoch_start_ms) - static_cast<int64_t>(anchor_ms_)) / 1000;
    store(static_cast<uint32_t>(anchor_unix_ + offset_s), codes, present);
    return;
  }
  if (unanchored_count_ == kMaxUnanchored) {  // two hours without a clock: drop the oldest
    unanchored_first_ = (unanchored_first_ + 1) % kMaxUnanchored;
    --unanchored_count_;
    ++unanchored_dropped_;
  }
  Unanchored& slot = unanchored_[(unanchored_first_ + unanchored_count_++) % kMaxUnanchored];
  slot.start_ms = epoch_start_ms;
  std::memcpy(slot.codes, codes, kFeatureCount);
  slot.present = present;
}

void Device::store(uint32_t start, uint8_t codes[kFeatureCount], bool present) {
  // A new night after a long absence (or a long power-off); a short one continues it.
  const bool returned = present && absent_since_ != 0 && start - absent_since_ >= kNightBreakSeconds;
  const bool night_began =
      night_start_ == 0 || start < night_start_ || start - last_start_ >= kNightBreakSeconds || returned;
  if (night_began) {
    night_start_ = start;
    store_.set_u32("night_start", night_start_);
  }
  if (present) absent_since_ = 0;
  else if (absent_since_ == 0) absent_since_ = start;
  codes[kHoursSinceStart] = hours_code(start, night_start_);
  EpochRecord record;
  record.seq = next_seq_;
  record.start = start;
  record.night_start = night_start_;
  std::memcpy(record.codes, codes, kFeatureCount);
  record.stage = stager_.stage(record.codes, night_began);
  queue_.append(record, config_.model_version);
  ++next_seq_;
  last_start_ = start;
  // The next seq survives a reboot, so seqs never repeat (the queue also remembers it).
  store_.set_u32("next_seq", next_seq_);
  store_.set_u32("last_start", last_start_);
}

uint32_t Device::sync(uint64_t now_ms) { return sync_.step(now_ms); }

}  // namespace noctis
