namespace DeviceAgent.Sensors.Adxl345;

/// <summary>ADXL345 register map (Analog Devices ADXL345 datasheet rev G, Table 19 "Register Map").</summary>
public enum Adxl345Register : byte
{
    /// <summary>DEVID, fixed 0xE5 (0345 octal).</summary>
    DevId = 0x00,

    /// <summary>THRESH_TAP: tap threshold, 62.5 mg/LSB.</summary>
    ThreshTap = 0x1D,

    /// <summary>DUR: maximum time above THRESH_TAP for a tap, 625 µs/LSB.</summary>
    Dur = 0x21,

    /// <summary>THRESH_FF: free-fall threshold on all axes, 62.5 mg/LSB (300..600 mg recommended).</summary>
    ThreshFf = 0x28,

    /// <summary>TIME_FF: minimum free-fall time, 5 ms/LSB (100..350 ms recommended).</summary>
    TimeFf = 0x29,

    /// <summary>TAP_AXES: which axes take part in tap detection.</summary>
    TapAxes = 0x2A,

    /// <summary>BW_RATE: output data rate code (Table 7).</summary>
    BwRate = 0x2C,

    /// <summary>POWER_CTL: Measure bit D3.</summary>
    PowerCtl = 0x2D,

    /// <summary>INT_ENABLE: interrupt enable bits (same layout as INT_SOURCE).</summary>
    IntEnable = 0x2E,

    /// <summary>INT_MAP: 0 routes the function to INT1, 1 to INT2.</summary>
    IntMap = 0x2F,

    /// <summary>INT_SOURCE: latched event bits; reading clears the tap, activity and free-fall bits.</summary>
    IntSource = 0x30,

    /// <summary>DATA_FORMAT: FULL_RES D3, range D1:D0.</summary>
    DataFormat = 0x31,

    /// <summary>DATAX0: first of the six data bytes (X, Y, Z, little endian, two's complement).</summary>
    DataX0 = 0x32,

    /// <summary>FIFO_CTL: FIFO_MODE D7:D6, Trigger D5, Samples D4:D0.</summary>
    FifoCtl = 0x38,

    /// <summary>FIFO_STATUS: FIFO_TRIG D7, Entries D5:D0.</summary>
    FifoStatus = 0x39,
}

/// <summary>Bits of INT_ENABLE, INT_MAP and INT_SOURCE (datasheet "Register 0x2E to 0x30").</summary>
[Flags]
public enum Adxl345Interrupts : byte
{
    None = 0,
    Overrun = 1 << 0,
    Watermark = 1 << 1,
    FreeFall = 1 << 2,
    Inactivity = 1 << 3,
    Activity = 1 << 4,
    DoubleTap = 1 << 5,
    SingleTap = 1 << 6,
    DataReady = 1 << 7,
}
