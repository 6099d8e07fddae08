#include "noctis/provisioning.h"

#include <cctype>
#include <cstdio>
#include <cstring>

#include "noctis/device.h"

namespace noctis {

namespace {
struct Setting {
  const char* key;
  bool secret;  // shown only as (set) or (unset)
};
constexpr Setting kSettings[] = {{"ssid", false},      {"wifi_pw", true}, {"server", false}, {"device_id", false},
                                 {"secret", true},     {"ota_key", false}, {"ca", false}};
constexpr size_t kMaxValue = 512;  // every setting but the CA

const Setting* find(const char* key) {
  for (const Setting& s : kSettings)
    if (std::strcmp(s.key, key) == 0) return &s;
  return nullptr;
}

// Why a value cannot be stored under key, or nullptr.
const char* invalid(const char* key, const char* value) {
  const size_t len = std::strlen(value);
  if (len == 0) return "empty value";
  if (std::strcmp(key, "server") == 0 && std::strncmp(value, "https://", 8) != 0 &&
      std::strncmp(value, "http://", 7) != 0)
    return "server must start with https:// (or http:// on a trusted network)";
  if (std::strcmp(key, "ota_key") == 0) {
    if (len != 64) return "ota_key is 64 hex digits";
    for (size_t i = 0; i < len; ++i)
      if (!std::isxdigit(static_cast<unsigned char>(value[i]))) return "ota_key is 64 hex digits";
  }
  if (std::strcmp(key, "device_id") == 0 && len != 36) return "device_id is a UUID (36 characters)";
  return nullptr;
}
}  // namespace

bool provisioned(KeyValueStore& store, const char** missing) {
  char value[8];
  for (const Setting& s : kSettings) {
    if (std::strcmp(s.key, "ca") == 0) continue;  // plain http:// needs none; https:// checks it at connect
    if (store.get_str(s.key, value, sizeof value) == 0) {
      if (missing) *missing = s.key;
      return false;
    }
  }
  return true;
}

void ProvisioningConsole::handle(const char* line, char* out, size_t cap) {
  if (reading_ca_) {
    if (std::strcmp(line, "ca-end") == 0) {
      reading_ca_ = false;
      if (std::strstr(ca_, "-----BEGIN CERTIFICATE-----") == nullptr) {
        std::snprintf(out, cap, "error the CA is not a PEM certificate");
        return;
      }
      store_.set_str("ca", ca_);
      std::snprintf(out, cap, "ok ca %u bytes", static_cast<unsigned>(ca_len_));
      return;
    }
    const size_t len = std::strlen(line);
    if (ca_len_ + len + 1 > kMaxCaBytes) {
      reading_ca_ = false;
      std::snprintf(out, cap, "error the CA is longer than %u bytes", static_cast<unsigned>(kMaxCaBytes));
      return;
    }
    std::memcpy(ca_ + ca_len_, line, len);
    ca_len_ += len;
    ca_[ca_len_++] = '\n';
    ca_[ca_len_] = '\0';
    std::snprintf(out, cap, "ok");
    return;
  }
  char command[16] = {}, key[16] = {};
  const char* rest = line;
  int used = 0;
  if (std::sscanf(line, "%15s%n", command, &used) != 1) {
    std::snprintf(out, cap, "error empty line");
    return;
  }
  rest += used;
  if (std::strcmp(command, "ca-begin") == 0) {
    reading_ca_ = true;
    ca_len_ = 0;
    ca_[0] = '\0';
    std::snprintf(out, cap, "ok");
  } else if (std::strcmp(command, "set") == 0) {
    if (std::sscanf(rest, "%15s%n", key, &used) != 1) {
      std::snprintf(out, cap, "error set KEY VALUE");
      return;
    }
    rest += used;
    while (*rest == ' ') ++rest;
    const Setting* setting = find(key);
    if (setting == nullptr || std::strcmp(key, "ca") == 0) {
      std::snprintf(out, cap, "error unknown setting %s (the CA goes between ca-begin and ca-end)", key);
      return;
    }
    if (std::strlen(rest) > kMaxValue) {
      std::snprintf(out, cap, "error %s is longer than %u characters", key, static_cast<unsigned>(kMaxValue));
      return;
    }
    if (const char* why = invalid(key, rest)) {
      std::snprintf(out, cap, "error %s", why);
      return;
    }
    store_.set_str(key, rest);
    std::snprintf(out, cap, "ok %s", key);
  } else if (std::strcmp(command, "show") == 0) {
    size_t at = 0;
    for (const Setting& s : kSettings) {
      char value[kMaxValue + 1];
      const size_t len = store_.get_str(s.key, value, sizeof value);
      int n;
      if (len == 0)
        n = std::snprintf(out + at, cap - at, "%s%s=(unset)", at ? " " : "", s.key);
      else if (s.secret)
        n = std::snprintf(out + at, cap - at, "%s%s=(set)", at ? " " : "", s.key);
      else if (std::strcmp(s.key, "ca") == 0)
        n = std::snprintf(out + at, cap - at, "%sca=(%u bytes)", at ? " " : "", static_cast<unsigned>(len));
      else
        n = std::snprintf(out + at, cap - at, "%s%s=%s", at ? " " : "", s.key, value);
      if (n < 0 || static_cast<size_t>(n) >= cap - at) break;
      at += static_cast<size_t>(n);
    }
  } else if (std::strcmp(command, "check") == 0) {
    const char* missing = nullptr;
    if (provisioned(store_, &missing))
      std::snprintf(out, cap, "ready");
    else
      std::snprintf(out, cap, "missing %s", missing);
  } else {
    std::snprintf(out, cap, "error unknown command %s (set, ca-begin, show, check)", command);
  }
}

}  // namespace noctis
