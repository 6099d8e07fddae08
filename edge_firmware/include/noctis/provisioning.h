// Provisioning: what a device must be told before it can work, and the console that
// tells it. The same commands arrive over the ESP32's USB serial (board.cpp) and on the
// host build's stdin (`provision ...`), and land in NVS:
//
//   set ssid NAME            Wi-Fi network
//   set wifi_pw PASSWORD     Wi-Fi password                       (never shown)
//   set server URL           https://host[:port] of the sync server
//   set device_id UUID       from POST /v1/devices
//   set secret SECRET        the device secret shown once then   (never shown)
//   set ota_key HEX          64 hex digits, GET /v1/ota/public-key
//   ca-begin / PEM lines / ca-end
//                            the CA that signs the server's TLS certificate
//   show                     every setting; secrets only as (set) or (unset)
//   check                    "ready", or what is missing
//
// Each line gets one reply line: "ok", an answer, or "error <why>".
#pragma once
#include <cstddef>
#include <cstdint>

namespace noctis {

class KeyValueStore;

constexpr size_t kMaxCaBytes = 4000;  // an ESP32 NVS string holds at most 4000 bytes

class ProvisioningConsole {
 public:
  explicit ProvisioningConsole(KeyValueStore& store) : store_(store) {}
  // Handles one line (without its newline); writes the reply, NUL-terminated, into out.
  void handle(const char* line, char* out, size_t cap);

 private:
  KeyValueStore& store_;
  bool reading_ca_ = false;
  char ca_[kMaxCaBytes + 1] = {};
  size_t ca_len_ = 0;
};

// Whether every setting a device needs to sync is present; names the first missing.
bool provisioned(KeyValueStore& store, const char** missing = nullptr);

}  // namespace noctis
