#include "posix_port.h"

#include "board/resources.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace noctis::host {

FileFlash::FileFlash(const std::string& path, uint32_t sectors, uint32_t seed) : sectors_(sectors), rng_(seed) {
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT, 0644);
  if (fd_ < 0) throw std::runtime_error("cannot open flash file " + path);
  const off_t size = static_cast<off_t>(sectors) * kSectorBytes;
  if (::lseek(fd_, 0, SEEK_END) < size) {  // a new chip: erased
    std::vector<uint8_t> erased(kSectorBytes, 0xFF);
    for (uint32_t s = 0; s < sectors; ++s)
      if (::pwrite(fd_, erased.data(), kSectorBytes, static_cast<off_t>(s) * kSectorBytes) != kSectorBytes)
        throw std::runtime_error("cannot size flash file");
  }
}

FileFlash::~FileFlash() { ::close(fd_); }

void FileFlash::read(uint32_t address, uint8_t* out, size_t len) {
  if (::pread(fd_, out, len, address) != static_cast<ssize_t>(len)) throw std::runtime_error("flash read");
}

bool FileFlash::cut_now() {
  if (budget_ < 0) return false;
  return budget_-- == 0;
}

void FileFlash::program(uint32_t address, const uint8_t* data, size_t len) {
  std::vector<uint8_t> cell(len);
  read(address, cell.data(), len);
  size_t applied = len;
  const bool cut = cut_now();
  if (cut) applied = std::uniform_int_distribution<size_t>(0, len - 1)(rng_);
  for (size_t i = 0; i < applied; ++i) cell[i] &= data[i];  // NOR: 1 -> 0 only
  if (cut) cell[applied] &= data[applied] | static_cast<uint8_t>(rng_());  // some of one byte's bits
  if (::pwrite(fd_, cell.data(), len, address) != static_cast<ssize_t>(len)) throw std::runtime_error("flash write");
  if (cut) _exit(99);
}

void FileFlash::erase_sector(uint32_t sector) {
  std::vector<uint8_t> erased(kSectorBytes, 0xFF);
  const size_t done = cut_now() ? kSectorBytes / 2 : kSectorBytes;  // a cut mid-erase
  if (::pwrite(fd_, erased.data(), done, static_cast<off_t>(sector) * kSectorBytes) != static_cast<ssize_t>(done))
    throw std::runtime_error("flash erase");
  if (done != kSectorBytes) _exit(99);
}

FileStore::FileStore(std::string path) : path_(std::move(path)) {
  std::ifstream in(path_);
  std::string key, type, value;
  while (in >> key >> type >> value) {
    if (type == "u") {
      values_[key] = static_cast<uint32_t>(std::strtoul(value.c_str(), nullptr, 10));
    } else {
      std::string text;
      for (size_t i = 0; i + 1 < value.size(); i += 2)
        text.push_back(static_cast<char>(std::stoi(value.substr(i, 2), nullptr, 16)));
      strings_[key] = text;
    }
  }
}

uint32_t FileStore::get_u32(const char* key, uint32_t fallback) {
  const auto it = values_.find(key);
  return it == values_.end() ? fallback : it->second;
}

void FileStore::set_u32(const char* key, uint32_t value) {
  values_[key] = value;
  save();
}

size_t FileStore::get_str(const char* key, char* out, size_t cap) {
  const auto it = strings_.find(key);
  if (it == strings_.end()) return 0;
  const size_t n = std::min(it->second.size(), cap - 1);
  std::memcpy(out, it->second.data(), n);
  out[n] = '\0';
  return it->second.size();
}

void FileStore::set_str(const char* key, const char* value) {
  strings_[key] = value;
  save();
}

std::string FileStore::str(const char* key) const {
  const auto it = strings_.find(key);
  return it == strings_.end() ? std::string() : it->second;
}

void FileStore::save() {
  const std::string temporary = path_ + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    for (const auto& [k, v] : values_) out << k << " u " << v << '\n';
    char hex[3];
    for (const auto& [k, v] : strings_) {
      out << k << " s ";
      for (const unsigned char c : v) {
        std::snprintf(hex, sizeof hex, "%02x", c);
        out << hex;
      }
      out << '\n';
    }
  }
  std::rename(temporary.c_str(), path_.c_str());  // NVS commits a write whole or not at all
}

namespace {
size_t collect(char* data, size_t size, size_t count, void* answer) {
  static_cast<std::string*>(answer)->append(data, size * count);
  return size * count;
}
size_t retry_after(char* data, size_t size, size_t count, void* out) {
  const size_t len = size * count;
  constexpr char kName[] = "retry-after:";
  if (len > sizeof kName && strncasecmp(data, kName, sizeof kName - 1) == 0)
    *static_cast<uint32_t*>(out) = static_cast<uint32_t>(std::strtoul(data + sizeof kName - 1, nullptr, 10));
  return len;
}
}  // namespace

CurlTransport::CurlTransport(const FileStore& provisioning) : provisioning_(provisioning), curl_(curl_easy_init()) {}

CurlTransport::~CurlTransport() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

long CurlTransport::post(const std::string& path, const char* content_type, const void* body, size_t len,
                         std::string* answer, uint32_t* retry_after_s) {
  if (!link_up) return 0;
  CURL* curl = static_cast<CURL*>(curl_);
  curl_easy_reset(curl);
  const std::string url = provisioning_.str("server") + path;
  // Trust only the provisioned CA, as the ESP32 does (WiFiClientSecure::setCACert):
  // not the host's certificate store. Without one, no https:// request verifies.
  std::string ca = provisioning_.str("ca");
  curl_blob blob{ca.data(), ca.size(), CURL_BLOB_COPY};
  curl_easy_setopt(curl, CURLOPT_CAINFO, nullptr);
  curl_easy_setopt(curl, CURLOPT_CAPATH, nullptr);
  curl_easy_setopt(curl, CURLOPT_CAINFO_BLOB, &blob);
  if (std::getenv("NOCTIS_CURL_VERBOSE")) curl_easy_setopt(curl, CURLOPT_VERBOSE, 1L);  // TLS handshakes on stderr
  curl_slist* headers = curl_slist_append(nullptr, (std::string("Content-Type: ") + content_type).c_str());
  if (!token_.empty()) headers = curl_slist_append(headers, ("Authorization: Bearer " + token_).c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(len));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, answer);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, retry_after);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, retry_after_s);
  // The board's timeouts (src/board/resources.h): a hung server is a failed upload.
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(board::kHttpConnectTimeoutMs));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(board::kHttpConnectTimeoutMs + board::kHttpReadTimeoutMs));
  long status = 0;
  if (curl_easy_perform(curl) == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  return status;
}

UploadResult CurlTransport::upload(const uint8_t* body, size_t len) {
  UploadResult result;
  std::string answer;
  const long status = post("/v1/epochs:ingest", "application/octet-stream", body, len, &answer, &result.retry_after_s);
  if (status == 0) return result;  // kNetworkError
  result.status = static_cast<int>(status);
  result.kind = status == 200 && parse_ack(answer.data(), answer.size(), &result) ? UploadResult::Kind::kAcknowledged
                                                                                   : UploadResult::Kind::kHttpError;
  return result;
}

bool CurlTransport::refresh_token() {
  const std::string body =
      "{\"device_id\":\"" + provisioning_.str("device_id") + "\",\"secret\":\"" + provisioning_.str("secret") + "\"}";
  std::string answer;
  uint32_t ignored = 0;
  token_.clear();
  if (post("/v1/auth/device-token", "application/json", body.data(), body.size(), &answer, &ignored) != 200)
    return false;
  const std::string key = "\"access_token\":\"";
  const size_t at = answer.find(key);
  if (at == std::string::npos) return false;
  const size_t from = at + key.size();
  token_ = answer.substr(from, answer.find('"', from) - from);
  return !token_.empty();
}

uint8_t ReplayStager::stage(const uint8_t[kFeatureCount], bool) {
  if (next.empty()) return kNoStage;
  const uint8_t stage = next.front();
  next.pop_front();
  return stage;
}

}  // namespace noctis::host
