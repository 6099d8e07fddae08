// NVS in RAM for the tests.
#pragma once
#include <cstring>
#include <map>
#include <string>

#include "noctis/device.h"

struct MemoryStore : noctis::KeyValueStore {
  std::map<std::string, uint32_t> values;
  std::map<std::string, std::string> strings;
  uint32_t get_u32(const char* key, uint32_t fallback) override {
    auto it = values.find(key);
    return it == values.end() ? fallback : it->second;
  }
  void set_u32(const char* key, uint32_t value) override { values[key] = value; }
  size_t get_str(const char* key, char* out, size_t cap) override {
    auto it = strings.find(key);
    if (it == strings.end()) return 0;
    const size_t n = it->second.size() < cap ? it->second.size() : cap - 1;
    std::memcpy(out, it->second.data(), n);
    out[n] = '\0';
    return it->second.size();
  }
  void set_str(const char* key, const char* value) override { strings[key] = value; }
};
