namespace DeviceAgent.Sensors.Bme280;

/// <summary>BME280 register addresses (Bosch BME280 datasheet rev 1.6, §5.3 "Register description", Table 18 memory map).</summary>
public enum Bme280Register : byte
{
    /// <summary>First of the 26 temperature/pressure trimming bytes 0x88..0xA1 (§4.2.2, Table 16).</summary>
    CalibrationTp = 0x88,

    /// <summary>dig_H1 (unsigned char) at 0xA1 (§4.2.2, Table 16).</summary>
    CalibrationH1 = 0xA1,

    /// <summary>"id": chip identification number, 0x60 on a BME280 (§5.4.1).</summary>
    ChipId = 0xD0,

    /// <summary>"reset": writing 0xB6 performs a power-on reset (§5.4.2).</summary>
    Reset = 0xE0,

    /// <summary>First of the humidity trimming bytes 0xE1..0xE7 (§4.2.2, Table 16).</summary>
    CalibrationH2 = 0xE1,

    /// <summary>"ctrl_hum": osrs_h[2:0]; takes effect only after a write to ctrl_meas (§5.4.3).</summary>
    CtrlHum = 0xF2,

    /// <summary>"status": measuring[3], im_update[0] (§5.4.4).</summary>
    Status = 0xF3,

    /// <summary>"ctrl_meas": osrs_t[7:5], osrs_p[4:2], mode[1:0] (§5.4.5).</summary>
    CtrlMeas = 0xF4,

    /// <summary>"config": t_sb[7:5], filter[4:2], spi3w_en[0] (§5.4.6).</summary>
    Config = 0xF5,

    /// <summary>press_msb; a burst read 0xF7..0xFE returns press, temp and hum raw ADC values (§4, §5.4.7-9).</summary>
    PressMsb = 0xF7,

    /// <summary>temp_msb (§5.4.8).</summary>
    TempMsb = 0xFA,

    /// <summary>hum_msb (§5.4.9).</summary>
    HumMsb = 0xFD,
}

/// <summary>Oversampling settings for osrs_h/osrs_t/osrs_p (datasheet Tables 20, 22, 23).</summary>
public enum Bme280Oversampling : byte
{
    Skipped = 0b000,
    X1 = 0b001,
    X2 = 0b010,
    X4 = 0b011,
    X8 = 0b100,
    X16 = 0b101,
}
