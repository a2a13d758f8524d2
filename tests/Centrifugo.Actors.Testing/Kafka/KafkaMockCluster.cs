using System.Runtime.InteropServices;

namespace Centrifugo.Actors.Testing.Kafka;

/// <summary>
/// librdkafka's in-process mock Kafka cluster: real Kafka protocol on ephemeral 127.0.0.1 ports, no SASL/TLS,
/// no admin topic creation (use <see cref="CreateTopic"/>), at most 5 MiB per partition, state in memory only.
/// Thread-safe. Request errors pushed with <see cref="PushRequestErrors"/> sit on a cluster-wide stack per ApiKey,
/// so tests that push errors should own their cluster or clear the stack afterwards.
/// </summary>
internal sealed unsafe class KafkaMockCluster : IDisposable
{
    private readonly Lock _gate = new();
    private IntPtr _handle;
    private IntPtr _cluster;

    private KafkaMockCluster(IntPtr handle, IntPtr cluster, int brokerCount)
    {
        _handle = handle;
        _cluster = cluster;
        BrokerCount = brokerCount;
        Bootstrap = Marshal.PtrToStringUTF8(Native.rd_kafka_mock_cluster_bootstraps(cluster))
            ?? throw new InvalidOperationException("The mock cluster returned no bootstrap list.");
    }

    /// <summary>The mock's own listeners, "127.0.0.1:port,..." in broker id order (1..n).</summary>
    public string Bootstrap { get; }

    public int BrokerCount { get; }

    /// <summary>Broker ids are 1..<paramref name="brokers"/>; the controller is broker 1.</summary>
    /// <param name="initialRebalanceDelayMs">Classic group first-join delay (the mock's default is 3000 ms).</param>
    public static KafkaMockCluster Create(int brokers = 3, int initialRebalanceDelayMs = 0)
    {
        TestLane.RequireInfrastructure("a Kafka mock broker");
        ArgumentOutOfRangeException.ThrowIfLessThan(brokers, 1);
        const int errSize = 512;
        var err = stackalloc byte[errSize];
        var conf = Native.rd_kafka_conf_new();
        // Only the mock's own client logs here; warnings and errors are enough.
        if (Native.rd_kafka_conf_set(conf, "log_level", "4", err, errSize) != 0)
        {
            Native.rd_kafka_conf_destroy(conf);
            throw new InvalidOperationException("rd_kafka_conf_set failed: " + Marshal.PtrToStringUTF8((IntPtr)err));
        }

        var handle = Native.rd_kafka_new(0, conf, err, errSize);
        if (handle == IntPtr.Zero)
        {
            Native.rd_kafka_conf_destroy(conf);
            throw new InvalidOperationException("rd_kafka_new failed: " + Marshal.PtrToStringUTF8((IntPtr)err));
        }

        var cluster = Native.rd_kafka_mock_cluster_new(handle, brokers);
        if (cluster == IntPtr.Zero)
        {
            Native.rd_kafka_destroy(handle);
            throw new InvalidOperationException("rd_kafka_mock_cluster_new failed.");
        }

        // Without an explicit controller id admin-ish requests wait 5 s for a controller.
        Native.rd_kafka_mock_set_controller_id(cluster, 1);
        Native.rd_kafka_mock_group_initial_rebalance_delay_ms(cluster, initialRebalanceDelayMs);
        // KIP-848 groups (group.protocol=consumer): the timings our consumers' defaults assume.
        Native.rd_kafka_mock_set_group_consumer_heartbeat_interval_ms(cluster, ConsumerGroupHeartbeatMs);
        Native.rd_kafka_mock_set_group_consumer_session_timeout_ms(cluster, ConsumerGroupSessionMs);
        return new KafkaMockCluster(handle, cluster, brokers);
    }

    public void CreateTopic(string name, int partitions, int replicationFactor = 1) =>
        Check(Call(c => Native.rd_kafka_mock_topic_create(c, name, partitions, replicationFactor)), $"create topic {name}");

    public void DeleteTopic(string name) => Check(Call(c => Native.rd_kafka_mock_topic_delete(c, name)), $"delete topic {name}");

    /// <summary>Closes the broker's listener and connections; its partitions stop until <see cref="SetBrokerUp"/>. Data is kept.</summary>
    public void SetBrokerDown(int brokerId) =>
        Check(Call(c => Native.rd_kafka_mock_broker_set_down(c, brokerId)), $"broker {brokerId} down");

    public void SetBrokerUp(int brokerId) => Check(Call(c => Native.rd_kafka_mock_broker_set_up(c, brokerId)), $"broker {brokerId} up");

    public void SetRtt(int brokerId, int rttMs) =>
        Check(Call(c => Native.rd_kafka_mock_broker_set_rtt(c, brokerId, rttMs)), $"broker {brokerId} rtt");

    public void SetPartitionLeader(string topic, int partition, int brokerId) =>
        Check(Call(c => Native.rd_kafka_mock_partition_set_leader(c, topic, partition, brokerId)), $"leader {topic}/{partition}");

    public void SetGroupCoordinator(string group, int brokerId) =>
        Check(Call(c => Native.rd_kafka_mock_coordinator_set(c, "group", group, brokerId)), $"coordinator of group {group}");

    /// <summary>Makes Metadata/FindCoordinator advertise host:port for the broker (its listener does not move).</summary>
    public void SetAdvertisedHostPort(int brokerId, string host, int port) =>
        Call(c => { Native.rd_kafka_mock_broker_set_host_port(c, brokerId, host, port); return 0; });

    public void SetControllerId(int brokerId) => Call(c => { Native.rd_kafka_mock_set_controller_id(c, brokerId); return 0; });

    /// <summary>The mock's KIP-848 heartbeat interval and session timeout (group.consumer.* on a real broker).</summary>
    public const int ConsumerGroupHeartbeatMs = 500;

    public const int ConsumerGroupSessionMs = 6000;

    public void SetInitialRebalanceDelay(int delayMs) =>
        Call(c => { Native.rd_kafka_mock_group_initial_rebalance_delay_ms(c, delayMs); return 0; });

    /// <summary>The next requests of that ApiKey (any client) fail with these Kafka error codes, in order.</summary>
    public void PushRequestErrors(short apiKey, params int[] errorCodes)
    {
        ArgumentNullException.ThrowIfNull(errorCodes);
        Call(c =>
        {
            fixed (int* codes = errorCodes)
            {
                Native.rd_kafka_mock_push_request_errors_array(c, apiKey, (nuint)errorCodes.Length, codes);
            }

            return 0;
        });
    }

    public void ClearRequestErrors(short apiKey) => Call(c => { Native.rd_kafka_mock_clear_request_errors(c, apiKey); return 0; });

    public void Dispose()
    {
        lock (_gate)
        {
            if (_cluster != IntPtr.Zero)
            {
                Native.rd_kafka_mock_cluster_destroy(_cluster);
                _cluster = IntPtr.Zero;
            }

            if (_handle != IntPtr.Zero)
            {
                Native.rd_kafka_destroy(_handle);
                _handle = IntPtr.Zero;
            }
        }
    }

    private int Call(Func<IntPtr, int> action)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_cluster == IntPtr.Zero, this);
            return action(_cluster);
        }
    }

    private static void Check(int error, string what)
    {
        if (error != 0)
        {
            throw new InvalidOperationException(
                $"Mock cluster: {what} failed: {Marshal.PtrToStringUTF8(Native.rd_kafka_err2str(error))} ({error}).");
        }
    }
}
