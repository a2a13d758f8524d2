using System.Reflection;
using System.Runtime.InteropServices;

namespace Centrifugo.Actors.Testing.Kafka;

// librdkafka's mock-cluster C API (rdkafka_mock.h, librdkafka.redist 2.16.0). Compiled into both the
// Testing library and the kafka-mock console host (linked file), so it stays free of other dependencies.
internal static unsafe partial class Native
{
    private const string Lib = "librdkafka";

    // The redist's librdkafka.so needs libsasl2.so.3, which Debian 12 lacks; Confluent.Kafka silently
    // falls back to centos8-librdkafka.so, a plain [DllImport] does not. Probe in Confluent's order so
    // the in-process mock and Confluent.Kafka share one loaded library. RDKAFKA_LIB overrides.
    static Native() => NativeLibrary.SetDllImportResolver(typeof(Native).Assembly, Resolve);

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (name != Lib)
        {
            return IntPtr.Zero;
        }

        var overridePath = Environment.GetEnvironmentVariable("RDKAFKA_LIB");
        if (!string.IsNullOrEmpty(overridePath) && NativeLibrary.TryLoad(overridePath, out var overridden))
        {
            return overridden;
        }

        // A RID-specific publish puts the .so files in the app root instead of runtimes/.
        foreach (var dir in new[] { Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native"), AppContext.BaseDirectory })
        {
            foreach (var file in new[] { "librdkafka.so", "centos8-librdkafka.so" })
            {
                var path = Path.Combine(dir, file);
                if (File.Exists(path) && NativeLibrary.TryLoad(path, out var handle))
                {
                    return handle;
                }
            }
        }

        return IntPtr.Zero;
    }

    [LibraryImport(Lib)] public static partial IntPtr rd_kafka_conf_new();
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int rd_kafka_conf_set(IntPtr conf, string name, string value, byte* errstr, nuint errstr_size);
    [LibraryImport(Lib)] public static partial void rd_kafka_conf_destroy(IntPtr conf);
    [LibraryImport(Lib)] public static partial IntPtr rd_kafka_new(int type, IntPtr conf, byte* errstr, nuint errstr_size);
    [LibraryImport(Lib)] public static partial void rd_kafka_destroy(IntPtr rk);
    [LibraryImport(Lib)] public static partial IntPtr rd_kafka_err2str(int err);
    // librdkafka's documented way to fabricate a fatal error in tests ("there is no practical way to trigger real
    // fatal errors in the idempotent producer"); returns RD_KAFKA_RESP_ERR__PREV_IN_PROGRESS if one was raised already.
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int rd_kafka_test_fatal_error(IntPtr rk, int err, string reason);
    [LibraryImport(Lib)] public static partial IntPtr rd_kafka_mock_cluster_new(IntPtr rk, int broker_cnt);
    [LibraryImport(Lib)] public static partial void rd_kafka_mock_cluster_destroy(IntPtr mc);
    [LibraryImport(Lib)] public static partial IntPtr rd_kafka_mock_cluster_bootstraps(IntPtr mc);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int rd_kafka_mock_topic_create(IntPtr mc, string topic, int partition_cnt, int replication_factor);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int rd_kafka_mock_topic_delete(IntPtr mc, string topic);
    [LibraryImport(Lib)] public static partial int rd_kafka_mock_broker_set_down(IntPtr mc, int broker_id);
    [LibraryImport(Lib)] public static partial int rd_kafka_mock_broker_set_up(IntPtr mc, int broker_id);
    [LibraryImport(Lib)] public static partial int rd_kafka_mock_broker_set_rtt(IntPtr mc, int broker_id, int rtt_ms);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    public static partial void rd_kafka_mock_broker_set_host_port(IntPtr mc, int broker_id, string host, int port);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int rd_kafka_mock_partition_set_leader(IntPtr mc, string topic, int partition, int broker_id);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int rd_kafka_mock_coordinator_set(IntPtr mc, string key_type, string key, int broker_id);
    [LibraryImport(Lib)] public static partial void rd_kafka_mock_group_initial_rebalance_delay_ms(IntPtr mc, int delay_ms);
    [LibraryImport(Lib)] public static partial void rd_kafka_mock_set_controller_id(IntPtr mc, int controller_id);
    [LibraryImport(Lib)] public static partial void rd_kafka_mock_set_group_consumer_heartbeat_interval_ms(IntPtr mc, int ms);
    [LibraryImport(Lib)] public static partial void rd_kafka_mock_set_group_consumer_session_timeout_ms(IntPtr mc, int ms);
    // rd_kafka_mock_push_request_errors is C varargs; the array twin is bindable.
    [LibraryImport(Lib)] public static partial void rd_kafka_mock_push_request_errors_array(
        IntPtr mc, short api_key, nuint cnt, int* errors);
    [LibraryImport(Lib)] public static partial void rd_kafka_mock_clear_request_errors(IntPtr mc, short api_key);
}
