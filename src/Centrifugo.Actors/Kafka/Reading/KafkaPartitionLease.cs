using Confluent.Kafka;

namespace Centrifugo.Actors.Kafka;

/// <summary>
/// The right to read one assigned topic-partition on this node, held by the partition's entity; one at a time per
/// partition (<see cref="KafkaConsumerHub.AttachAsync"/>). The reader takes its records straight from the partition's
/// own librdkafka queue (<see cref="KafkaPartitionQueue"/>); librdkafka stops fetching the partition while that queue is
/// at the hub's limits, so a slow reader holds back only its own partition. Offsets marked processed are committed
/// (offset + 1) by the hub in batches; disposing commits the last mark (unless the partition was lost).
/// </summary>
internal sealed class KafkaPartitionLease : IAsyncDisposable, IKafkaCommitTarget
{
    private readonly KafkaConsumerHub _hub;
    private readonly KafkaPartitionQueue _queue;
    private readonly Lock _close = new();
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task? _closing;
    // One reader at a time by contract; the lock keeps a second one from sharing the buffer and the position check.
    private readonly Lock _read = new();
    private long _nextExpected = long.MinValue; // under _read
    private unsafe Librdkafka.Message*[] _slots = []; // under _read
    private long _marked = -1;
    private long _committedNext = -1;
    private long _start = -1;
    private volatile bool _ending;
    private volatile bool _lost;
    private volatile bool _isClosed;
    private Action? _ended;

    internal KafkaPartitionLease(KafkaConsumerHub hub, TopicPartition topicPartition, KafkaPartitionQueue queue)
    {
        _hub = hub;
        _queue = queue;
        TopicPartition = topicPartition;
    }

    public string Topic => TopicPartition.Topic;

    public int Partition => TopicPartition.Partition.Value;

    internal TopicPartition TopicPartition { get; }

    public bool IsClosed => _isClosed;

    /// <summary>The group took the partition away (revoked or lost): no new batch is read.</summary>
    public bool IsEnding => _ending;

    /// <summary>The group lost the partition (this member was dropped): nothing more is delivered or committed.</summary>
    public bool IsLost => _lost;

    /// <summary>The group's committed offset (next offset to read), as read at acquisition and advanced by our commits; null when
    /// none.</summary>
    public long? CommittedOffset => Interlocked.Read(ref _committedNext) is var c and >= 0 ? c : null;

    /// <summary>The offset last passed to <see cref="MarkProcessed"/>; null when none yet.</summary>
    public long? MarkedOffset => Interlocked.Read(ref _marked) is var m and >= 0 ? m : null;

    /// <summary>Where a next reader of this assignment starts: after the last mark, else where this one started (-1: the
    /// beginning).</summary>
    public long NextOffset => (MarkedOffset + 1) ?? Interlocked.Read(ref _start);

    /// <summary>Partition end as last seen by the fetcher (cached, no broker call); null when not known yet.</summary>
    public long? HighWatermark => _hub.Watermarks(TopicPartition).High is { Value: >= 0 } high ? high.Value : null;

    /// <summary>Records in the partition not yet processed by this lease; null when the high watermark is unknown.</summary>
    public long? Lag => HighWatermark is { } high ? Math.Max(0, high - ((MarkedOffset + 1) ?? CommittedOffset ?? 0)) : null;

    /// <summary>
    /// The local fence, asked before every request and as its body is written: the partition is still this member's
    /// (revoked: its in-flight batch may finish) and this process has not just come out of a freeze.
    /// </summary>
    public bool MayDeliver => !_lost && !_isClosed && _hub.Fresh;

    /// <summary>Called once when the group takes the partition away (on the thread that learned it).</summary>
    public void OnEnded(Action ended)
    {
        _ended = ended;
        if (_ending)
        {
            ended();
        }
    }

    /// <summary>
    /// The group took the partition away: no new batch is read; lost, nothing more is delivered or committed either.
    /// Completes when the lease is closed (its owner disposed it, after the final commit).
    /// </summary>
    internal Task End(bool lost)
    {
        _lost |= lost;
        if (!_ending)
        {
            _ending = true;
            _queue.Interrupt();
            _ended?.Invoke();
        }
        return _closed.Task;
    }

    /// <summary>
    /// Messages fetched and waiting in the partition's librdkafka queue (records, errors, and librdkafka's version
    /// barrier after an assignment until the next read skips it).
    /// </summary>
    public int QueuedCount => (int)Math.Min(int.MaxValue, _ending ? 0 : _queue.Length);

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
            if (_ending || _isClosed)
            {
                return KafkaRecordBatch.Empty(Topic, Partition);
            }

            var batch = Take(_queue, maxRecords);
            if (batch.Count > 0 && (_ending || _isClosed))
            {
                batch.Dispose();
                return KafkaRecordBatch.Empty(Topic, Partition);
            }

            if (batch.Count > 0 || _queue.IsDisposed)
            {
                return batch;
            }

            await _queue.WaitAsync(cancellationToken);
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
                            KafkaLog.ConsumeError(
                                _hub.Logger, _hub.Name, Topic, Partition, (ErrorCode)message->Err, Librdkafka.ErrorReason(message));
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
                return records == 0
                    ? KafkaRecordBatch.Empty(Topic, Partition) : KafkaRecordBatch.CopyOf(Topic, Partition, buffer, count, records);
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
        _ending = true;
        _queue.Interrupt(); // a reader waiting for records returns empty
        try
        {
            if (!_lost)
            {
                await _hub.CommitFinalAsync(this);
            }
        }
        finally
        {
            _isClosed = true;
            _hub.Detach(this);
            _closed.TrySetResult();
        }
    }

    // ---- called by the hub ----

    internal void Start(long committedNext)
    {
        Interlocked.Exchange(ref _committedNext, committedNext);
        Interlocked.Exchange(ref _start, committedNext);
        lock (_read)
        {
            _nextExpected = committedNext >= 0 ? committedNext : long.MinValue;
        }
    }

    /// <summary>The offset to commit (marked + 1) when it is ahead of the committed one, else null (never once lost).</summary>
    internal long? PendingCommit()
    {
        if (_lost)
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
}
