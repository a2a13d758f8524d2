using System.Buffers;
using System.Runtime.InteropServices;

namespace Centrifugo.Actors.Kafka;

/// <summary>
/// The records of one read of a partition (<see cref="KafkaPartitionLease.ReadBatchAsync"/>), in offset order, without a
/// heap object or a copy per record: the keys and values of the whole batch are copied out of librdkafka's messages
/// into one pooled buffer, indexed by one pooled array of (offset, key range, value range); headers are copied only
/// for records that have any.
/// <para>
/// Single owner: whoever got the batch from the lease disposes it exactly once, when every record is finished
/// (delivered or dead-lettered and marked), and that returns the buffers to the pool. Any access after disposal throws
/// <see cref="ObjectDisposedException"/> — also through a key or value memory handed out before it (its span is
/// fetched from the batch every time) — so a record's bytes can never be read from a buffer another batch reuses.
/// What must outlive the batch is copied: <see cref="ToRecord"/> (dead letters), the HTTP request bodies (written
/// into their own buffers by <c>CentrifugoClient</c>).
/// </para>
/// </summary>
internal sealed class KafkaRecordBatch : IDisposable
{
    private const int NoBytes = -1;

    /// <summary>A batch of no records (a closed lease); disposing it does nothing.</summary>
    public static KafkaRecordBatch Empty(string topic, int partition) => new(topic, partition);

    private readonly Segment? _segment;
    private Entry[]? _entries;
    private readonly List<KeyValuePair<string, byte[]>[]>? _headers;
    private int _disposed;

    private KafkaRecordBatch(string topic, int partition)
    {
        Topic = topic;
        Partition = partition;
    }

    private KafkaRecordBatch(string topic, int partition, Segment segment, Entry[] entries, int count, List<KeyValuePair<string, byte[]>[]>? headers)
        : this(topic, partition)
    {
        _segment = segment;
        _entries = entries;
        Count = count;
        _headers = headers;
    }

    public string Topic { get; }

    public int Partition { get; }

    /// <summary>Records in the batch (valid after disposal too).</summary>
    public int Count { get; }

    /// <summary>True once disposed (its buffers are back in the pool).</summary>
    public bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    public long Offset(int index) => At(index).Offset;

    /// <summary>The offset of the last record; the batch must not be empty.</summary>
    public long LastOffset => Offset(Count - 1);

    /// <summary>The record's value (empty for a null value); valid until the batch is disposed.</summary>
    public ReadOnlyMemory<byte> Value(int index)
    {
        ref readonly var entry = ref At(index);
        return entry.ValueLength <= 0 ? ReadOnlyMemory<byte>.Empty : _segment!.Memory.Slice(entry.ValueStart, entry.ValueLength);
    }

    /// <summary>The record's key (empty for a null key); valid until the batch is disposed.</summary>
    public ReadOnlyMemory<byte> Key(int index)
    {
        ref readonly var entry = ref At(index);
        return entry.KeyLength <= 0 ? ReadOnlyMemory<byte>.Empty : _segment!.Memory.Slice(entry.KeyStart, entry.KeyLength);
    }

    /// <summary>The record's headers in order (an empty list when it has none; copies, so they outlive the batch).</summary>
    public IReadOnlyList<KeyValuePair<string, byte[]>> Headers(int index)
    {
        ref readonly var entry = ref At(index);
        return entry.HeadersIndex < 0 ? [] : _headers![entry.HeadersIndex];
    }

    /// <summary>A copy of one record that outlives the batch (null key/value stay null).</summary>
    public KafkaRecord ToRecord(int index)
    {
        ref readonly var entry = ref At(index);
        var span = _segment!.GetSpan();
        return new KafkaRecord(Topic, Partition, entry.Offset,
            entry.KeyLength == NoBytes ? null : span.Slice(entry.KeyStart, entry.KeyLength).ToArray(),
            entry.ValueLength == NoBytes ? null : span.Slice(entry.ValueStart, entry.ValueLength).ToArray(),
            entry.HeadersIndex < 0 ? [] : _headers![entry.HeadersIndex]);
    }

    /// <summary>Copies of all records (tests and tools; the delivery path reads the batch in place).</summary>
    public List<KafkaRecord> ToRecords()
    {
        var records = new List<KafkaRecord>(Count);
        for (var i = 0; i < Count; i++)
        {
            records.Add(ToRecord(i));
        }

        return records;
    }

    /// <summary>Returns the buffers to the pool; once only (later calls do nothing).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        var entries = _entries;
        _entries = null;
        _segment?.Release();
        if (entries is not null)
        {
            ArrayPool<Entry>.Shared.Return(entries);
        }
    }

    private ref readonly Entry At(int index)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
        return ref _entries![index];
    }

    /// <summary>
    /// Copies the non-null messages of <paramref name="messages"/>[0..<paramref name="length"/>) (all successful
    /// records of <paramref name="topic"/>/<paramref name="partition"/>, in offset order; <paramref name="count"/> of
    /// them) into a new batch. The messages stay the caller's (it destroys them). <paramref name="pool"/> (tests
    /// count on it) defaults to the shared pool.
    /// </summary>
    internal static unsafe KafkaRecordBatch CopyOf(
        string topic, int partition, Librdkafka.Message** messages, int length, int count, ArrayPool<byte>? pool = null)
    {
        pool ??= ArrayPool<byte>.Shared;
        long total = 0;
        for (var i = 0; i < length; i++)
        {
            if (messages[i] is var m && m != null)
            {
                total += (m->Key == IntPtr.Zero ? 0 : (long)m->KeyLength) + (m->Payload == IntPtr.Zero ? 0 : (long)m->Length);
            }
        }

        var segment = new Segment(pool.Rent(checked((int)Math.Max(1, total))), pool);
        var entries = ArrayPool<Entry>.Shared.Rent(count);
        List<KeyValuePair<string, byte[]>[]>? headers = null;
        var data = segment.GetSpan();
        var at = 0;
        var n = 0;
        for (var i = 0; i < length; i++)
        {
            var m = messages[i];
            if (m == null)
            {
                continue;
            }

            var keyStart = at;
            var keyLength = Append(m->Key, m->KeyLength, data, ref at);
            var valueStart = at;
            var valueLength = Append(m->Payload, m->Length, data, ref at);
            var recordHeaders = Librdkafka.Headers(m);
            var headersIndex = -1;
            if (recordHeaders.Length > 0)
            {
                headers ??= [];
                headersIndex = headers.Count;
                headers.Add(recordHeaders);
            }

            entries[n++] = new Entry(m->Offset, keyStart, keyLength, valueStart, valueLength, headersIndex);
        }

        return new KafkaRecordBatch(topic, partition, segment, entries, n, headers);
    }

    private static unsafe int Append(IntPtr source, nuint length, Span<byte> data, ref int at)
    {
        if (source == IntPtr.Zero)
        {
            return NoBytes;
        }

        var bytes = new ReadOnlySpan<byte>((void*)source, checked((int)length));
        bytes.CopyTo(data[at..]);
        at += bytes.Length;
        return bytes.Length;
    }

    [StructLayout(LayoutKind.Auto)]
    private readonly record struct Entry(long Offset, int KeyStart, int KeyLength, int ValueStart, int ValueLength, int HeadersIndex);

    /// <summary>
    /// The batch's pooled buffer as memory whose span is looked up on every use: after <see cref="Release"/> (the
    /// buffer went back to the pool) every use throws instead of reading another batch's bytes. It never exposes the
    /// array itself (<see cref="TryGetArray"/> is false).
    /// </summary>
    private sealed class Segment(byte[] buffer, ArrayPool<byte> pool) : MemoryManager<byte>
    {
        private byte[]? _buffer = buffer;

        public override Span<byte> GetSpan() =>
            Volatile.Read(ref _buffer) is { } live ? live : throw new ObjectDisposedException(nameof(KafkaRecordBatch), "the record batch was disposed; its bytes are gone");

        public override MemoryHandle Pin(int elementIndex = 0) =>
            throw new NotSupportedException("a record batch's bytes are not pinned; copy them");

        public override void Unpin()
        {
        }

        protected override bool TryGetArray(out ArraySegment<byte> segment)
        {
            segment = default;
            return false;
        }

        public void Release()
        {
            if (Interlocked.Exchange(ref _buffer, null) is { } returned)
            {
                pool.Return(returned);
            }
        }

        protected override void Dispose(bool disposing) => Release();
    }
}
