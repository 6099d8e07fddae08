#include "noctis/sync.h"

#include <cstdlib>
#include <cstring>

namespace noctis {

namespace {
// The integer after "key": in a compact JSON object; false if the key is absent.
bool json_int(const char* json, size_t len, const char* key, int64_t* out) {
  const size_t key_len = std::strlen(key);
  for (size_t i = 0; i + key_len + 3 <= len; ++i) {
    if (json[i] != '"' || std::memcmp(json + i + 1, key, key_len) != 0 || json[i + 1 + key_len] != '"' ||
        json[i + 2 + key_len] != ':')
      continue;
    char digits[24] = {};
    size_t n = 0, at = i + 3 + key_len;
    while (at < len && n + 1 < sizeof digits && (json[at] == '-' || (json[at] >= '0' && json[at] <= '9')))
      digits[n++] = json[at++];
    if (n == 0) return false;
    *out = std::strtoll(digits, nullptr, 10);
    return true;
  }
  return false;
}
}  // namespace

bool parse_ack(const char* json, size_t len, UploadResult* result) {
  int64_t value = 0;
  if (!json_int(json, len, "ack_seq", &value)) return false;
  result->ack_seq = value;
  if (!json_int(json, len, "incarnation", &value) || value < 0 || value > 0xFFFFFFFFll) return false;
  result->incarnation = static_cast<uint32_t>(value);
  if (json_int(json, len, "max_batch_epochs", &value) && value > 0 && value < (1ll << 31))
    result->max_batch_epochs = static_cast<uint32_t>(value);
  if (json_int(json, len, "max_body_bytes", &value) && value > 0 && value < (1ll << 31))
    result->max_body_bytes = static_cast<uint32_t>(value);
  return true;
}

uint32_t SyncClient::backoff(uint64_t now_ms, uint32_t retry_after_s) {
  // Full jitter (a uniform draw below an exponential ceiling) spreads a fleet that lost
  // the server at the same moment, instead of having it return in lockstep.
  const uint32_t shift = failures_ < 20 ? failures_ : 20;
  uint64_t ceiling = static_cast<uint64_t>(config_.base_delay_ms) << shift;
  if (ceiling > config_.max_delay_ms) ceiling = config_.max_delay_ms;
  // Scale the 32-bit draw onto 0..ceiling (no modulo bias).
  uint64_t delay = (static_cast<uint64_t>(random_.next()) * (ceiling + 1)) >> 32;
  const uint64_t asked = static_cast<uint64_t>(retry_after_s) * 1000u;
  if (delay < asked) delay = asked;
  ++failures_;
  not_before_ms_ = now_ms + delay;
  return static_cast<uint32_t>(delay);
}

void SyncClient::adopt_limits(const UploadResult& result) {
  size_t bytes = config_.max_body_bytes < kMaxBodyBytes ? config_.max_body_bytes : kMaxBodyBytes;
  if (result.max_body_bytes > 0 && result.max_body_bytes < bytes) bytes = result.max_body_bytes;
  if (refused_bytes_ <= bytes) bytes = refused_bytes_ - 1;  // something on the way refuses more
  body_limit_ = bytes;
  epoch_limit_ = config_.max_batch_epochs;
  if (result.max_batch_epochs > 0 && result.max_batch_epochs < epoch_limit_) epoch_limit_ = result.max_batch_epochs;
}

uint32_t SyncClient::step(uint64_t now_ms) {
  if (now_ms < not_before_ms_) return static_cast<uint32_t>(not_before_ms_ - now_ms);
  if (queue_.ready_epochs() == 0) return config_.idle_poll_ms;  // (epochs waiting for their stage wait here)
  if (needs_token_) {
    if (!transport_.refresh_token()) return backoff(now_ms, 0);
    needs_token_ = false;
  }
  // Blocks go behind room for the largest session record; the record is written just
  // in front of them once the batch (and so its gaps) is known.
  uint8_t* blocks = body_ + kSessionMaxBytes;
  const size_t room = body_limit_ > kSessionMaxBytes ? body_limit_ - kSessionMaxBytes : 0;
  const size_t len = queue_.read_batch(blocks, room, epoch_limit_, &batch_);
  if (len == 0) return backoff(now_ms, 0);  // limits below one block: cannot happen with a v2 server
  DeviceHealth health;
  health.boot_count = boot_count_;
  health.dropped_epochs = static_cast<uint32_t>(queue_.dropped_epochs());
  health.corrupt_blocks = queue_.corrupt_blocks();
  health.queue_pending = static_cast<uint32_t>(queue_.pending_epochs());
  health.queue_capacity = queue_.capacity_epochs();
  health.firmware_version = firmware_version_;
  health.consecutive_failures = failures_;
  health.model_version = model_version_;
  health.free_heap = free_heap_;
  health.rssi_dbm = rssi_dbm_;
  const size_t record_len = kSessionFixedBytes + kSessionGapBytes * batch_.gap_count;
  uint8_t* body = blocks - record_len;
  encode_session(incarnation_, batch_, health, body, record_len);

  const UploadResult result = transport_.upload(body, record_len + len);
  if (result.kind == UploadResult::Kind::kAcknowledged && result.incarnation != incarnation_) {
    // A watermark of some other seq space (a proxy's cache, a confused server): erasing
    // by it could lose epochs the server never stored.
    return backoff(now_ms, 0);
  }
  if (result.kind == UploadResult::Kind::kAcknowledged) {
    adopt_limits(result);
    // Erase only what the server says is stored: its ack_seq, never our own last seq.
    queue_.acknowledge(result.ack_seq);
    if (result.ack_seq < batch_.last_seq) return backoff(now_ms, 0);  // held back: do not hammer
    failures_ = 0;
    return queue_.ready_epochs() > 0 ? 0 : config_.idle_poll_ms;
  }
  if (result.kind == UploadResult::Kind::kHttpError && result.status == 401) {
    needs_token_ = true;  // the token expired or was revoked: fetch a new one first
    return backoff(now_ms, 0);
  }
  if (result.kind == UploadResult::Kind::kHttpError && result.status == 413 && batch_.blocks > 1) {
    // Too large for the server or something in between: split at once, remember the size.
    refused_bytes_ = record_len + len;
    body_limit_ = (record_len + len) / 2 > kSessionMaxBytes + kSectorBytes ? (record_len + len) / 2
                                                                           : kSessionMaxBytes + kSectorBytes;
    epoch_limit_ = batch_.epochs / 2 > static_cast<uint32_t>(kMaxEpochsPerBlock) ? batch_.epochs / 2
                                                                                   : kMaxEpochsPerBlock;
    return 0;
  }
  return backoff(now_ms, result.retry_after_s);
}

}  // namespace noctis
