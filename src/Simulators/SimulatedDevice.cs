using System.Security.Cryptography;
using DeviceAgent;
using DeviceAgent.Keys;
using DeviceAgent.Storage;
using Simulators.Scenarios;

namespace Simulators;

/// <summary>
/// A whole simulated device: a scenario's kit (real drivers over simulated buses) feeding the real
/// agent pipeline — sequence state, signing, durable outbox — on virtual time. Delivery is left to
/// the caller (a <see cref="DeviceAgent.Delivery.DirectorySink"/> or <see cref="DeviceAgent.Delivery.MqttDelivery"/>
/// over <see cref="Outbox"/>), exactly as on a Pi.
/// </summary>
public sealed class SimulatedDevice : IDisposable
{
    private readonly SimulatedKit _kit;
    private readonly DeviceKey _key;
    private readonly AgentPipeline _pipeline;

    private SimulatedDevice(string deviceId, SimulatedKit kit, DeviceKey key, Outbox outbox, AgentPipeline pipeline, ScenarioClock clock)
    {
        DeviceId = deviceId;
        _kit = kit;
        _key = key;
        Outbox = outbox;
        _pipeline = pipeline;
        Clock = clock;
    }

    public string DeviceId { get; }

    public Outbox Outbox { get; }

    public ScenarioClock Clock { get; }

    public Scenario Scenario => _kit.Scenario;

    /// <summary>The key that signs evidence (a hardware key presented as ECDsa, or a software key file when allowed).</summary>
    public ECDsa Signer => _key.Signer;

    public bool HasHardwareKey => _key.IsHardware;

    public string PublicKeyPem => _key.PublicPem();

    /// <summary>
    /// Opens (or creates, on first use) the device's key and state in <paramref name="stateDir"/> and
    /// builds its kit at <paramref name="start"/>. <paramref name="keyUri"/> is a device key URI
    /// (<c>pkcs11:</c>, <c>tpm:</c>, or <c>file:</c> with <paramref name="allowSoftwareKey"/>).
    /// </summary>
    public static SimulatedDevice Open(Scenario scenario, string deviceId, string stateDir, string keyUri, bool allowSoftwareKey, DateTimeOffset start, Microsoft.Extensions.Logging.ILogger? log = null)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        Directory.CreateDirectory(stateDir);
        var key = OpenOrCreateKey(keyUri, allowSoftwareKey, stateDir);
        Outbox? outbox = null;
        SimulatedKit? kit = null;
        try
        {
            outbox = Outbox.Open(Path.Combine(stateDir, "outbox"));
            var state = SequenceState.Open(stateDir, outbox);
            var clock = new ScenarioClock(start);
            kit = SimulatedKit.Create(scenario, clock);
            var pipeline = new AgentPipeline(deviceId, kit.Sensors, key.Signer, state, outbox, clock, log);
            return new SimulatedDevice(deviceId, kit, key, outbox, pipeline, clock);
        }
        catch
        {
            kit?.Dispose();
            outbox?.Dispose();
            key.Dispose();
            throw;
        }
    }

    /// <summary>The device's key if it exists (in its token, TPM or file), else a new one.</summary>
    private static DeviceKey OpenOrCreateKey(string keyUri, bool allowSoftwareKey, string stateDir)
    {
        try
        {
            return DeviceKey.Open(keyUri, allowSoftwareKey, stateDir);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException
            or ShareVault.Hardware.ShareStoreException { Error: ShareVault.Hardware.ShareStoreError.KeyNotFound })
        {
            return DeviceKey.Create(keyUri, allowSoftwareKey, stateDir);
        }
    }

    /// <summary>
    /// Runs the scenario for <paramref name="length"/> of virtual time, polling every <paramref name="step"/>
    /// (events such as a leak or a drop are recorded when they happen); returns every record made.
    /// </summary>
    public IReadOnlyList<RecordedEvidence> Run(TimeSpan length, TimeSpan? step = null, Action<RecordedEvidence>? onRecord = null)
    {
        var made = new List<RecordedEvidence>();
        void OnRecorded(object? sender, RecordedEvidence e)
        {
            made.Add(e);
            onRecord?.Invoke(e);
        }

        _pipeline.Recorded += OnRecorded;
        try
        {
            var interval = step ?? _kit.Step;
            for (var offset = TimeSpan.Zero; offset <= length; offset += interval)
            {
                _kit.AdvanceTo(_kit.Start + offset);
                _pipeline.CaptureNow();
            }
        }
        finally
        {
            _pipeline.Recorded -= OnRecorded;
        }

        return made;
    }

    public void Dispose()
    {
        _pipeline.Dispose();
        _kit.Dispose();
        Outbox.Dispose();
        _key.Dispose();
    }
}
