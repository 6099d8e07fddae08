#include "noctis/sync.h"

namespace noctis {

uint32_t SyncClient::backoff_ms(uint32_t retry_after_s) {
  // Full jitter (a uniform draw below an exponential ceiling) spreads a fleet that lost
  // the server at the same moment, instead of having it return in lockstep.
  const uint32_t shift = failures_ < 20 ? failures_ : 20;
  uint64_t ceiling = static_cast<uint64_t>(config_.base_delay_ms) << shift;
  if (ceiling > config_.max_delay_ms) ceiling = config_.max_delay_ms;
  // Scale the 32-bit draw onto 0..ceiling (no modulo bias).
  uint64_t delay = (static_cast<uint64_t>(random_.next()) * (ceiling + 1)) >> 32;
  const uint64_t asked = static_cast<uint64_t>(retry_after_s) * 1000u;
  if (delay < asked) delay = asked;
  return static_cast<uint32_t>(delay);
}

uint32_t SyncClient::step(uint64_t now_ms) {
  if (now_ms < not_before_ms_) return static_cast<uint32_t>(not_before_ms_ - now_ms);
  if (needs_token_) return config_.idle_poll_ms;
  int64_t last_seq = -1;
  const size_t capacity = config_.max_body_bytes < sizeof body_ ? config_.max_body_bytes : sizeof body_;
  const size_t len = queue_.read_batch(body_, capacity, &last_seq);
  if (len == 0) return config_.idle_poll_ms;

  const UploadResult result = transport_.upload(body_, len);
  if (result.kind == UploadResult::Kind::kAcknowledged) {
    failures_ = 0;
    // Erase only what the server says is stored: its ack_seq, never our own last_seq.
    queue_.acknowledge(result.ack_seq);
    const bool more = queue_.pending_epochs() > 0 && result.ack_seq >= last_seq;
    return more ? 0 : config_.idle_poll_ms;
  }
  if (result.kind == UploadResult::Kind::kHttpError && result.status == 401) {
    needs_token_ = true;  // the board glue fetches a new device token, then calls token_refreshed()
    return 0;
  }
  const uint32_t delay = backoff_ms(result.retry_after_s);
  ++failures_;
  not_before_ms_ = now_ms + delay;
  return delay;
}

}  // namespace noctis
