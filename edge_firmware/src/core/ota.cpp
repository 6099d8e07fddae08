#include "noctis/ota.h"

#include <sodium.h>

#include <cstring>

#include "noctis/codec.h"
#include "noctis/device.h"

namespace noctis {

namespace {
constexpr uint8_t kManifestMagic[4] = {'N', 'M', 'O', 'D'};
static_assert(sizeof(crypto_hash_sha256_state) <= 256, "hash state buffer too small");

crypto_hash_sha256_state* state(unsigned char* buffer) {
  return reinterpret_cast<crypto_hash_sha256_state*>(buffer);
}
}  // namespace

size_t encode_manifest(const ModelManifest& m, uint8_t out[kMaxManifestBytes]) {
  std::memset(out, 0, kMaxManifestBytes);
  std::memcpy(out, kManifestMagic, 4);
  put_u32(out + 4, m.lookahead_epochs > 0 ? 2 : 1);
  put_u32(out + 8, m.model_version);
  put_u32(out + 12, m.size);
  put_u32(out + 16, m.arena_bytes);
  std::memcpy(out + 20, m.sha256, 32);
  put_u32(out + 52, m.rollout);
  if (m.lookahead_epochs == 0) return kManifestBytes;
  put_u32(out + 56, m.lookahead_epochs);
  return kMaxManifestBytes;
}

size_t manifest_length(const uint8_t* in, size_t available) {
  if (available < 8 || std::memcmp(in, kManifestMagic, 4) != 0) return 0;
  const uint32_t format = get_u32(in + 4);
  const size_t len = format == 1 ? kManifestBytes : format == 2 ? kMaxManifestBytes : 0;
  return len <= available ? len : 0;
}

bool decode_manifest(const uint8_t* in, size_t len, ModelManifest* m) {
  if (len == 0 || manifest_length(in, len) != len) return false;
  m->model_version = get_u32(in + 8);
  m->size = get_u32(in + 12);
  m->arena_bytes = get_u32(in + 16);
  std::memcpy(m->sha256, in + 20, 32);
  m->rollout = get_u32(in + 52);
  m->lookahead_epochs = len == kMaxManifestBytes ? get_u32(in + 56) : 0;
  return m->size > 0 && m->lookahead_epochs < static_cast<uint32_t>(kMaxEpochsPerBlock);
}

bool should_install(const ModelManifest& offer, const ModelManifest& running) {
  const bool other_model =
      offer.model_version != running.model_version || std::memcmp(offer.sha256, running.sha256, 32) != 0;
  return offer.rollout > running.rollout && other_model;
}

ModelUpdater::ModelUpdater(ModelSlots& slots, const uint8_t public_key[32], size_t arena_capacity)
    : slots_(slots), arena_capacity_(arena_capacity) {
  std::memcpy(public_key_, public_key, 32);
}

OtaError ModelUpdater::begin(const uint8_t* manifest, size_t manifest_len, const uint8_t signature[kSignatureBytes]) {
  started_ = false;
  // The signature is checked before a single model byte is accepted.
  if (manifest_len > kMaxManifestBytes) return OtaError::kBadManifest;
  if (crypto_sign_verify_detached(signature, manifest, manifest_len, public_key_) != 0) return OtaError::kBadSignature;
  if (!decode_manifest(manifest, manifest_len, &incoming_)) return OtaError::kBadManifest;
  if (incoming_.size > slots_.slot_bytes() - kSlotHeaderBytes) return OtaError::kTooLarge;
  if (incoming_.arena_bytes > arena_capacity_) return OtaError::kArenaTooSmall;
  target_ = 1 - slots_.active();
  slots_.erase(target_);
  slots_.write(target_, 0, manifest, manifest_len);
  slots_.write(target_, manifest_len, signature, kSignatureBytes);  // right behind it, as format 1 slots have it
  crypto_hash_sha256_init(state(hash_state_));
  written_ = 0;
  started_ = true;
  return OtaError::kNone;
}

OtaError ModelUpdater::write(const uint8_t* data, size_t len) {
  if (!started_) return OtaError::kNotStarted;
  if (written_ + len > incoming_.size) return OtaError::kOverflow;
  slots_.write(target_, kSlotHeaderBytes + written_, data, len);
  crypto_hash_sha256_update(state(hash_state_), data, len);
  written_ += len;
  return OtaError::kNone;
}

OtaError ModelUpdater::finish(const SlotProbe& probe) {
  if (!started_) return OtaError::kNotStarted;
  started_ = false;
  if (written_ != incoming_.size) return OtaError::kSizeMismatch;
  uint8_t digest[32];
  crypto_hash_sha256_final(state(hash_state_), digest);
  if (std::memcmp(digest, incoming_.sha256, 32) != 0) return OtaError::kHashMismatch;
  // Read back what flash holds, not what we meant to write.
  ModelManifest check;
  if (!verified(target_, &check)) return OtaError::kHashMismatch;
  if (probe && !probe(target_)) return OtaError::kProbeFailed;
  slots_.set_active(target_);
  return OtaError::kNone;
}

OtaError ModelUpdater::rollback() {
  const int previous = 1 - slots_.active();
  ModelManifest manifest;
  if (!verified(previous, &manifest)) return OtaError::kNoPreviousModel;
  slots_.set_active(previous);
  return OtaError::kNone;
}

bool ModelUpdater::verified(int slot, ModelManifest* manifest) {
  uint8_t head[kMaxManifestBytes + kSignatureBytes];
  slots_.read(slot, 0, head, sizeof head);
  const size_t len = manifest_length(head, kMaxManifestBytes);
  if (len == 0 || crypto_sign_verify_detached(head + len, head, len, public_key_) != 0) return false;
  if (!decode_manifest(head, len, manifest) || manifest->size > slots_.slot_bytes() - kSlotHeaderBytes) return false;
  crypto_hash_sha256_state hash;
  crypto_hash_sha256_init(&hash);
  uint8_t chunk[256];
  for (size_t offset = 0; offset < manifest->size; offset += sizeof chunk) {
    const size_t n = manifest->size - offset < sizeof chunk ? manifest->size - offset : sizeof chunk;
    slots_.read(slot, kSlotHeaderBytes + offset, chunk, n);
    crypto_hash_sha256_update(&hash, chunk, n);
  }
  uint8_t digest[32];
  crypto_hash_sha256_final(&hash, digest);
  return std::memcmp(digest, manifest->sha256, 32) == 0;
}

namespace {
constexpr char kTrialKey[] = "model_trial";  // boots since the install, +1; 0 = confirmed
}

void ModelTrial::installed() { nvs_.set_u32(kTrialKey, 1); }

bool ModelTrial::on_trial() { return nvs_.get_u32(kTrialKey, 0) != 0; }

bool ModelTrial::on_boot() {
  const uint32_t trial = nvs_.get_u32(kTrialKey, 0);
  if (trial == 0) return false;
  if (trial > kMaxTrialBoots) return roll_back();
  nvs_.set_u32(kTrialKey, trial + 1);
  return false;
}

bool ModelTrial::failed_to_start() { return roll_back(); }

void ModelTrial::staged(bool ok) {
  if (!ok || !on_trial()) return;
  if (++good_ >= kConfirmStagings) nvs_.set_u32(kTrialKey, 0);
}

bool ModelTrial::roll_back() {
  nvs_.set_u32(kTrialKey, 0);  // whatever happens next, the trial is over
  return updater_.rollback() == OtaError::kNone;
}

}  // namespace noctis
