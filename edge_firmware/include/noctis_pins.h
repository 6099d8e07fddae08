// Generated from hardware/pinmap.toml by `python -m hardware pins`. Do not edit.
#pragma once

namespace noctis::pins {
constexpr int kRadarUartRx = 16;  // uart_rx: MR60BHA1 TX
constexpr int kRadarUartTx = 17;  // uart_tx: MR60BHA1 RX
constexpr int kImuI2CSda = 21;  // i2c_sda: GY-521 SDA
constexpr int kImuI2CScl = 22;  // i2c_scl: GY-521 SCL
constexpr int kImuInt = 35;  // input: GY-521 INT
constexpr int kSupplySense = 34;  // adc: 5 V rail through a 100k/47k divider
constexpr int kStatusLed = 32;  // output: green LED + 330 R to GND
constexpr int kSetupButton = 33;  // input_pullup: push button to GND
}  // namespace noctis::pins
