// The host port: what stands in for the ESP32's flash, NVS, radio and model when the
// firmware runs on a computer as one whole device (edge_firmware/host/main.cpp).
#pragma once
#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <random>
#include <string>

#include "noctis/device.h"

namespace noctis::host {

// The queue partition as a file of sectors with NOR semantics (programming clears bits,
// erase sets a sector to 0xFF). Armed with cut_after(n), the n-th next write is torn at
// a random byte and bit and the process dies there, as in a power cut.
class FileFlash : public Flash {
 public:
  FileFlash(const std::string& path, uint32_t sectors, uint32_t seed);
  ~FileFlash() override;
  uint32_t sector_count() const override { return sectors_; }
  void read(uint32_t address, uint8_t* out, size_t len) override;
  void program(uint32_t address, const uint8_t* data, size_t len) override;
  void erase_sector(uint32_t sector) override;
  void cut_after(long writes) { budget_ = writes; }

 private:
  bool cut_now();
  int fd_;
  uint32_t sectors_;
  long budget_ = -1;
  std::mt19937 rng_;
};

// NVS as a small file of "key u NUMBER" and "key s HEX" lines, replaced atomically
// (rename) on each write.
class FileStore : public KeyValueStore {
 public:
  explicit FileStore(std::string path);
  uint32_t get_u32(const char* key, uint32_t fallback) override;
  void set_u32(const char* key, uint32_t value) override;
  size_t get_str(const char* key, char* out, size_t cap) override;
  void set_str(const char* key, const char* value) override;
  std::string str(const char* key) const;

 private:
  void save();
  std::string path_;
  std::map<std::string, uint32_t> values_;
  std::map<std::string, std::string> strings_;
};

// HTTP(S) to the real server with libcurl, as provisioned (server, device_id, secret,
// and the CA that must sign an https:// server's certificate: no other is trusted, as
// on the ESP32). "link down" makes every request fail as a dropped Wi-Fi would.
class CurlTransport : public Transport {
 public:
  explicit CurlTransport(const FileStore& provisioning);
  ~CurlTransport() override;
  UploadResult upload(const uint8_t* body, size_t len) override;
  bool refresh_token() override;
  std::atomic<bool> link_up{true};

 private:
  long post(const std::string& path, const char* content_type, const void* body, size_t len, std::string* answer,
            uint32_t* retry_after_s);
  const FileStore& provisioning_;
  std::string token_;
  void* curl_;
};

// The edge model's stage, computed off-device by TFLite Micro for the replayed epoch
// (the host cannot build TFLM; the shared vectors prove the parity of the model itself).
class ReplayStager : public Stager {
 public:
  uint8_t stage(const uint8_t[kFeatureCount], bool) override;
  std::deque<uint8_t> next;
};

class SeededRandom : public RandomSource {
 public:
  explicit SeededRandom(uint32_t seed) : rng_(seed) {}
  uint32_t next() override { return static_cast<uint32_t>(rng_()); }

 private:
  std::mt19937 rng_;
};

}  // namespace noctis::host
