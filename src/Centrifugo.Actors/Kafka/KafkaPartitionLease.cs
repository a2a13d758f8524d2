using System.Diagnostics;
using Confluent.Kafka;

namespace Centrifugo.Actors.Kafka;

/// <summary>
/// The right to read one topic-partition through a <see cref="KafkaConsumerHub"/>, held by the partition's entity.
/// One reader at a time. The reader takes its records straight from the partition's own librdkafka queue
/// (<see cref="KafkaPartitionQueue"/>); librdkafka stops fetching the partition while that queue is at the hub's
/// limits, so a slow reader holds back only its own partition, and nothing is paused (a pause would discard the
/// prefetch). Offsets marked processed are committed (offset + 1) by the hub in batches, never per record;
/// disposing commits the last mark, stops fetching and drops queued records (the next owner refetches them from the
/// committed offset).
/// </summary>
internal sealed class KafkaPartitionLease : IAsyncDisposable, IKafkaCommitTarget
{
    private readonly KafkaConsumerHub _hub;
    private volatile KafkaPartitionQueue? _queue; // set by the hub before the partition is assigned
    private readonly Lock _close = new();
    private Task? _closing;
    // One reader at a time by contract; the lock keeps a second one from sharing the buffer and the position check.
    private readonly Lock _read = new();
    private long _nextExpected = long.MinValue; // under _read
    private unsafe Librdkafka.Message*[] _slots = []; // under _read
    private long _marked = -1;
    private long _committedNext = -1;
    private volatile bool _closed;
    // Delivery grant from the group member (0 = not governed by a member: hub-only use in tests).
    private long _epoch;
    private long _grantExpiresAt; // Stopwatch ticks
    private volatile bool _grantLapsed;
    private volatile bool _commitRefused;

    internal KafkaPartitionLease(KafkaConsumerHub hub, TopicPartition topicPartition)
    {
        _hub = hub;
        TopicPartition = topicPartition;
    }

    public string Topic => TopicPartition.Topic;

    public int Partition => TopicPartition.Partition.Value;

    internal TopicPartition TopicPartition { get; }

    public bool IsClosed => _closed;

    /// <summary>The group's committed offset (next offset to read), as read at acquisition and advanced by our commits; null when none.</summary>
    public long? CommittedOffset => Interlocked.Read(ref _committedNext) is var c and >= 0 ? c : null;

    /// <summary>The offset last passed to <see cref="MarkProcessed"/>; null when none yet.</summary>
    public long? MarkedOffset => Interlocked.Read(ref _marked) is var m and >= 0 ? m : null;

    /// <summary>Partition end as last seen by the fetcher (cached, no broker call); null when not known yet.</summary>
    public long? HighWatermark => _hub.Watermarks(TopicPartition).High is { Value: >= 0 } high ? high.Value : null;

    /// <summary>Records in the partition not yet processed by this lease; null when the high watermark is unknown.</summary>
    public long? Lag => HighWatermark is { } high ? Math.Max(0, high - ((MarkedOffset + 1) ?? CommittedOffset ?? 0)) : null;

    /// <summary>The epoch of the delivery grant this lease runs under; 0 when no group member governs it.</summary>
    public long Epoch => Interlocked.Read(ref _epoch);

    /// <summary>
    /// True while this lease may deliver: it runs under an unexpired grant (or under no member at all). Once false it
    /// stays false (a late renewal cannot revive it: records skipped meanwhile would otherwise be committed past).
    /// </summary>
    public bool MayDeliver
    {
        get
        {
            if (Interlocked.Read(ref _epoch) == 0)
            {
                return true;
            }
            if (_grantLapsed)
            {
                return false;
            }
            if (Stopwatch.GetTimestamp() >= Interlocked.Read(ref _grantExpiresAt))
            {
                _grantLapsed = true;
                return false;
            }
            return true;
        }
    }

    /// <summary>Sets the grant this lease delivers under (once, before reading).</summary>
    public void SetGrant(long epoch, long expiresAtTimestamp)
    {
        Interlocked.Exchange(ref _grantExpiresAt, expiresAtTimestamp);
        Interlocked.Exchange(ref _epoch, epoch);
    }

    /// <summary>Extends the grant after a renewal (request sent at a timestamp); ignored once it lapsed.</summary>
    public void ExtendGrant(long expiresAtTimestamp)
    {
        if (!MayDeliver)
        {
            return;
        }
        long current;
        do
        {
            current = Interlocked.Read(ref _grantExpiresAt);
            if (expiresAtTimestamp <= current)
            {
                return;
            }
        }
        while (Interlocked.CompareExchange(ref _grantExpiresAt, expiresAtTimestamp, current) != current);
    }

    /// <summary>Ends the grant now (revoked or lost): nothing more is delivered or committed under it.</summary>
    public void LapseGrant() => _grantLapsed = true;

    /// <summary>The member refused a commit of this lease (stale epoch, not owned, fenced): it commits nothing more.</summary>
    internal void RefuseCommits() => _commitRefused = true;

    /// <summary>
    /// Messages fetched and waiting in the partition's librdkafka queue (records, errors, and librdkafka's version
    /// barrier after an assignment until the next read skips it).
    /// </summary>
    public int QueuedCount => (int)Math.Min(int.MaxValue, _queue?.Length ?? 0);

    /// <summary>
    /// Waits for at least one record and returns up to <paramref name="maxRecords"/> in offset order, in one
    /// <see cref="KafkaRecordBatch"/> the caller owns and disposes when done with it. Returns an empty batch only when
    /// the lease is closed (disposed or its hub stopped).
    /// </summary>
    public async ValueTask<KafkaRecordBatch> ReadBatchAsync(int maxRecords, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRecords, 1);
        while (true)
        {
            if (_closed || _queue is not { } queue)
            {
                return KafkaRecordBatch.Empty(Topic, Partition);
            }

            var batch = Take(queue, maxRecords);
            if (batch.Count > 0 && _closed)
            {
                batch.Dispose();
                return KafkaRecordBatch.Empty(Topic, Partition);
            }

            if (batch.Count > 0 || _closed || queue.IsDisposed)
            {
                return batch;
            }

            await queue.WaitAsync(cancellationToken);
        }
    }

    /// <summary>Reader: up to <paramref name="max"/> records off the partition queue, copied into one batch; errors logged.</summary>
    private KafkaRecordBatch Take(KafkaPartitionQueue queue, int max)
    {
        lock (_read)
        {
            return TakeLocked(queue, max);
        }
    }

    private unsafe KafkaRecordBatch TakeLocked(KafkaPartitionQueue queue, int max)
    {
        if (_slots.Length < max)
        {
            _slots = new Librdkafka.Message*[max];
        }

        fixed (Librdkafka.Message** buffer = _slots)
        {
            var count = queue.Read(buffer, max);
            var records = 0;
            try
            {
                for (var i = 0; i < count; i++)
                {
                    var message = buffer[i];
                    if (message->Err != 0)
                    {
                        if (message->Err != (int)ErrorCode.Local_PartitionEOF)
                        {
                            KafkaLog.ConsumeError(_hub.Logger, _hub.Name, Topic, Partition, (ErrorCode)message->Err, Librdkafka.ErrorReason(message));
                        }

                        buffer[i] = null;
                        Librdkafka.rd_kafka_message_destroy(message);
                        continue;
                    }

                    if (message->Offset < _nextExpected)
                    {
                        // The fetch position moved backwards: librdkafka reset an out-of-range position (a committed
                        // offset past the end of the log, a re-created topic) or truncated the log. Skipping these
                        // records would commit past records never delivered; like Centrifugo, replay them
                        // (at-least-once) and say so once per jump.
                        KafkaLog.PositionRewound(_hub.Logger, _hub.Name, Topic, Partition, _nextExpected, message->Offset);
                    }

                    _nextExpected = message->Offset + 1;
                    records++;
                }

                // One copy of every key and value into the batch's pooled buffer; no object per record.
                return records == 0 ? KafkaRecordBatch.Empty(Topic, Partition) : KafkaRecordBatch.CopyOf(Topic, Partition, buffer, count, records);
            }
            finally
            {
                // Each message is destroyed exactly once: errors above (their slot cleared), the rest here.
                for (var i = 0; i < count; i++)
                {
                    if (buffer[i] != null)
                    {
                        Librdkafka.rd_kafka_message_destroy(buffer[i]);
                        buffer[i] = null;
                    }
                }
            }
        }
    }

    /// <summary>The record at <paramref name="offset"/> and all before it are done (delivered or dead-lettered).</summary>
    public void MarkProcessed(long offset)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        long current;
        do
        {
            current = Interlocked.Read(ref _marked);
            if (offset <= current)
            {
                return;
            }
        }
        while (Interlocked.CompareExchange(ref _marked, offset, current) != current);
    }

    public ValueTask DisposeAsync()
    {
        lock (_close)
        {
            _closing ??= CloseAsync();
            return new ValueTask(_closing);
        }
    }

    private async Task CloseAsync()
    {
        _closed = true;
        try
        {
            await _hub.UnassignAsync(this);
            // Queued records are dropped: refetched by the next owner from the committed offset.
            _queue?.Dispose();

            await _hub.CommitFinalAsync(this);
        }
        finally
        {
            _hub.Forget(this);
        }
    }

    // ---- called by the hub ----

    internal void Start(long committedNext)
    {
        Interlocked.Exchange(ref _committedNext, committedNext);
        lock (_read)
        {
            _nextExpected = committedNext >= 0 ? committedNext : long.MinValue;
        }
    }

    /// <summary>Poll thread, before the partition is assigned: the partition's own queue this lease reads.</summary>
    internal void Attach(KafkaPartitionQueue queue)
    {
        _queue = queue;
        if (_closed)
        {
            queue.Dispose();
        }
    }

    /// <summary>The offset to commit (marked + 1) when it is ahead of the committed one, else null.</summary>
    internal long? PendingCommit()
    {
        if (_commitRefused || (Interlocked.Read(ref _epoch) != 0 && _grantLapsed))
        {
            return null;
        }
        var next = Interlocked.Read(ref _marked) + 1;
        return next > 0 && next > Interlocked.Read(ref _committedNext) ? next : null;
    }

    internal void Committed(long next)
    {
        long current;
        do
        {
            current = Interlocked.Read(ref _committedNext);
            if (next <= current)
            {
                return;
            }
        }
        while (Interlocked.CompareExchange(ref _committedNext, next, current) != current);
    }

    // ---- as the hub's committer sees it ----

    TopicPartition IKafkaCommitTarget.TopicPartition => TopicPartition;

    long? IKafkaCommitTarget.PendingCommit() => PendingCommit();

    void IKafkaCommitTarget.Committed(long next) => Committed(next);

    void IKafkaCommitTarget.RefuseCommits() => RefuseCommits();
}
