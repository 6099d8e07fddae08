// The sync state machine: drain the flash queue oldest-first to the server, erase only
// what the server acknowledged, back off with full jitter, honour Retry-After.
// Every epoch goes to flash first, so "live upload" and "drain after an outage" are
// the same path: when the link is up the queue is a few epochs deep.
//
// Sync v2: every body starts with a session record (the incarnation, the seqs no longer
// held, health); batches are sized by the limits the server states in each answer, and
// a 413 halves the batch at once instead of resending the same one.
#pragma once
#include <cstddef>
#include <cstdint>

#include "noctis/flash_queue.h"
#include "noctis/session.h"

namespace noctis {

struct UploadResult {
  enum class Kind { kAcknowledged, kHttpError, kNetworkError } kind = Kind::kNetworkError;
  int status = 0;                 // HTTP status when the server answered
  uint32_t retry_after_s = 0;     // the server's Retry-After, 0 if absent
  int64_t ack_seq = -1;           // with kAcknowledged
  uint32_t incarnation = 0;       // whose seqs ack_seq counts: the device erases only for its own
  uint32_t max_batch_epochs = 0;  // the server's limits, 0 if it did not say
  uint32_t max_body_bytes = 0;
};

// Reads the ingest answer's JSON (only the fields the device acts on). False if there
// is no ack_seq or no incarnation in it.
bool parse_ack(const char* json, size_t len, UploadResult* result);

class Transport {
 public:
  virtual ~Transport() = default;
  // POST /v1/epochs:ingest with content-type application/octet-stream.
  virtual UploadResult upload(const uint8_t* body, size_t len) = 0;
  // POST /v1/auth/device-token with the provisioned secret; true when a token was stored.
  virtual bool refresh_token() = 0;
};

class RandomSource {
 public:
  virtual ~RandomSource() = default;
  virtual uint32_t next() = 0;  // uniform over 0..2^32-1
};

// An upload carries at most this many blocks: the body buffer is the firmware's largest
// RAM item (hardware/budgets.py reads it from here). Four blocks are 1,068 epochs, nine
// hours: a live upload is one block, and 189 days offline drain in ~510 requests.
constexpr size_t kMaxBodyBlocks = 4;
constexpr size_t kMaxBodyBytes = kMaxBodyBlocks * kSectorBytes + kSessionMaxBytes;

struct SyncConfig {
  uint32_t base_delay_ms = 2000;
  uint32_t max_delay_ms = 15u * 60u * 1000u;
  uint32_t idle_poll_ms = 30000;  // nothing pending: look again after the next epoch
  size_t max_body_bytes = kMaxBodyBytes;
  uint32_t max_batch_epochs = kMaxBodyBlocks * kMaxEpochsPerBlock;
};

class SyncClient {
 public:
  SyncClient(FlashQueue& queue, Transport& transport, RandomSource& random, SyncConfig config = {})
      : queue_(queue), transport_(transport), random_(random), config_(config),
        body_limit_(config.max_body_bytes < kMaxBodyBytes ? config.max_body_bytes : kMaxBodyBytes),
        epoch_limit_(config.max_batch_epochs) {}

  void set_identity(uint32_t incarnation, uint32_t boot_count, uint32_t firmware_version, uint32_t model_version) {
    incarnation_ = incarnation, boot_count_ = boot_count, firmware_version_ = firmware_version;
    model_version_ = model_version;
  }
  // What the board measures, sent with the next upload's health: 0 when not known.
  void set_vitals(int32_t rssi_dbm, uint32_t free_heap) { rssi_dbm_ = rssi_dbm, free_heap_ = free_heap; }
  // Does at most one upload; returns how many ms to wait before calling again.
  uint32_t step(uint64_t now_ms);

  uint32_t consecutive_failures() const { return failures_; }
  size_t body_limit() const { return body_limit_; }
  uint32_t epoch_limit() const { return epoch_limit_; }

 private:
  uint32_t backoff(uint64_t now_ms, uint32_t retry_after_s);
  void adopt_limits(const UploadResult& result);

  FlashQueue& queue_;
  Transport& transport_;
  RandomSource& random_;
  SyncConfig config_;
  size_t body_limit_;
  uint32_t epoch_limit_;
  size_t refused_bytes_ = kMaxBodyBytes + 1;  // the smallest body a 413 refused
  uint32_t incarnation_ = 0, boot_count_ = 0, firmware_version_ = 0, model_version_ = 0, free_heap_ = 0;
  int32_t rssi_dbm_ = 0;
  uint64_t not_before_ms_ = 0;
  uint32_t failures_ = 0;
  bool needs_token_ = true;  // no token yet after boot
  BatchInfo batch_;
  uint8_t body_[kMaxBodyBytes] = {};
};

}  // namespace noctis
