using System.Diagnostics;
using System.Threading.Channels;
using Confluent.Kafka;

namespace Centrifugo.Actors.Kafka;

/// <summary>
/// The right to read one topic-partition through a <see cref="KafkaConsumerHub"/>, held by the partition's entity.
/// One reader at a time. Offsets marked processed are committed (offset + 1) by the hub in batches, never per record;
/// disposing commits the last mark, stops fetching and drops queued records (the next owner refetches them from the
/// committed offset).
/// </summary>
internal sealed class KafkaPartitionLease : IAsyncDisposable, IKafkaCommitTarget
{
    private readonly KafkaConsumerHub _hub;
    // Not SingleReader: that variant cannot count, and the count drives pause/resume.
    private readonly Channel<KafkaRecord> _queue = Channel.CreateUnbounded<KafkaRecord>();
    private readonly Lock _close = new();
    private Task? _closing;
    private long _nextExpected = long.MinValue; // poll thread only
    private long _marked = -1;
    private long _committedNext = -1;
    // Serialises pause (poll thread), resume (reader) and unassign (poll thread): librdkafka's pause/resume are
    // thread-safe, and resuming from the reader directly saves waiting for the poll thread's Consume timeout.
    private readonly Lock _flow = new();
    private volatile bool _paused;
    private long _queuedBytes;
    private bool _assigned; // under _flow
    private volatile bool _closed;
    private int _pauseCount;
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

    internal bool Paused => _paused;

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

    /// <summary>How often this lease paused its partition (diagnostics and tests).</summary>
    internal int PauseCount => Volatile.Read(ref _pauseCount);

    /// <summary>Records fetched and waiting for the reader.</summary>
    public int QueuedCount => _queue.Reader.Count;

    /// <summary>Payload bytes of the records waiting for the reader.</summary>
    internal long QueuedBytes => Interlocked.Read(ref _queuedBytes);

    /// <summary>
    /// Waits for at least one record and returns up to <paramref name="maxRecords"/> in offset order. Returns an empty
    /// list only when the lease is closed (disposed or its hub stopped).
    /// </summary>
    public async ValueTask<IReadOnlyList<KafkaRecord>> ReadBatchAsync(int maxRecords, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRecords, 1);
        if (_closed || !await _queue.Reader.WaitToReadAsync(cancellationToken) || _closed)
        {
            return [];
        }

        var batch = new List<KafkaRecord>(Math.Min(maxRecords, _queue.Reader.Count));
        long bytes = 0;
        while (batch.Count < maxRecords && _queue.Reader.TryRead(out var record))
        {
            batch.Add(record);
            bytes += SizeOf(record);
        }
        Interlocked.Add(ref _queuedBytes, -bytes);

        // Always under the lock (uncontended, cheap): a volatile read of _paused could miss a pause decided while
        // this batch was being taken and leave the reader waiting on a paused, empty partition.
        ResumeIfDrained();

        return batch;
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
            _queue.Writer.TryComplete();
            while (_queue.Reader.TryRead(out _))
            {
                // dropped: refetched by the next owner from the committed offset
            }

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
        _nextExpected = committedNext >= 0 ? committedNext : long.MinValue;
    }

    /// <summary>Poll thread: queues the record and pauses the partition at the limit; true when it paused.</summary>
    internal bool Deliver(KafkaRecord record)
    {
        if (_closed)
        {
            return false;
        }

        if (record.Offset < _nextExpected)
        {
            // The fetch position moved backwards: librdkafka reset an out-of-range position (a committed offset past
            // the end of the log, a re-created topic) or truncated the log. Skipping these records would commit past
            // records never delivered; like Centrifugo, replay them (at-least-once) and say so once per jump.
            KafkaLog.PositionRewound(_hub.Logger, _hub.Name, Topic, Partition, _nextExpected, record.Offset);
        }

        _nextExpected = record.Offset + 1;
        var queuedBytes = Interlocked.Add(ref _queuedBytes, SizeOf(record));
        _queue.Writer.TryWrite(record);
        if (_paused || !Full(queuedBytes))
        {
            return false;
        }

        lock (_flow)
        {
            // Re-checked under the lock: a reader that drained the queue meanwhile must not be left waiting on a
            // paused, empty partition.
            if (_paused || !_assigned || !Full(Interlocked.Read(ref _queuedBytes)))
            {
                return false;
            }

            _hub.SetPaused(TopicPartition, paused: true);
            _paused = true;
            _pauseCount++;
            return true;
        }
    }

    private bool Full(long queuedBytes) => _queue.Reader.Count >= _hub.PauseThreshold || queuedBytes >= _hub.PauseBytes;

    /// <summary>What a queued record costs in memory, roughly: its payload bytes.</summary>
    internal static long SizeOf(KafkaRecord record)
    {
        long size = (record.Key?.Length ?? 0) + (record.Value?.Length ?? 0);
        foreach (var header in record.Headers)
        {
            size += header.Key.Length + header.Value.Length;
        }
        return size;
    }

    /// <summary>Reader thread (or the poll thread retrying a failed resume).</summary>
    internal void ResumeIfDrained()
    {
        lock (_flow)
        {
            if (!_paused || !_assigned || _queue.Reader.Count > _hub.ResumeAtOrBelow
                || Interlocked.Read(ref _queuedBytes) > _hub.PauseBytes / 2)
            {
                return;
            }

            // Cleared first: records of the refetch can reach Deliver before Resume returns, and Deliver must then
            // see an unpaused partition and take the lock to pause it again at the limit.
            _paused = false;
            try
            {
                _hub.SetPaused(TopicPartition, paused: false);
            }
            catch (KafkaException)
            {
                _paused = true;
                // The reader may now wait on an empty queue; nobody else would ask again.
                _hub.RetryResume(this);
            }
        }
    }

    /// <summary>Poll thread, when routing starts.</summary>
    internal void Assigned()
    {
        lock (_flow)
        {
            _assigned = true;
        }
    }

    /// <summary>Poll thread, before IncrementalUnassign: an application pause outlives the assignment in librdkafka.</summary>
    internal void Unassigned()
    {
        lock (_flow)
        {
            _assigned = false;
            if (_paused)
            {
                _hub.SetPaused(TopicPartition, paused: false);
                _paused = false;
            }
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
