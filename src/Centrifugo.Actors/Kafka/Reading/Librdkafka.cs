using System.Reflection;
using System.Runtime.InteropServices;
using Confluent.Kafka;

namespace Centrifugo.Actors.Kafka;

/// <summary>
/// The few librdkafka calls Confluent.Kafka does not expose, made on the native handle of a client Confluent.Kafka
/// built (so its configuration, TLS/SASL, commits, assignment and error callbacks stay Confluent's): a partition's own
/// fetch queue detached from the consumer queue (<c>rd_kafka_queue_get_partition</c> + <c>rd_kafka_queue_forward</c>
/// to none, see <see cref="KafkaPartitionQueue"/>) with a wake-up callback when it stops being empty, batch reads of a
/// queue (<c>rd_kafka_consume_batch_queue</c>, what confluent-kafka-python's <c>consume(n)</c> uses) and the
/// fields of the messages it returns. The library is the one Confluent.Kafka loaded (found in the process's mapped
/// files), so both work on the same client.
/// </summary>
internal static unsafe partial class Librdkafka
{
    private const string Lib = "librdkafka";

    static Librdkafka() => NativeLibrary.SetDllImportResolver(typeof(Librdkafka).Assembly, Resolve);

    /// <summary>rd_kafka_message_t (rdkafka.h), read in place.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal readonly struct Message
    {
        public readonly int Err;
        public readonly IntPtr Topic;
        public readonly int Partition;
        public readonly IntPtr Payload;
        public readonly nuint Length;
        public readonly IntPtr Key;
        public readonly nuint KeyLength;
        public readonly long Offset;
        private readonly IntPtr _private;
    }

    [LibraryImport(Lib)] internal static partial IntPtr rd_kafka_queue_get_consumer(IntPtr rk);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial IntPtr rd_kafka_queue_get_partition(
        IntPtr rk, string topic, int partition);
    [LibraryImport(Lib)] internal static partial void rd_kafka_queue_forward(IntPtr src, IntPtr dst);
    [LibraryImport(Lib)] internal static partial nuint rd_kafka_queue_length(IntPtr rkqu);
    [LibraryImport(Lib)] internal static partial void rd_kafka_queue_cb_event_enable(
        IntPtr rkqu, delegate* unmanaged[Cdecl]<IntPtr, IntPtr, void> eventCb, IntPtr opaque);
    [LibraryImport(Lib)] internal static partial void rd_kafka_queue_destroy(IntPtr rkqu);
    [LibraryImport(Lib)] internal static partial nint rd_kafka_consume_batch_queue(
        IntPtr rkqu, int timeoutMs, Message** messages, nuint size);
    [LibraryImport(Lib)] internal static partial void rd_kafka_message_destroy(Message* message);
    [LibraryImport(Lib)] internal static partial IntPtr rd_kafka_topic_name(IntPtr rkt);
    [LibraryImport(Lib)] private static partial int rd_kafka_message_headers(Message* message, IntPtr* headers);
    [LibraryImport(Lib)] private static partial nuint rd_kafka_header_cnt(IntPtr headers);
    [LibraryImport(Lib)] private static partial int rd_kafka_header_get_all(
        IntPtr headers, nuint index, byte** name, void** value, nuint* size);
    [LibraryImport(Lib)] private static partial IntPtr rd_kafka_err2str(int err);

    /// <summary>The rd_kafka_t of a client built by Confluent.Kafka (its internal handle; valid while the client lives).</summary>
    internal static IntPtr NativeHandle(Handle handle)
    {
        var property = typeof(Handle).GetProperty("LibrdkafkaHandle", BindingFlags.Instance | BindingFlags.NonPublic)
            ?? throw new InvalidOperationException("this Confluent.Kafka version does not expose Handle.LibrdkafkaHandle");
        var safe = (SafeHandle)(property.GetValue(handle) ?? throw new InvalidOperationException("the Kafka client has no native handle"));
        return safe.DangerousGetHandle();
    }

    internal static string TopicName(IntPtr rkt) => Marshal.PtrToStringUTF8(rd_kafka_topic_name(rkt)) ?? "";

    /// <summary>The reason of an error message (its payload is librdkafka's error string) or of an error code.</summary>
    internal static string ErrorReason(Message* message) =>
        message->Payload != IntPtr.Zero && message->Length > 0
            ? Marshal.PtrToStringUTF8(message->Payload, checked((int)message->Length))
            : Marshal.PtrToStringUTF8(rd_kafka_err2str(message->Err))
                ?? message->Err.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>A copy of a payload or key (null for a null one).</summary>
    internal static byte[]? Copy(IntPtr data, nuint length) =>
        data == IntPtr.Zero ? null : new ReadOnlySpan<byte>((void*)data, checked((int)length)).ToArray();

    /// <summary>
    /// The message's headers in place, in order (name NUL-terminated UTF-8, value or null), valid while the message
    /// lives; none when it has none. Stops at the first header librdkafka cannot return.
    /// </summary>
    internal readonly struct NativeHeaders
    {
        private readonly IntPtr _headers;

        internal NativeHeaders(Message* message)
        {
            IntPtr headers;
            var err = rd_kafka_message_headers(message, &headers);
            _headers = err == 0 ? headers : IntPtr.Zero; // RD_KAFKA_RESP_ERR__NOENT (-156): none
            Count = _headers == IntPtr.Zero ? 0 : (int)rd_kafka_header_cnt(_headers);
        }

        public int Count { get; }

        /// <summary>Header <paramref name="index"/>; false when librdkafka cannot return it (then stop).</summary>
        public bool TryGet(int index, out ReadOnlySpan<byte> name, out byte* value, out int size)
        {
            byte* n;
            void* v;
            nuint length;
            if (rd_kafka_header_get_all(_headers, (nuint)index, &n, &v, &length) != 0)
            {
                name = default;
                value = null;
                size = 0;
                return false;
            }

            name = System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpanFromNullTerminated(n);
            value = (byte*)v;
            size = v == null ? -1 : checked((int)length);
            return true;
        }
    }

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (name != Lib)
        {
            return IntPtr.Zero;
        }

        // The copy Confluent.Kafka loaded (it probes librdkafka.so, then centos8-librdkafka.so where libsasl2.so.3
        // is missing): one library, one client.
        if (File.Exists("/proc/self/maps"))
        {
            foreach (var line in File.ReadLines("/proc/self/maps"))
            {
                var slash = line.IndexOf('/', StringComparison.Ordinal);
                if (slash >= 0 && line.Contains("librdkafka", StringComparison.Ordinal)
                    && NativeLibrary.TryLoad(line[slash..], out var loaded))
                {
                    return loaded;
                }
            }
        }

        // Elsewhere (no /proc): the files librdkafka.redist ships, in Confluent's probing order.
        var dirs = new[]
        {
            Path.Combine(AppContext.BaseDirectory, "runtimes", RuntimeInformation.RuntimeIdentifier, "native"),
            Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native"),
            AppContext.BaseDirectory,
        };
        foreach (var dir in dirs)
        {
            foreach (var file in new[] { "librdkafka.so", "centos8-librdkafka.so", "librdkafka.dylib", "librdkafka.dll" })
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
}
