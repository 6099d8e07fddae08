// Board glue: the only code that touches ESP32 hardware. Everything it calls into is
// the host-tested portable core. Compile-checked on the host against stand-in headers
// (edge_firmware/test/standins) by `make -C edge_firmware glue-check`.
#include <Arduino.h>
#include <HTTPClient.h>
#include <Preferences.h>
#include <WiFi.h>
#include <WiFiClientSecure.h>
#include <Wire.h>
#include <esp_partition.h>
#include <esp_task_wdt.h>
#include <esp_random.h>
#include <esp_timer.h>
#include <freertos/FreeRTOS.h>
#include <freertos/queue.h>
#include <freertos/task.h>
#include <sodium.h>

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "board/esp_flash.h"
#include "board/resources.h"
#include "noctis/codec.h"
#include "noctis/device.h"
#include "noctis/epoch_features.h"
#include "noctis/flash_queue.h"
#include "noctis/ota.h"
#include "noctis/provisioning.h"
#include "noctis/placement.h"
#include "noctis/radar.h"
#include "noctis/sync.h"
#include "noctis_model_data.h"
#include "noctis_pins.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace noctis::board {

// Provisioned over the serial console into NVS (noctis/provisioning.h); see README.
struct Provisioning {
  String wifi_ssid, wifi_password, server_url, device_id, device_secret, ca;
};

// Extracts "key":"value" from the server's small JSON answers.
inline String json_string(const String& json, const char* key) {
  const String needle = String("\"") + key + "\":\"";
  const int at = json.indexOf(needle.c_str());
  if (at < 0) return String();
  const int from = at + static_cast<int>(needle.length());
  return json.substring(from, json.indexOf('"', from));
}

class HttpsTransport : public Transport {
 public:
  explicit HttpsTransport(const Provisioning& p) : p_(p) { trust(); }
  // The CA that signs the server's certificate: without it no HTTPS request succeeds.
  void trust() { client_.setCACert(p_.ca.c_str()); }
  String token;

  UploadResult upload(const uint8_t* body, size_t len) override {
    UploadResult result;
    if (WiFi.status() != WL_CONNECTED) return result;  // kNetworkError
    HTTPClient http;
    http.setConnectTimeout(kHttpConnectTimeoutMs);  // a dead server is a failed upload, not a stuck device
    http.setTimeout(kHttpReadTimeoutMs);
    const char* keep[] = {"Retry-After"};
    http.collectHeaders(keep, 1);
    if (!http.begin(client_, p_.server_url + "/v1/epochs:ingest")) return result;
    http.addHeader("Content-Type", "application/octet-stream");
    http.addHeader("Authorization", "Bearer " + token);
    const int status = http.POST(const_cast<uint8_t*>(body), len);
    if (status <= 0) {
      http.end();
      return result;
    }
    result.status = status;
    result.retry_after_s = static_cast<uint32_t>(http.header("Retry-After").toInt());
    result.kind = UploadResult::Kind::kHttpError;
    if (status == 200) {
      const String answer = http.getString();
      if (parse_ack(answer.c_str(), answer.length(), &result)) result.kind = UploadResult::Kind::kAcknowledged;
    }
    http.end();
    return result;
  }

  // Asks the server which edge model this device should run; installs it when the
  // offer's rollout number is higher than the running model's (should_install).
  // Returns true when a new model was verified and activated (the caller restarts).
  bool update_model(ModelUpdater& updater, const ModelManifest& running, const SlotProbe& probe) {
    HTTPClient http;
    http.setConnectTimeout(kHttpConnectTimeoutMs);  // a dead server is a failed upload, not a stuck device
    http.setTimeout(kHttpReadTimeoutMs);
    if (!http.begin(client_, p_.server_url + "/v1/ota/manifest")) return false;
    http.addHeader("Authorization", "Bearer " + token);
    if (http.GET() != 200) {
      http.end();
      return false;
    }
    const String offer = http.getString();
    http.end();
    uint8_t manifest[kMaxManifestBytes], signature[kSignatureBytes];
    size_t manifest_len = 0, signature_len = 0;
    const String manifest_b64 = json_string(offer, "manifest"), signature_b64 = json_string(offer, "signature");
    if (sodium_base642bin(manifest, sizeof manifest, manifest_b64.c_str(), manifest_b64.length(), nullptr,
                          &manifest_len, nullptr, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        sodium_base642bin(signature, sizeof signature, signature_b64.c_str(), signature_b64.length(), nullptr,
                          &signature_len, nullptr, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        signature_len != kSignatureBytes)
      return false;
    ModelManifest parsed;
    if (!decode_manifest(manifest, manifest_len, &parsed) || !should_install(parsed, running)) return false;
    if (updater.begin(manifest, manifest_len, signature) != OtaError::kNone) return false;
    if (!http.begin(client_, p_.server_url + json_string(offer, "download"))) return false;
    http.addHeader("Authorization", "Bearer " + token);
    if (http.GET() != 200) {
      http.end();
      return false;
    }
    WiFiClient* stream = http.getStreamPtr();
    uint8_t chunk[512];
    size_t received = 0;
    while (received < parsed.size) {
      const int n = stream->readBytes(chunk, sizeof chunk);
      if (n <= 0 || updater.write(chunk, static_cast<size_t>(n)) != OtaError::kNone) break;
      received += static_cast<size_t>(n);
    }
    http.end();
    return updater.finish(probe) == OtaError::kNone;
  }

  bool refresh_token() override {
    HTTPClient http;
    http.setConnectTimeout(kHttpConnectTimeoutMs);  // a dead server is a failed upload, not a stuck device
    http.setTimeout(kHttpReadTimeoutMs);
    if (!http.begin(client_, p_.server_url + "/v1/auth/device-token")) return false;
    http.addHeader("Content-Type", "application/json");
    String body = "{\"device_id\":\"" + p_.device_id + "\",\"secret\":\"" + p_.device_secret + "\"}";
    const int status = http.POST(reinterpret_cast<uint8_t*>(const_cast<char*>(body.c_str())), body.length());
    const String answer = http.getString();
    http.end();
    const int at = answer.indexOf("\"access_token\":\"");
    if (status != 200 || at < 0) return false;
    const int end = answer.indexOf('"', at + 16);
    token = answer.substring(at + 16, end);
    return true;
  }

 private:
  const Provisioning& p_;
  WiFiClientSecure client_;
};

// The two model partitions (model0, model1) with the active index in NVS.
class PartitionModelSlots : public ModelSlots {
 public:
  PartitionModelSlots() {
    for (int i = 0; i < 2; ++i)
      parts_[i] = esp_partition_find_first(ESP_PARTITION_TYPE_DATA, static_cast<esp_partition_subtype_t>(0x40 + i),
                                           i == 0 ? "model0" : "model1");
  }
  size_t slot_bytes() const override { return parts_[0]->size; }
  void erase(int slot) override { esp_partition_erase_range(parts_[slot], 0, parts_[slot]->size); }
  void write(int slot, size_t offset, const uint8_t* data, size_t len) override {
    esp_partition_write(parts_[slot], offset, data, len);
  }
  void read(int slot, size_t offset, uint8_t* out, size_t len) override {
    esp_partition_read(parts_[slot], offset, out, len);
  }
  int active() const override {
    Preferences prefs;
    prefs.begin("noctis", true);
    const int slot = static_cast<int>(prefs.getUInt("model_slot", 0));
    prefs.end();
    return slot;
  }
  bool map(int slot, const void** out) {
    esp_partition_mmap_handle_t handle;
    return esp_partition_mmap(parts_[slot], 0, parts_[slot]->size, ESP_PARTITION_MMAP_DATA, out, &handle) == 0;
  }
  void set_active(int slot) override {
    Preferences prefs;
    prefs.begin("noctis", false);
    prefs.putUInt("model_slot", static_cast<uint32_t>(slot));
    prefs.end();
  }

 private:
  const esp_partition_t* parts_[2];
};

// NVS (Preferences): the seq counter, incarnation and night start survive a reboot.
class NvsStore : public KeyValueStore {
 public:
  uint32_t get_u32(const char* key, uint32_t fallback) override {
    Preferences prefs;
    prefs.begin("noctis", true);
    const uint32_t value = prefs.getUInt(key, fallback);
    prefs.end();
    return value;
  }
  void set_u32(const char* key, uint32_t value) override {
    Preferences prefs;
    prefs.begin("noctis", false);
    prefs.putUInt(key, value);
    prefs.end();
  }
  size_t get_str(const char* key, char* out, size_t cap) override {
    Preferences prefs;
    prefs.begin("noctis", true);
    const String value = prefs.getString(key);
    prefs.end();
    const size_t n = value.length() < cap ? value.length() : cap - 1;
    std::memcpy(out, value.c_str(), n);
    out[n] = '\0';
    return value.length();
  }
  void set_str(const char* key, const char* value) override {
    Preferences prefs;
    prefs.begin("noctis", false);
    prefs.putString(key, value);
    prefs.end();
  }
};

class EspRandom : public RandomSource {
 public:
  uint32_t next() override { return esp_random(); }
};

class Mpu6050 {
 public:
  static constexpr uint8_t kAddress = 0x68;
  bool begin() {
    Wire.begin(pins::kImuI2CSda, pins::kImuI2CScl, 400000);
    return write_register(0x6B, 0x00) && write_register(0x1C, 0x00);  // wake; +-2 g
  }
  bool read_mg(double* x, double* y, double* z) {
    Wire.beginTransmission(kAddress);
    Wire.write(0x3B);  // ACCEL_XOUT_H
    if (Wire.endTransmission(false) != 0 || Wire.requestFrom(kAddress, static_cast<uint8_t>(6)) != 6) return false;
    int16_t raw[3];
    for (int16_t& v : raw) v = static_cast<int16_t>((Wire.read() << 8) | Wire.read());
    constexpr double kMgPerLsb = 1000.0 / 16384.0;
    *x = raw[0] * kMgPerLsb, *y = raw[1] * kMgPerLsb, *z = raw[2] * kMgPerLsb;
    return true;
  }

 private:
  bool write_register(uint8_t reg, uint8_t value) {
    Wire.beginTransmission(kAddress);
    Wire.write(reg);
    Wire.write(value);
    return Wire.endTransmission() == 0;
  }
};

// TFLite Micro on the edge model: the last kEdgeWindowEpochs epochs of codes and the
// night so far (one more row) in, a stage out.
class EdgeStager : public Stager {
 public:
  // False when the model cannot run here (schema, ops, arena, or tensors of another
  // shape than the window and four stages): then stage() answers kNoStage, never crashes.
  bool begin(const uint8_t* model_bytes) {
    delete interpreter_;
    interpreter_ = nullptr;
    const tflite::Model* model = tflite::GetModel(model_bytes);
    if (model->version() != TFLITE_SCHEMA_VERSION) return false;
    if (!ops_added_) {
      resolver_.AddFullyConnected();
      resolver_.AddReshape();
      resolver_.AddQuantize();
      resolver_.AddConcatenation();
      resolver_.AddMul();
      resolver_.AddAdd();
      resolver_.AddStridedSlice();  // the newest epochs and the hour before them
      resolver_.AddAveragePool2D();  // the hour before, as block means
      resolver_.AddSub();            // each epoch against the night so far
      resolver_.AddConv2D();         // learnt features of each epoch (pointwise)
      ops_added_ = true;
    }
    auto* interpreter = new tflite::MicroInterpreter(model, resolver_, arena_, sizeof arena_);
    if (interpreter->AllocateTensors() != kTfLiteOk ||
        interpreter->input(0)->bytes != sizeof window_ + kFeatureCount ||
        interpreter->output(0)->type != kTfLiteInt8 || interpreter->output(0)->bytes != 4) {
      delete interpreter;
      return false;
    }
    interpreter_ = interpreter;
    begin_night();
    return true;
  }
  uint8_t stage(const uint8_t codes[kFeatureCount], bool night_began) override {
    last_ok_ = false;
    if (night_began) begin_night();
    std::memmove(window_, window_ + kFeatureCount, sizeof window_ - kFeatureCount);
    std::memcpy(window_ + sizeof window_ - kFeatureCount, codes, kFeatureCount);
    night_.add(codes);
    if (interpreter_ == nullptr) return kNoStage;
    uint8_t* input = interpreter_->input(0)->data.uint8;  // sizes checked in begin()
    std::memcpy(input, window_, sizeof window_);
    night_.means(input + sizeof window_);
    if (interpreter_->Invoke() != kTfLiteOk) return kNoStage;
    const int8_t* logits = interpreter_->output(0)->data.int8;
    uint8_t best = 0;
    for (uint8_t s = 1; s < 4; ++s)
      if (logits[s] > logits[best]) best = s;
    last_ok_ = true;
    return best;
  }
  bool last_ok() const { return last_ok_; }

  // Whether a model runs: begins, and stages a window of missing epochs. Its own
  // interpreter and arena, on the heap only for the probe.
  static bool probe(const uint8_t* model_bytes) {
    auto* trial = new EdgeStager();
    uint8_t missing[kFeatureCount];
    std::memset(missing, kMissingCode, sizeof missing);
    const bool ok = trial->begin(model_bytes) && trial->stage(missing, true) != kNoStage;
    delete trial;
    return ok;
  }

 private:
  void begin_night() {  // an empty history is all missing
    std::memset(window_, kMissingCode, sizeof window_);
    night_.reset();
  }

  tflite::MicroMutableOpResolver<10> resolver_;
  bool ops_added_ = false;
  tflite::MicroInterpreter* interpreter_ = nullptr;
  bool last_ok_ = false;
  alignas(16) uint8_t arena_[kArenaCapacity];
  uint8_t window_[kEdgeWindowEpochs * kFeatureCount];
  NightSoFar night_;
};

}  // namespace noctis::board

using namespace noctis;

// The upload path (TLS, the sync client, the queue) runs in the loop task: its stack is
// set here, and `make -C edge_firmware stack-check` proves the core's deepest call chain
// plus the ports' allowance fits in it.
SET_LOOP_TASK_STACK_SIZE(board::kLoopTaskStackBytes);

namespace {
board::Provisioning provisioning;
board::HttpsTransport* transport;
board::PartitionFlash* queue_flash;
board::NvsStore nvs;
Device* device;
board::EspRandom random_source;
board::Mpu6050 imu;
board::EdgeStager stager;
board::PartitionModelSlots* model_slots;
ModelUpdater* model_updater;
ModelTrial* model_trial;
uint32_t model_version = kEdgeModelVersion;
uint32_t lookahead_epochs = kEdgeModelLookahead;  // the running model's, as its manifest says
ModelManifest running_model;  // the installed slot's manifest; rollout 0 for the compiled-in model
uint64_t next_ota_check_ms = 0;

// OTA public key, provisioned with the device (GET /v1/ota/public-key).
uint8_t ota_public_key[32] = {};
RadarParser radar;
EpochFeatures epoch;
uint64_t next_sync_ms = 0;

// Monotonic milliseconds since boot, 64-bit: millis() would wrap after 49.7 days.
uint64_t now_ms() { return static_cast<uint64_t>(esp_timer_get_time()) / 1000u; }

void load_provisioning() {
  Preferences prefs;
  prefs.begin("noctis", true);
  provisioning.wifi_ssid = prefs.getString("ssid");
  provisioning.wifi_password = prefs.getString("wifi_pw");
  provisioning.server_url = prefs.getString("server");
  provisioning.device_id = prefs.getString("device_id");
  provisioning.device_secret = prefs.getString("secret");
  provisioning.ca = prefs.getString("ca");
  const String key_hex = prefs.getString("ota_key");
  sodium_hex2bin(ota_public_key, sizeof ota_public_key, key_hex.c_str(), key_hex.length(), nullptr, nullptr, nullptr);
  prefs.end();
}

// The provisioning console on the USB serial: one line in, one line out. A setting
// takes effect at once (the transport reads the provisioning; Wi-Fi reconnects).
ProvisioningConsole console(nvs);
char console_line[600];
size_t console_len = 0;

void serve_console() {
  while (Serial.available()) {
    const char c = static_cast<char>(Serial.read());
    if (c == '\r') continue;
    if (c != '\n') {
      if (console_len + 1 < sizeof console_line) console_line[console_len++] = c;
      continue;
    }
    console_line[console_len] = '\0';
    console_len = 0;
    char reply[700];
    console.handle(console_line, reply, sizeof reply);
    Serial.printf("%s\n", reply);
    if (std::strncmp(reply, "ok ", 3) == 0) {  // a setting was stored
      load_provisioning();
      transport->trust();
      WiFi.begin(provisioning.wifi_ssid.c_str(), provisioning.wifi_password.c_str());
    }
  }
}

void blink(int times, int ms) {
  for (int i = 0; i < times; ++i) {
    digitalWrite(pins::kStatusLed, HIGH);
    delay(ms);
    digitalWrite(pins::kStatusLed, LOW);
    delay(ms);
  }
}

// One 50-Hz sampling step: the radar's frames so far and one accelerometer reading.
void sample_once() {
  RadarReport report;
  while (Serial2.available())
    if (radar.feed(static_cast<uint8_t>(Serial2.read()), &report)) epoch.add_radar(report);
  double x, y, z;
  if (imu.read_mg(&x, &y, &z)) epoch.add_accel(x, y, z, static_cast<uint32_t>(now_ms()));
}

void collect_epoch(uint32_t duration_ms, double features[kFeatureCount]) {
  const uint32_t until = millis() + duration_ms;
  while (static_cast<int32_t>(until - millis()) > 0) {
    sample_once();
    delay(20);  // 50 Hz
  }
  epoch.finish(0.0, features);
}

void placement_check() {
  double still[kFeatureCount], turning[kFeatureCount];
  blink(1, 500);
  collect_epoch(30000, still);  // lie still
  blink(2, 500);
  collect_epoch(30000, turning);  // turn over once
  const PlacementResult result = check_placement(still, turning);
  blink(result.ok() ? 3 : 10 * result.first_failure(), result.ok() ? 400 : 80);
}

// Sampling runs in its own task, never behind the network: the loop task below may
// wait up to 30 s on one HTTP request. Finished epochs cross over in a FreeRTOS queue;
// the Device (queue, sync) is touched by the loop task only, so it needs no lock.
using board::FinishedEpoch;
QueueHandle_t finished_epochs;
// Full only if the loop task stalled eight minutes, which the 60-s watchdog prevents.
volatile uint32_t epochs_not_handed_over = 0;

void sampling_task(void*) {
  esp_task_wdt_add(nullptr);
  TickType_t wake = xTaskGetTickCount();
  uint64_t started_ms = now_ms();
  for (;;) {
    sample_once();
    const uint64_t now = now_ms();
    if (now - started_ms >= static_cast<uint64_t>(kEpochSeconds) * 1000u) {
      FinishedEpoch done;
      done.start_ms = started_ms;
      epoch.finish(0.0, done.features);  // the device fills in hours since the night's start
      if (xQueueSend(finished_epochs, &done, 0) != pdTRUE) epochs_not_handed_over = epochs_not_handed_over + 1;
      started_ms += static_cast<uint64_t>(kEpochSeconds) * 1000u;
    }
    esp_task_wdt_reset();
    vTaskDelayUntil(&wake, pdMS_TO_TICKS(20));  // 50 Hz
  }
}
}  // namespace

void setup() {
  Serial.begin(115200);
  pinMode(pins::kStatusLed, OUTPUT);
  pinMode(pins::kSetupButton, INPUT_PULLUP);
  pinMode(pins::kImuInt, INPUT);
  Serial2.setRxBufferSize(board::kRadarUartBufferBytes);  // radar frames keep arriving while the loop task uploads
  Serial2.begin(115200, SERIAL_8N1, pins::kRadarUartRx, pins::kRadarUartTx);
  imu.begin();
  sodium_init();
  load_provisioning();
  if (digitalRead(pins::kSetupButton) == LOW) placement_check();

  model_slots = new board::PartitionModelSlots();
  model_updater = new ModelUpdater(*model_slots, ota_public_key, board::kArenaCapacity);
  model_trial = new ModelTrial(nvs, *model_updater);
  if (model_trial->on_boot()) ESP.restart();  // a new model that kept crashing us: rolled back
  ModelManifest installed;
  const int slot = model_slots->active();
  const void* mapped = nullptr;
  bool started = false;
  if (model_updater->verified(slot, &installed) && model_slots->map(slot, &mapped)) {
    // Run the installed model straight from flash (memory-mapped): no RAM copy.
    started = stager.begin(static_cast<const uint8_t*>(mapped) + kSlotHeaderBytes);
    if (started) {
      model_version = installed.model_version;
      lookahead_epochs = installed.lookahead_epochs;
      running_model = installed;
    } else if (model_trial->failed_to_start()) {
      ESP.restart();  // back on the previous slot
    }
  }
  if (!started) {
    stager.begin(kEdgeModel);  // nothing usable in the slots: the model the firmware shipped with
    running_model.model_version = kEdgeModelVersion;
    running_model.lookahead_epochs = kEdgeModelLookahead;
    crypto_hash_sha256(running_model.sha256, kEdgeModel, kEdgeModelBytes);
  }
  const esp_partition_t* part = esp_partition_find_first(ESP_PARTITION_TYPE_DATA,
                                                         static_cast<esp_partition_subtype_t>(0x42), "queue");
  queue_flash = new board::PartitionFlash(part);
  transport = new board::HttpsTransport(provisioning);
  DeviceConfig config;
  config.model_version = model_version;
  config.lookahead_epochs = lookahead_epochs;
  device = new Device(*queue_flash, *transport, random_source, nvs, stager, config);
  const RecoveryReport report = device->boot();
  Serial.printf("queue: %u blocks, %llu epochs pending, %u corrupt; incarnation %u, next seq %u\n", report.blocks,
                static_cast<unsigned long long>(report.pending_epochs), report.corrupt_blocks, device->incarnation(),
                device->next_seq());
  WiFi.begin(provisioning.wifi_ssid.c_str(), provisioning.wifi_password.c_str());
  // NTP runs in the background; epochs are recorded from now on and anchored when it answers.
  configTime(0, 0, "pool.ntp.org");
  esp_task_wdt_init(board::kWatchdogSeconds, true);  // a task stuck beyond any HTTP timeout restarts the device
  esp_task_wdt_add(nullptr);    // the loop task
  finished_epochs = xQueueCreate(board::kEpochQueueLength, sizeof(FinishedEpoch));
  // Core 1 beside the loop task, one priority above it; Wi-Fi and TLS run on core 0.
  xTaskCreatePinnedToCore(sampling_task, "sampling", board::kSamplingStackBytes, nullptr, 2, nullptr, 1);
}

void loop() {
  serve_console();
  esp_task_wdt_reset();
  FinishedEpoch done;
  while (xQueueReceive(finished_epochs, &done, 0) == pdTRUE) {
    device->record_epoch(done.start_ms, done.features);
    model_trial->staged(stager.last_ok());
    next_sync_ms = now_ms();
  }
  const uint64_t now = now_ms();
  if (!device->time_known() && time(nullptr) >= 1420070400) {  // NTP answered (after 2015)
    device->set_time(now, static_cast<uint32_t>(time(nullptr)));
  }
  if (now >= next_sync_ms) {
    device->set_vitals(WiFi.status() == WL_CONNECTED ? WiFi.RSSI() : 0, ESP.getFreeHeap());
    next_sync_ms = now + device->sync(now);
  }
  if (now >= next_ota_check_ms) {
    next_ota_check_ms = now + board::kOtaCheckHours * 3600ull * 1000u;  // four times a day is plenty
    const SlotProbe probe = [](int candidate) {
      const void* bytes = nullptr;
      return model_slots->map(candidate, &bytes) &&
             board::EdgeStager::probe(static_cast<const uint8_t*>(bytes) + kSlotHeaderBytes);
    };
    if (transport->update_model(*model_updater, running_model, probe)) {
      model_trial->installed();  // kept only after good stagings (boot-confirm)
      ESP.restart();
    }
  }
  delay(10);
}
