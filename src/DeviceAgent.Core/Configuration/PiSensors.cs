using System.Device.Gpio;
using System.Device.I2c;
using System.Device.Spi;
using System.IO.Ports;
using System.Text.Json;
using DeviceAgent.Sensors.Adxl345;
using DeviceAgent.Sensors.Bme280;
using DeviceAgent.Sensors.Gps;
using DeviceAgent.Sensors.WaterLeak;

namespace DeviceAgent.Configuration;

/// <summary>
/// The sensor types a Raspberry Pi kit configures by name, each opening its real bus
/// (<c>/dev/i2c-N</c>, the GPIO character device, a serial port). Settings come from the sensor's
/// config entry: <c>bus</c>, <c>address</c>, <c>chipSelect</c> (the ADXL345 is on SPI), <c>pin</c>, <c>debounceMs</c>, <c>int1Pin</c>,
/// <c>int2Pin</c>, <c>port</c>, <c>baud</c> (docs/sensors-and-simulators.md has the wiring).
/// </summary>
internal static class PiSensors
{
    private static readonly Lazy<GpioController> Gpio = new(() => new GpioController());

    public static SensorRegistry Register(SensorRegistry registry) => registry
        .Register("bme280", c => new Bme280Sensor(
            I2cDevice.Create(new I2cConnectionSettings(Int(c, "bus", 1), Int(c, "address", Bme280Sensor.DefaultI2cAddress))),
            c.Id ?? "bme280"))
        .Register("leak-probe", c => new WaterLeakProbe(
            Gpio.Value, Int(c, "pin", WaterLeakProbe.DefaultPin), TimeSpan.FromMilliseconds(Int(c, "debounceMs", 200)), TimeProvider.System,
            id: c.Id ?? "leak-probe"))
        .Register("adxl345", c => new Adxl345Sensor(
            SpiDevice.Create(Adxl345Sensor.SpiSettings(Int(c, "bus", Adxl345Sensor.DefaultSpiBus), Int(c, "chipSelect", Adxl345Sensor.DefaultChipSelect))), TimeProvider.System,
            interrupts: c.Settings.ContainsKey("int1Pin") ? Gpio.Value : null, int1Pin: Int(c, "int1Pin", -1), int2Pin: Int(c, "int2Pin", -1),
            id: c.Id ?? "adxl345"))
        .Register("gps", c =>
        {
            var port = new SerialPort(Text(c, "port", NmeaGps.DefaultPortName), Int(c, "baud", NmeaGps.DefaultBaudRate)) { ReadTimeout = 2000 };
            port.Open();
            return new NmeaGps(port.BaseStream, c.Id ?? "gps", discardBufferedInput: port.DiscardInBuffer);
        });

    private static int Int(SensorConfig config, string name, int fallback) =>
        config.Settings.TryGetValue(name, out var value)
            ? value.ValueKind == JsonValueKind.String ? Convert.ToInt32(value.GetString(), 16) : value.GetInt32()
            : fallback;

    private static string Text(SensorConfig config, string name, string fallback) =>
        config.Settings.TryGetValue(name, out var value) ? value.GetString() ?? fallback : fallback;
}
