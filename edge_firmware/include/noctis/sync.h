// The sync state machine: drain the flash queue oldest-first to the server, erase only
// what the server acknowledged, back off with full jitter, honour Retry-After.
// Every epoch goes to flash first, so "live upload" and "drain after an outage" are
// the same path: when the link is up the queue is a few epochs deep.
#pragma once
#include <cstddef>
#include <cstdint>

#include "noctis/flash_queue.h"

namespace noctis {

struct UploadResult {
  enum class Kind { kAcknowledged, kHttpError, kNetworkError } kind = Kind::kNetworkError;
  int status = 0;             // HTTP status when the server answered
  uint32_t retry_after_s = 0; // the server's Retry-After, 0 if absent
  int64_t ack_seq = -1;       // with kAcknowledged
};

class Transport {
 public:
  virtual ~Transport() = default;
  // POST /v1/epochs:ingest with content-type application/octet-stream.
  virtual UploadResult upload(const uint8_t* body, size_t len) = 0;
};

class RandomSource {
 public:
  virtual ~RandomSource() = default;
  virtual uint32_t next() = 0;  // uniform over 0..2^32-1
};

struct SyncConfig {
  uint32_t base_delay_ms = 2000;
  uint32_t max_delay_ms = 15u * 60u * 1000u;
  uint32_t idle_poll_ms = 30000;  // nothing pending: look again after the next epoch
  size_t max_body_bytes = 16 * kSectorBytes;
};

class SyncClient {
 public:
  SyncClient(FlashQueue& queue, Transport& transport, RandomSource& random, SyncConfig config = {})
      : queue_(queue), transport_(transport), random_(random), config_(config) {}

  // Does at most one upload; returns how many ms to wait before calling again.
  uint32_t step(uint64_t now_ms);

  uint32_t consecutive_failures() const { return failures_; }
  bool needs_new_token() const { return needs_token_; }
  void token_refreshed() { needs_token_ = false; }

 private:
  uint32_t backoff_ms(uint32_t retry_after_s);

  FlashQueue& queue_;
  Transport& transport_;
  RandomSource& random_;
  SyncConfig config_;
  uint64_t not_before_ms_ = 0;
  uint32_t failures_ = 0;
  bool needs_token_ = false;
  uint8_t body_[16 * kSectorBytes] = {};
};

}  // namespace noctis
