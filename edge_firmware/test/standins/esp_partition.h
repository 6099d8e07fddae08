// Declarations as in ESP-IDF 4.4 (esp_partition.h), as arduino-esp32 2.0.x ships it.
#pragma once
#include <cstddef>
#include <cstdint>

typedef int esp_err_t;
enum esp_partition_type_t { ESP_PARTITION_TYPE_APP = 0, ESP_PARTITION_TYPE_DATA = 1 };
enum esp_partition_subtype_t : int {};
struct esp_partition_t {
  esp_partition_type_t type;
  esp_partition_subtype_t subtype;
  uint32_t address;
  uint32_t size;
  char label[17];
};
const esp_partition_t* esp_partition_find_first(esp_partition_type_t type, esp_partition_subtype_t subtype,
                                                const char* label);
esp_err_t esp_partition_read(const esp_partition_t* partition, size_t offset, void* dst, size_t size);
esp_err_t esp_partition_write(const esp_partition_t* partition, size_t offset, const void* src, size_t size);
esp_err_t esp_partition_erase_range(const esp_partition_t* partition, size_t offset, size_t size);
typedef uint32_t esp_partition_mmap_handle_t;
enum esp_partition_mmap_memory_t { ESP_PARTITION_MMAP_DATA = 0, ESP_PARTITION_MMAP_INST = 1 };
esp_err_t esp_partition_mmap(const esp_partition_t* partition, size_t offset, size_t size,
                             esp_partition_mmap_memory_t memory, const void** out_ptr,
                             esp_partition_mmap_handle_t* out_handle);
