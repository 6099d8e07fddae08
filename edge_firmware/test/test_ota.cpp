#include <doctest/doctest.h>
#include <sodium.h>

#include <cstring>
#include <vector>

#include "memory_store.h"
#include "noctis/ota.h"
#include "noctis_model_data.h"

using namespace noctis;

struct RamSlots : ModelSlots {
  std::vector<uint8_t> slot[2] = {std::vector<uint8_t>(64 * 1024, 0xFF), std::vector<uint8_t>(64 * 1024, 0xFF)};
  int active_slot = 0;
  size_t slot_bytes() const override { return slot[0].size(); }
  void erase(int s) override { std::fill(slot[s].begin(), slot[s].end(), 0xFF); }
  void write(int s, size_t offset, const uint8_t* data, size_t len) override {
    std::memcpy(slot[s].data() + offset, data, len);
  }
  void read(int s, size_t offset, uint8_t* out, size_t len) override { std::memcpy(out, slot[s].data() + offset, len); }
  int active() const override { return active_slot; }
  void set_active(int s) override { active_slot = s; }
};

struct Signer {
  uint8_t public_key[32], secret_key[64];
  Signer() {
    REQUIRE(sodium_init() >= 0);
    crypto_sign_keypair(public_key, secret_key);
  }
  void sign(const uint8_t* manifest, size_t len, uint8_t* signature) {
    crypto_sign_detached(signature, nullptr, manifest, len, secret_key);
  }
};

static ModelManifest manifest_for(const uint8_t* model, size_t size, uint32_t version) {
  ModelManifest m;
  m.model_version = version;
  m.size = static_cast<uint32_t>(size);
  m.arena_bytes = static_cast<uint32_t>(kEdgeTensorArenaBytes);
  crypto_hash_sha256(m.sha256, model, size);
  return m;
}

static OtaError install(ModelUpdater& updater, Signer& signer, const uint8_t* model, size_t size, uint32_t version,
                        const uint8_t* payload = nullptr) {
  uint8_t manifest[kMaxManifestBytes], signature[kSignatureBytes];
  const size_t len = encode_manifest(manifest_for(model, size, version), manifest);
  signer.sign(manifest, len, signature);
  OtaError e = updater.begin(manifest, len, signature);
  if (e != OtaError::kNone) return e;
  const uint8_t* data = payload ? payload : model;
  for (size_t offset = 0; offset < size; offset += 1000) {
    e = updater.write(data + offset, size - offset < 1000 ? size - offset : 1000);
    if (e != OtaError::kNone) return e;
  }
  return updater.finish();
}

TEST_CASE("the committed edge model installs, switches the slot, and rolls back") {
  Signer signer;
  RamSlots slots;
  ModelUpdater updater(slots, signer.public_key, kEdgeTensorArenaBytes);
  REQUIRE(install(updater, signer, kEdgeModel, kEdgeModelBytes, kEdgeModelVersion) == OtaError::kNone);
  CHECK(slots.active() == 1);
  ModelManifest m;
  REQUIRE(updater.verified(1, &m));
  CHECK(m.model_version == kEdgeModelVersion);
  std::vector<uint8_t> next(kEdgeModel, kEdgeModel + kEdgeModelBytes);
  next[100] ^= 1;  // a different model, version 2
  REQUIRE(install(updater, signer, next.data(), next.size(), 2) == OtaError::kNone);
  CHECK(slots.active() == 0);
  CHECK(updater.rollback() == OtaError::kNone);
  CHECK(slots.active() == 1);
}

TEST_CASE("a tampered download never becomes active") {
  Signer signer;
  RamSlots slots;
  ModelUpdater updater(slots, signer.public_key, kEdgeTensorArenaBytes);
  std::vector<uint8_t> tampered(kEdgeModel, kEdgeModel + kEdgeModelBytes);
  tampered[5000] ^= 0x80;
  CHECK(install(updater, signer, kEdgeModel, kEdgeModelBytes, 3, tampered.data()) == OtaError::kHashMismatch);
  CHECK(slots.active() == 0);
  CHECK(updater.rollback() == OtaError::kNoPreviousModel);
}

TEST_CASE("a manifest signed by another key is refused before any byte is written") {
  Signer signer, intruder;
  RamSlots slots;
  ModelUpdater updater(slots, signer.public_key, kEdgeTensorArenaBytes);
  CHECK(install(updater, intruder, kEdgeModel, kEdgeModelBytes, 4) == OtaError::kBadSignature);
  CHECK(slots.slot[1][0] == 0xFF);
  CHECK(updater.write(kEdgeModel, 10) == OtaError::kNotStarted);
  CHECK(slots.active() == 0);
}

TEST_CASE("a model larger than its slot is refused") {
  Signer signer;
  RamSlots slots;
  ModelUpdater updater(slots, signer.public_key, kEdgeTensorArenaBytes);
  std::vector<uint8_t> huge(70 * 1024, 1);
  CHECK(install(updater, signer, huge.data(), huge.size(), 5) == OtaError::kTooLarge);
}

#include <fstream>
#include <string>

static std::vector<uint8_t> hex_bytes(const std::string& hex) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

TEST_CASE("manifests signed by the server (Python) verify here, byte for byte, in both formats") {
  REQUIRE(sodium_init() >= 0);
  std::ifstream in(std::string(NOCTIS_VECTORS_DIR) + "/ota.txt");
  std::string seed_hex, digest_hex, manifest_hex, signature_hex;
  uint32_t version, size, arena, rollout, lookahead;
  std::vector<uint32_t> lookaheads;
  while (in >> seed_hex >> version >> size >> arena >> digest_hex >> rollout >> lookahead >> manifest_hex >>
         signature_hex) {
    lookaheads.push_back(lookahead);
    auto seed = hex_bytes(seed_hex), digest = hex_bytes(digest_hex), manifest = hex_bytes(manifest_hex),
         signature = hex_bytes(signature_hex);
    ModelManifest m;
    m.model_version = version, m.size = size, m.arena_bytes = arena, m.rollout = rollout, m.lookahead_epochs = lookahead;
    std::memcpy(m.sha256, digest.data(), 32);
    uint8_t encoded[kMaxManifestBytes];
    const size_t len = encode_manifest(m, encoded);
    CHECK(std::vector<uint8_t>(encoded, encoded + len) == manifest);
    ModelManifest decoded;
    REQUIRE(decode_manifest(manifest.data(), manifest.size(), &decoded));
    CHECK(decoded.rollout == 41);
    CHECK(decoded.lookahead_epochs == lookahead);
    CHECK_FALSE(decode_manifest(manifest.data(), manifest.size() - 1, &decoded));  // a cut manifest
    uint8_t public_key[32], secret_key[64];
    crypto_sign_seed_keypair(public_key, secret_key, seed.data());
    CHECK(crypto_sign_verify_detached(signature.data(), manifest.data(), manifest.size(), public_key) == 0);
    manifest[10] ^= 1;
    CHECK(crypto_sign_verify_detached(signature.data(), manifest.data(), manifest.size(), public_key) != 0);
  }
  CHECK(lookaheads == std::vector<uint32_t>{0, 7});
}

TEST_CASE("a model with a lookahead installs with a format 2 manifest, and the slot keeps its lookahead") {
  Signer signer;
  RamSlots slots;
  ModelUpdater updater(slots, signer.public_key, kEdgeTensorArenaBytes);
  REQUIRE(install(updater, signer, kEdgeModel, kEdgeModelBytes, 9) == OtaError::kNone);  // format 1
  ModelManifest m = manifest_for(kEdgeModel, kEdgeModelBytes, 10);
  m.lookahead_epochs = 7;
  uint8_t manifest[kMaxManifestBytes], signature[kSignatureBytes];
  const size_t len = encode_manifest(m, manifest);
  CHECK(len == kMaxManifestBytes);
  signer.sign(manifest, len, signature);
  // The lookahead is signed: a manifest that claims another one does not verify.
  manifest[56] = 3;
  CHECK(updater.begin(manifest, len, signature) == OtaError::kBadSignature);
  manifest[56] = 7;
  REQUIRE(updater.begin(manifest, len, signature) == OtaError::kNone);
  REQUIRE(updater.write(kEdgeModel, kEdgeModelBytes) == OtaError::kNone);
  REQUIRE(updater.finish() == OtaError::kNone);
  ModelManifest running;
  REQUIRE(updater.verified(slots.active(), &running));
  CHECK(running.model_version == 10);
  CHECK(running.lookahead_epochs == 7);
  ModelManifest previous;  // the format 1 slot beside it still verifies (rollback target)
  REQUIRE(updater.verified(1 - slots.active(), &previous));
  CHECK(previous.model_version == 9);
  CHECK(previous.lookahead_epochs == 0);
}

TEST_CASE("a device installs only a higher rollout number: old manifests are refused, signed downgrades taken") {
  const std::vector<uint8_t> v2(3000, 2), v3(3000, 3);
  ModelManifest running = manifest_for(v2.data(), v2.size(), 2);
  running.rollout = 5;

  ModelManifest newer = manifest_for(v3.data(), v3.size(), 3);
  newer.rollout = 6;
  CHECK(should_install(newer, running));

  ModelManifest replayed = newer;  // an offer the device has already moved past
  replayed.rollout = 4;
  CHECK_FALSE(should_install(replayed, running));
  replayed.rollout = 5;
  CHECK_FALSE(should_install(replayed, running));

  ModelManifest downgrade = manifest_for(v2.data(), v2.size(), 1);  // an older model, a newer decision
  downgrade.rollout = 7;
  CHECK(should_install(downgrade, running));

  ModelManifest same = running;  // the model it runs, offered again by a later rollout
  same.rollout = 8;
  CHECK_FALSE(should_install(same, running));
}

TEST_CASE("the rollout number survives the slot: an installed downgrade refuses the model it replaced") {
  Signer signer;
  RamSlots slots;
  ModelUpdater updater(slots, signer.public_key, kEdgeTensorArenaBytes);
  const std::vector<uint8_t> v3(4000, 3), v2(4000, 2);
  auto install_at = [&](const std::vector<uint8_t>& model, uint32_t version, uint32_t rollout) {
    ModelManifest m = manifest_for(model.data(), model.size(), version);
    m.rollout = rollout;
    uint8_t manifest[kMaxManifestBytes], signature[kSignatureBytes];
    const size_t len = encode_manifest(m, manifest);
    signer.sign(manifest, len, signature);
    REQUIRE(updater.begin(manifest, len, signature) == OtaError::kNone);
    REQUIRE(updater.write(model.data(), model.size()) == OtaError::kNone);
    REQUIRE(updater.finish() == OtaError::kNone);
    return m;
  };
  const ModelManifest release = install_at(v3, 3, 10);
  install_at(v2, 2, 11);  // the operator rolled the release back
  ModelManifest running;
  REQUIRE(updater.verified(slots.active(), &running));
  CHECK(running.model_version == 2);
  CHECK(running.rollout == 11);
  CHECK_FALSE(should_install(release, running));  // the release's manifest, replayed
}

TEST_CASE("a model whose arena is larger than the compiled one, or that fails its probe, never becomes active") {
  Signer signer;
  RamSlots slots;
  ModelUpdater updater(slots, signer.public_key, kEdgeTensorArenaBytes);
  ModelManifest m = manifest_for(kEdgeModel, kEdgeModelBytes, 2);
  m.arena_bytes = static_cast<uint32_t>(kEdgeTensorArenaBytes + 1);
  uint8_t manifest[kMaxManifestBytes], signature[kSignatureBytes];
  size_t len = encode_manifest(m, manifest);
  signer.sign(manifest, len, signature);
  CHECK(updater.begin(manifest, len, signature) == OtaError::kArenaTooSmall);

  len = encode_manifest(manifest_for(kEdgeModel, kEdgeModelBytes, 2), manifest);
  signer.sign(manifest, len, signature);
  REQUIRE(updater.begin(manifest, len, signature) == OtaError::kNone);
  REQUIRE(updater.write(kEdgeModel, kEdgeModelBytes) == OtaError::kNone);
  int probed = -1;
  CHECK(updater.finish([&](int slot) {
    probed = slot;
    return false;  // the interpreter would not run it
  }) == OtaError::kProbeFailed);
  CHECK(probed == 1);
  CHECK(slots.active() == 0);
}

TEST_CASE("a new model is kept after good stagings, rolled back if it crashes the device or will not start") {
  Signer signer;
  RamSlots slots;
  MemoryStore nvs;
  ModelUpdater updater(slots, signer.public_key, kEdgeTensorArenaBytes);
  ModelTrial trial(nvs, updater);
  std::vector<uint8_t> v2(kEdgeModel, kEdgeModel + kEdgeModelBytes), v3 = v2;
  v2[100] ^= 1, v3[200] ^= 1;
  REQUIRE(install(updater, signer, v2.data(), v2.size(), 2) == OtaError::kNone);  // slot 1: the known-good one
  trial.staged(true);                                                               // not on trial: nothing to do

  // v3 crashes the device before it confirms: after kMaxTrialBoots boots, back to v2.
  REQUIRE(install(updater, signer, v3.data(), v3.size(), 3) == OtaError::kNone);
  trial.installed();
  CHECK(slots.active() == 0);
  for (uint32_t boot = 0; boot < ModelTrial::kMaxTrialBoots; ++boot) CHECK_FALSE(trial.on_boot());
  CHECK(trial.on_boot());
  CHECK(slots.active() == 1);
  CHECK_FALSE(trial.on_trial());

  // v3 again, and it stages well: confirmed, later reboots keep it.
  REQUIRE(install(updater, signer, v3.data(), v3.size(), 3) == OtaError::kNone);
  trial.installed();
  CHECK_FALSE(trial.on_boot());
  for (uint32_t i = 0; i + 1 < ModelTrial::kConfirmStagings; ++i) trial.staged(true);
  trial.staged(false);  // a failed staging does not count
  CHECK(trial.on_trial());
  trial.staged(true);
  CHECK_FALSE(trial.on_trial());
  for (int boot = 0; boot < 5; ++boot) CHECK_FALSE(trial.on_boot());
  CHECK(slots.active() == 0);

  // A model that will not begin (its interpreter refuses it) is rolled back at once.
  REQUIRE(install(updater, signer, v2.data(), v2.size(), 2) == OtaError::kNone);
  trial.installed();
  CHECK(trial.failed_to_start());
  CHECK(slots.active() == 0);
}
