// Host stand-in for the Arduino-ESP32 core 2.0.x (ESP-IDF 4.4): declarations only, enough to compile-check
// the board glue. Nothing here runs.
#pragma once
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <string>

#define HIGH 1
#define LOW 0
#define INPUT 0x01
#define OUTPUT 0x03
#define INPUT_PULLUP 0x05
#define SERIAL_8N1 0x800001c

class String {
 public:
  String(const char* s = "") : s_(s) {}
  String(const std::string& s) : s_(s) {}
  const char* c_str() const { return s_.c_str(); }
  unsigned length() const { return static_cast<unsigned>(s_.size()); }
  int indexOf(const char* needle, unsigned from = 0) const;
  int indexOf(char c, unsigned from = 0) const;
  String substring(unsigned from, unsigned to) const;
  long toInt() const;
  String operator+(const String& other) const { return String(s_ + other.s_); }
  String operator+(const char* other) const { return String(s_ + other); }
  friend String operator+(const char* a, const String& b) { return String(std::string(a) + b.s_); }

 private:
  std::string s_;
};

class HardwareSerial {
 public:
  void begin(unsigned long baud);
  void begin(unsigned long baud, uint32_t config, int8_t rx, int8_t tx);
  int available();
  int read();
  size_t setRxBufferSize(size_t size);
  size_t printf(const char* format, ...);
};
extern HardwareSerial Serial;
extern HardwareSerial Serial2;

class EspClass {
 public:
  void restart();
  uint32_t getFreeHeap();
};
extern EspClass ESP;

unsigned long millis();
void delay(unsigned long ms);
void pinMode(uint8_t pin, uint8_t mode);
void digitalWrite(uint8_t pin, uint8_t value);
int digitalRead(uint8_t pin);
void configTime(long gmt_offset, int daylight_offset, const char* server);

// arduino-esp32's way to size the loop task's stack (default 8 KiB).
#define SET_LOOP_TASK_STACK_SIZE(sz) \
  size_t getArduinoLoopTaskStackSize() { return sz; }
