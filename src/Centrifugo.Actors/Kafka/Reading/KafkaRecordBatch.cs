using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace Centrifugo.Actors.Kafka;

/// <summary>
/// The records of one read of a partition (<see cref="KafkaPartitionLease.ReadBatchAsync"/>), in offset order, without a
/// heap object or a copy per record: the keys, values and headers of the whole batch are copied out of librdkafka's
/// messages into one pooled buffer, indexed by one pooled array of (offset, key range, value range, header range).
/// Headers become objects only when asked for (<see cref="Headers"/>: publication data mode, dead letters); the
/// method header is found in place (<see cref="TryGetHeader"/>).
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
    private int _disposed;

    private KafkaRecordBatch(string topic, int partition)
    {
        Topic = topic;
        Partition = partition;
    }

    private KafkaRecordBatch(string topic, int partition, Segment segment, Entry[] entries, int count)
        : this(topic, partition)
    {
        _segment = segment;
        _entries = entries;
        Count = count;
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

    /// <summary>
    /// The record's headers in order (an empty list when it has none; a null value becomes empty). Copies, made on
    /// each call, so they outlive the batch.
    /// </summary>
    public IReadOnlyList<KeyValuePair<string, byte[]>> Headers(int index)
    {
        ref readonly var entry = ref At(index);
        return HeadersOf(entry);
    }

    /// <summary>
    /// The value of the record's first header named <paramref name="name"/> (exact bytes, case-sensitive; empty for a
    /// null value), read in place: no allocation. False when it has none.
    /// </summary>
    public bool TryGetHeader(int index, ReadOnlySpan<byte> name, out ReadOnlyMemory<byte> value)
    {
        ref readonly var entry = ref At(index);
        var span = _segment!.GetSpan();
        var at = entry.HeadersStart;
        for (var h = 0; h < entry.HeadersCount; h++)
        {
            var header = ReadHeader(span, ref at);
            if (span.Slice(header.NameStart, header.NameLength).SequenceEqual(name))
            {
                value = header.ValueLength <= 0 ? ReadOnlyMemory<byte>.Empty : _segment.Memory.Slice(header.ValueStart, header.ValueLength);
                return true;
            }
        }

        value = default;
        return false;
    }

    /// <summary>A copy of one record that outlives the batch (null key/value stay null).</summary>
    public KafkaRecord ToRecord(int index)
    {
        ref readonly var entry = ref At(index);
        var span = _segment!.GetSpan();
        return new KafkaRecord(Topic, Partition, entry.Offset,
            entry.KeyLength == NoBytes ? null : span.Slice(entry.KeyStart, entry.KeyLength).ToArray(),
            entry.ValueLength == NoBytes ? null : span.Slice(entry.ValueStart, entry.ValueLength).ToArray(),
            HeadersOf(entry));
    }

    private KeyValuePair<string, byte[]>[] HeadersOf(in Entry entry)
    {
        if (entry.HeadersCount == 0)
        {
            return [];
        }

        var span = _segment!.GetSpan();
        var headers = new KeyValuePair<string, byte[]>[entry.HeadersCount];
        var at = entry.HeadersStart;
        for (var h = 0; h < headers.Length; h++)
        {
            var header = ReadHeader(span, ref at);
            headers[h] = new KeyValuePair<string, byte[]>(
                Encoding.UTF8.GetString(span.Slice(header.NameStart, header.NameLength)),
                header.ValueLength <= 0 ? [] : span.Slice(header.ValueStart, header.ValueLength).ToArray());
        }

        return headers;
    }

    // A header in the buffer: int32 name length, name (UTF-8), int32 value length (-1: null), value.
    private static (int NameStart, int NameLength, int ValueStart, int ValueLength) ReadHeader(ReadOnlySpan<byte> span, ref int at)
    {
        var nameLength = BinaryPrimitives.ReadInt32LittleEndian(span[at..]);
        var nameStart = at + 4;
        var valueLength = BinaryPrimitives.ReadInt32LittleEndian(span[(nameStart + nameLength)..]);
        var valueStart = nameStart + nameLength + 4;
        at = valueStart + Math.Max(0, valueLength);
        return (nameStart, nameLength, valueStart, valueLength);
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
                var headers = new Librdkafka.NativeHeaders(m);
                for (var h = 0; h < headers.Count && headers.TryGet(h, out var name, out _, out var size); h++)
                {
                    total += 8 + name.Length + Math.Max(0, size);
                }
            }
        }

        var segment = new Segment(pool.Rent(checked((int)Math.Max(1, total))), pool);
        var entries = ArrayPool<Entry>.Shared.Rent(count);
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
            var headersStart = at;
            var headersCount = 0;
            var headers = new Librdkafka.NativeHeaders(m);
            for (var h = 0; h < headers.Count && headers.TryGet(h, out var name, out var value, out var size); h++)
            {
                BinaryPrimitives.WriteInt32LittleEndian(data[at..], name.Length);
                name.CopyTo(data[(at + 4)..]);
                at += 4 + name.Length;
                BinaryPrimitives.WriteInt32LittleEndian(data[at..], size);
                at += 4;
                if (size > 0)
                {
                    new ReadOnlySpan<byte>(value, size).CopyTo(data[at..]);
                    at += size;
                }

                headersCount++;
            }

            entries[n++] = new Entry(m->Offset, keyStart, keyLength, valueStart, valueLength, headersStart, headersCount);
        }

        return new KafkaRecordBatch(topic, partition, segment, entries, n);
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
    private readonly record struct Entry(
        long Offset, int KeyStart, int KeyLength, int ValueStart, int ValueLength, int HeadersStart, int HeadersCount);

    /// <summary>
    /// The batch's pooled buffer as memory whose span is looked up on every use: after <see cref="Release"/> (the
    /// buffer went back to the pool) every use throws instead of reading another batch's bytes. It never exposes the
    /// array itself (<see cref="TryGetArray"/> is false).
    /// </summary>
    private sealed class Segment(byte[] buffer, ArrayPool<byte> pool) : MemoryManager<byte>
    {
        private byte[]? _buffer = buffer;

        public override Span<byte> GetSpan() =>
            Volatile.Read(ref _buffer) is { } live
                ? live : throw new ObjectDisposedException(nameof(KafkaRecordBatch), "the record batch was disposed; its bytes are gone");

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
