// Over-the-air edge-model updates into A/B model slots.
//
// A slot holds [manifest 56 or 60 B][Ed25519 signature 64 B][padding][model at 128].
// The manifest (little-endian, noctis_contract/ota.py): magic "NMOD", format u32, model
// version u32, model size u32, arena bytes u32, sha256 of the model (32 B), rollout
// number u32 (the server's staged-rollout counter; zero in the compiled-in model and in
// manifests from before rollouts, where these bytes were reserved): 56 bytes, format 1.
// Format 2 adds the model's lookahead in epochs (u32): 60 bytes. Firmware 1 read only
// format 1, so it refuses every model with a lookahead.
// Update: verify the manifest's signature before taking a byte, write the model into
// the inactive slot while hashing it, check size and sha256, and only then switch the
// active slot. The previous slot is left intact, so rollback() is one switch back.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>

namespace noctis {

constexpr size_t kManifestBytes = 56;     // format 1
constexpr size_t kMaxManifestBytes = 60;  // format 2
constexpr size_t kSignatureBytes = 64;
constexpr size_t kSlotHeaderBytes = 128;
static_assert(kMaxManifestBytes + kSignatureBytes <= kSlotHeaderBytes, "the slot header holds manifest and signature");

struct ModelManifest {
  uint32_t model_version = 0;
  uint32_t size = 0;
  uint32_t arena_bytes = 0;
  uint8_t sha256[32] = {};
  uint32_t rollout = 0;
  uint32_t lookahead_epochs = 0;  // see DeviceConfig::lookahead_epochs
};

// Whether an offered manifest should be installed over the running model: only for a
// rollout number higher than the running one's (a replayed old manifest is refused; a
// rollback is a higher number for an older model, a signed downgrade), and only if it
// is another model. Decide on the manifest's fields, then begin() checks its signature.
bool should_install(const ModelManifest& offer, const ModelManifest& running);

// Format 1 when the model has no lookahead, else format 2; returns the length written.
size_t encode_manifest(const ModelManifest& manifest, uint8_t out[kMaxManifestBytes]);
// The manifest's length by its format (0: not a manifest this firmware reads).
size_t manifest_length(const uint8_t* in, size_t available);
bool decode_manifest(const uint8_t* in, size_t len, ModelManifest* manifest);

class ModelSlots {  // the two flash partitions and where the active index is kept (NVS)
 public:
  virtual ~ModelSlots() = default;
  virtual size_t slot_bytes() const = 0;
  virtual void erase(int slot) = 0;
  virtual void write(int slot, size_t offset, const uint8_t* data, size_t len) = 0;
  virtual void read(int slot, size_t offset, uint8_t* out, size_t len) = 0;
  virtual int active() const = 0;
  virtual void set_active(int slot) = 0;
};

enum class OtaError {
  kNone, kBadManifest, kBadSignature, kTooLarge, kNotStarted, kOverflow, kSizeMismatch, kHashMismatch,
  kNoPreviousModel, kArenaTooSmall, kProbeFailed,
};

// Runs the model in a slot on a probe window before the device switches to it (the
// board: an interpreter on the memory-mapped slot, one inference, a valid output).
using SlotProbe = std::function<bool(int slot)>;

class ModelUpdater {
 public:
  // arena_capacity: the compiled tensor arena; a manifest that needs more is refused.
  ModelUpdater(ModelSlots& slots, const uint8_t public_key[32], size_t arena_capacity);

  OtaError begin(const uint8_t* manifest, size_t manifest_len, const uint8_t signature[kSignatureBytes]);
  OtaError write(const uint8_t* data, size_t len);
  OtaError finish(const SlotProbe& probe = {});  // verifies, probes, then switches the active slot
  OtaError rollback();

  // The slot's manifest, if its signature and its model's sha256 both check out.
  bool verified(int slot, ModelManifest* manifest);

 private:
  ModelSlots& slots_;
  uint8_t public_key_[32];
  size_t arena_capacity_;
  bool started_ = false;
  int target_ = 0;
  ModelManifest incoming_;
  size_t written_ = 0;
  unsigned char hash_state_[256];  // crypto_hash_sha256_state, opaque here
};

class KeyValueStore;

// Boot-confirm: a newly installed model is on trial until it has staged kConfirmStagings
// epochs. One that does not start, or that the device reboots kMaxTrialBoots times
// without confirming (a crash in the interpreter), is rolled back to the previous slot.
// State in NVS, so it survives the reboots it is counting.
class ModelTrial {
 public:
  static constexpr uint32_t kConfirmStagings = 10;
  static constexpr uint32_t kMaxTrialBoots = 3;
  ModelTrial(KeyValueStore& nvs, ModelUpdater& updater) : nvs_(nvs), updater_(updater) {}

  void installed();        // after finish() switched to the new model, before the restart
  bool on_boot();          // counts the boot; true if it rolled back (the caller restarts)
  bool failed_to_start();  // the active model would not begin; true if it rolled back
  void staged(bool ok);    // after each staging; good ones confirm the model
  bool on_trial();

 private:
  bool roll_back();
  KeyValueStore& nvs_;
  ModelUpdater& updater_;
  uint32_t good_ = 0;
};

}  // namespace noctis
