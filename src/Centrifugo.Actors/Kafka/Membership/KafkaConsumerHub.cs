using System.Collections.Concurrent;
using System.Diagnostics;
using Centrifugo.Actors.Configuration;
using Confluent.Kafka;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Kafka;

/// <summary>
/// This node's member of one kafka consumer's <c>consumer_group</c>: one subscribed librdkafka consumer per node and
/// consumer config, shared by the partition entities of that consumer on the node. The group decides which partitions
/// this node reads; the node places their entities here (<see cref="KafkaPlacement"/>), and an entity reads
/// only while its partition is in this member's current assignment (<see cref="AttachAsync"/>).
/// <list type="bullet">
/// <item>Assigned: the partition's own fetch queue is opened (<see cref="KafkaPartitionQueue"/>, detached from the
/// consumer queue before fetching starts) and <see cref="Assigned"/> is raised.</item>
/// <item>Revoked: the partition's lease stops reading, its in-flight batch finishes and its final offset is committed
/// before the callback returns (bounded by <see cref="KafkaSettings.RevokeBudget"/>).</item>
/// <item>Lost: the lease ends at once and commits nothing.</item>
/// </list>
/// Commits are fenced by the broker (generation or member epoch); delivery is fenced here: a lease delivers only while
/// its partition is assigned and this process has not just come out of a freeze (<see cref="Fresh"/>). A dedicated
/// thread polls the consumer (rebalance callbacks, client errors); the committer's thread does the blocking group calls.
/// Thread-safe.
/// </summary>
internal sealed class KafkaConsumerHub : IAsyncDisposable
{
    /// <summary>
    /// fetch.queue.backoff.ms: how soon librdkafka looks again at a partition whose queue was full (librdkafka's
    /// default, 1 s, would leave a drained queue empty for up to a second; the check is local, no request).
    /// </summary>
    internal const int FetchQueueBackoffMs = 20;

    private readonly string _name;
    private readonly KafkaSettings _settings;
    private readonly ILogger _logger;
    private readonly IConsumer<byte[]?, byte[]?> _consumer;
    private readonly IntPtr _rk;
    private readonly IAdminClient _metadata;
    private readonly IReadOnlyList<string> _topics;
    private readonly Lock _gate = new();
    private readonly Dictionary<TopicPartition, AssignedPartition> _assigned = [];
    private readonly ConcurrentQueue<Action> _pollCommands = new();
    private readonly KafkaOffsetCommitter _committer;
    private readonly TaskCompletionSource _pollStopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _left = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();
    private long _assignments; // under _gate
    private volatile bool _joined;
    private volatile bool _stopPolling;
    private int _leaving;
    private int _disposed;

    public KafkaConsumerHub(string consumerName, KafkaConsumerOptions options, ILoggerFactory loggerFactory, string podName = "")
        : this(consumerName, options, loggerFactory, KafkaSettings.From(options), podName)
    {
    }

    public KafkaConsumerHub(
        string consumerName, KafkaConsumerOptions options, ILoggerFactory loggerFactory, KafkaSettings settings, string podName = "")
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        _name = consumerName;
        _settings = settings.Validate();
        Freezes = new FreezeDetector(_settings.FreezeThreshold, _settings.SuspensionAfterFreeze);
        _topics = options.Topics;
        _logger = loggerFactory.CreateLogger<KafkaConsumerHub>();
        QueueMaxRecords = QueueLimit(options.PartitionQueueMaxSize);
        QueueMaxBytes = Math.Max(1, options.PartitionQueueMaxBytes);
        var config = KafkaClientConfigBuilder.Member(options, settings, podName);
        config.QueuedMinMessages = QueueMaxRecords;
        config.QueuedMaxMessagesKbytes = (int)Math.Clamp((QueueMaxBytes + 1023) / 1024, 1, 2_097_151);
        config.Set("fetch.queue.backoff.ms", FetchQueueBackoffMs.ToString(System.Globalization.CultureInfo.InvariantCulture));
        _consumer = new ConsumerBuilder<byte[]?, byte[]?>(config)
            .SetKeyDeserializer(Deserializers.ByteArray)
            .SetValueDeserializer(Deserializers.ByteArray)
            .SetPartitionsAssignedHandler((_, parts) => OnAssigned(parts))
            .SetPartitionsRevokedHandler((_, parts) => OnRevoked(parts.Select(p => p.TopicPartition).ToList()))
            .SetPartitionsLostHandler((_, parts) => OnLost(parts.Select(p => p.TopicPartition).ToList()))
            .SetErrorHandler((_, e) => LogClientError(e))
            .SetLogHandler((_, m) => KafkaLog.Librdkafka(_logger, KafkaLog.FromSyslog(m.Level), _name, m.Facility, m.Message))
            .Build();
        _metadata = new DependentAdminClientBuilder(_consumer.Handle).Build();
        try
        {
            // Resolved here, so a librdkafka without the partition-queue calls fails the start-up, not a callback.
            _rk = Librdkafka.NativeHandle(_consumer.Handle);
        }
        catch
        {
            _metadata.Dispose();
            _consumer.Dispose();
            throw;
        }

        _committer = new KafkaOffsetCommitter(consumerName, _consumer, () => Leases, settings, _logger);
        new Thread(PollLoop) { IsBackground = true, Name = $"kafka-poll-{consumerName}" }.Start();
        new Thread(TickLoop) { IsBackground = true, Name = $"kafka-tick-{consumerName}" }.Start();
        KafkaLog.HubStarted(_logger, _name, KafkaClientConfigBuilder.Describe(options));
    }

    public string ConsumerName => _name;

    internal ILogger Logger => _logger;

    internal string Name => _name;

    public KafkaSettings Settings => _settings;

    /// <summary>Raised on the poll thread with the partitions the group just assigned to this member.</summary>
    public event Action<IReadOnlyList<TopicPartition>>? Assigned;

    /// <summary>A partition's queue at this many records stops its fetching (queued.min.messages).</summary>
    internal int QueueMaxRecords { get; }

    /// <summary>A partition's queue at this many bytes stops its fetching too (queued.max.messages.kbytes, in KiB).</summary>
    internal long QueueMaxBytes { get; }

    /// <summary>
    /// The effective partition_queue_max_size (the configuration already mapped Centrifugo's -1 to 0 and unset to the
    /// default): 0 = fetch only while nothing is queued (one fetch at a time), otherwise that many records.
    /// </summary>
    internal static int QueueLimit(int partitionQueueMaxSize) => partitionQueueMaxSize <= 0 ? 1 : partitionQueueMaxSize;

    /// <summary>
    /// False while this process has just come out of a freeze (<see cref="KafkaSettings.FreezeThreshold"/>): the group may
    /// have dropped this member meanwhile, and librdkafka learns it at its next heartbeat (then the partitions are lost).
    /// </summary>
    public bool Fresh => Freezes.IsFresh(Stopwatch.GetTimestamp());

    /// <summary>This process's freeze detector, ticked by the hub's tick thread.</summary>
    public FreezeDetector Freezes { get; }


    /// <summary>The partitions the group assigns to this member right now, in order.</summary>
    public IReadOnlyList<(string Topic, int Partition)> Assignment()
    {
        lock (_gate)
        {
            return _assigned.Keys.Select(tp => (tp.Topic, tp.Partition.Value))
                .OrderBy(p => p.Topic, StringComparer.Ordinal).ThenBy(p => p.Value).ToArray();
        }
    }

    /// <summary>
    /// Assigned partitions that no entity on this node reads yet (the placement asks the region to run them), with the
    /// number of the assignment that gave each one to this member (a partition given back and assigned again gets a new one).
    /// </summary>
    public IReadOnlyList<(string Topic, int Partition, long Assignment)> Unattached()
    {
        lock (_gate)
        {
            return _assigned.Where(a => a.Value.Lease is null).Select(a => (a.Key.Topic, a.Key.Partition.Value, a.Value.Number)).ToArray();
        }
    }

    /// <summary>The leases open on this node right now.</summary>
    internal IReadOnlyList<KafkaPartitionLease> Leases
    {
        get
        {
            lock (_gate)
            {
                return _assigned.Values.Select(a => a.Lease).OfType<KafkaPartitionLease>().ToArray();
            }
        }
    }

    /// <summary>Joins the group (subscribes to the topics). Call once the node can place entities.</summary>
    public void Join()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (_joined)
        {
            return;
        }
        _joined = true;
        _consumer.Subscribe(_topics);
        KafkaLog.Joined(_logger, _name, _settings.GroupProtocol.ToString().ToLowerInvariant());
    }

    /// <summary>
    /// Leaves the group: every partition is revoked (in-flight batches finish, final offsets are committed) and the
    /// group is told at once, so the other members take the partitions over without waiting for a session timeout.
    /// </summary>
    public Task LeaveAsync()
    {
        if (Interlocked.Exchange(ref _leaving, 1) == 0)
        {
            _pollCommands.Enqueue(() =>
            {
                if (!_joined)
                {
                    _left.TrySetResult();
                    return;
                }
                try
                {
                    // The revocation runs in this thread's next polls; librdkafka then tells the group.
                    _consumer.Unsubscribe();
                }
                catch (KafkaException e)
                {
                    KafkaLog.ClientError(_logger, _name, e.Error.Code, e.Error.Reason);
                    _left.TrySetResult();
                }
            });
            if (_pollStopped.Task.IsCompleted)
            {
                _left.TrySetResult();
            }
        }
        return _left.Task;
    }

    /// <summary>
    /// A lease on the partition if the group assigns it to this member and no other entity on this node reads it;
    /// null otherwise (the entity looks again later). Reading starts at the group's committed offset, or where the
    /// previous lease of this assignment stopped.
    /// </summary>
    public async Task<KafkaPartitionLease?> AttachAsync(string topic, int partition, CancellationToken cancellationToken)
    {
        var tp = new TopicPartition(topic, partition);
        AssignedPartition? assignment;
        KafkaPartitionLease lease;
        lock (_gate)
        {
            if (Volatile.Read(ref _disposed) != 0 || !_assigned.TryGetValue(tp, out assignment) || assignment.Lease is not null)
            {
                return null;
            }
            lease = new KafkaPartitionLease(this, tp, assignment.Queue);
            assignment.Lease = lease;
        }

        try
        {
            long start;
            if (assignment.ResumeAt is { } resume)
            {
                // A previous entity of this assignment stopped without a revocation: reading goes on from where it
                // stopped, not from what it took out of the queue (older fetches are dropped by the seek's barrier).
                _consumer.Seek(new TopicPartitionOffset(tp, resume >= 0 ? new Offset(resume) : Offset.Beginning));
                start = resume;
            }
            else
            {
                start = await _committer.LookupCommittedAsync(tp, cancellationToken);
            }
            lease.Start(start);
            KafkaLog.Acquired(_logger, _name, topic, partition,
                start >= 0 ? start.ToString(System.Globalization.CultureInfo.InvariantCulture) : "beginning", start);
            return lease;
        }
        catch
        {
            Detach(lease);
            throw;
        }
    }

    /// <summary>
    /// The partitions of the configured topics from fresh metadata (what the admin endpoint lists). A topic whose
    /// metadata is unavailable is logged and left out of this answer.
    /// </summary>
    public Task<IReadOnlyList<(string Topic, int Partition)>> PartitionsAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        return Task.Run<IReadOnlyList<(string Topic, int Partition)>>(() =>
        {
            var found = new List<(string Topic, int Partition)>();
            foreach (var topic in _topics)
            {
                cancellationToken.ThrowIfCancellationRequested();
                try
                {
                    var metadata = _metadata.GetMetadata(topic, _settings.MetadataTimeout).Topics.FirstOrDefault(t => t.Topic == topic);
                    if (metadata is null || metadata.Error.IsError)
                    {
                        var error = metadata?.Error ?? new Error(ErrorCode.UnknownTopicOrPart);
                        KafkaLog.MetadataFailed(_logger, _name, topic, error.Code, error.Reason);
                        continue;
                    }
                    found.AddRange(metadata.Partitions.Select(p => (topic, p.PartitionId)).Order());
                }
                catch (KafkaException e)
                {
                    KafkaLog.MetadataFailed(_logger, _name, topic, e.Error.Code, e.Error.Reason);
                }
            }
            return found;
        }, cancellationToken);
    }

    /// <summary>Asks the cluster for its broker list once (the start-up reachability check).</summary>
    public Task PingAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        return Task.Run(() => _metadata.GetMetadata(timeout), cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await LeaveAsync().WaitAsync(_settings.RevokeBudget + TimeSpan.FromSeconds(5)).ContinueWith(_ => { }, TaskScheduler.Default);
        _stopPolling = true;
        await _pollStopped.Task;
        await _committer.StopAsync();
        try
        {
            // Nothing is assigned any more: this only tells the group, if the unsubscribe has not yet.
            _consumer.Close();
        }
        catch (KafkaException e)
        {
            KafkaLog.ClientError(_logger, _name, e.Error.Code, e.Error.Reason);
        }
        await _stop.CancelAsync();
        _committer.Dispose();
        lock (_gate)
        {
            foreach (var assignment in _assigned.Values)
            {
                assignment.Lease?.End(lost: true);
                assignment.Queue.Dispose();
            }
            _assigned.Clear();
        }
        _metadata.Dispose();
        _consumer.Dispose();
        _stop.Dispose();
        KafkaLog.HubStopped(_logger, _name);
    }

    // ---- used by KafkaPartitionLease ----

    internal WatermarkOffsets Watermarks(TopicPartition tp) => _consumer.GetWatermarkOffsets(tp);

    /// <summary>Commits the lease's marked offset; true once committed, false when it gave up (logged).</summary>
    internal Task<bool> CommitFinalAsync(KafkaPartitionLease lease) => _committer.CommitFinalAsync(lease);

    /// <summary>The lease is closed: the partition may be attached again (from <paramref name="lease"/>'s next offset).</summary>
    internal void Detach(KafkaPartitionLease lease)
    {
        lock (_gate)
        {
            if (_assigned.TryGetValue(lease.TopicPartition, out var assignment) && assignment.Lease == lease)
            {
                assignment.Lease = null;
                assignment.ResumeAt = lease.NextOffset;
            }
        }
        KafkaLog.Released(_logger, _name, lease.Topic, lease.Partition, lease.CommittedOffset ?? -1);
    }

    // ---- rebalance callbacks (poll thread) ----

    private void OnAssigned(List<TopicPartition> partitions)
    {
        lock (_gate)
        {
            foreach (var tp in partitions)
            {
                if (!_assigned.ContainsKey(tp))
                {
                    // Detached from the consumer queue before the assignment starts fetching into it.
                    _assigned[tp] = new AssignedPartition(KafkaPartitionQueue.Open(_rk, tp.Topic, tp.Partition.Value), ++_assignments);
                }
            }
        }
        if (partitions.Count > 0)
        {
            KafkaLog.GroupAssigned(_logger, _name, partitions.Count, Describe(partitions));
            Assigned?.Invoke(partitions);
        }
    }

    private void OnRevoked(List<TopicPartition> partitions)
    {
        var closing = new List<Task>();
        var revoked = new List<AssignedPartition>();
        lock (_gate)
        {
            foreach (var tp in partitions)
            {
                if (_assigned.Remove(tp, out var assignment))
                {
                    revoked.Add(assignment);
                    if (assignment.Lease is { } lease)
                    {
                        closing.Add(lease.End(lost: false));
                    }
                }
            }
        }
        if (revoked.Count == 0)
        {
            return;
        }
        KafkaLog.GroupRevoked(_logger, _name, revoked.Count, Describe(partitions), closing.Count);
        if (closing.Count > 0 && !Task.WhenAll(closing).Wait(_settings.RevokeBudget))
        {
            KafkaLog.RevokeTimedOut(_logger, _name, Describe(partitions));
        }
        foreach (var assignment in revoked)
        {
            assignment.Queue.Dispose();
        }
    }

    private void OnLost(List<TopicPartition> partitions)
    {
        var lost = new List<AssignedPartition>();
        lock (_gate)
        {
            foreach (var tp in partitions)
            {
                if (_assigned.Remove(tp, out var assignment))
                {
                    lost.Add(assignment);
                    assignment.Lease?.End(lost: true);
                }
            }
        }
        foreach (var assignment in lost)
        {
            assignment.Queue.Dispose();
        }
        if (lost.Count > 0)
        {
            KafkaLog.GroupLost(_logger, _name, lost.Count, Describe(partitions));
        }
    }

    // ---- threads ----

    private void PollLoop()
    {
        try
        {
            while (!_stopPolling)
            {
                RunPollCommands();
                if (!_joined || _stopPolling)
                {
                    _stop.Token.WaitHandle.WaitOne(_settings.PollTimeout);
                    continue;
                }
                try
                {
                    // Serves rebalance callbacks and client events. Records never arrive here: every assigned
                    // partition's queue is detached before fetching starts.
                    _consumer.Consume(_settings.PollTimeout);
                    if (Volatile.Read(ref _leaving) != 0 && !_left.Task.IsCompleted && _consumer.Assignment.Count == 0)
                    {
                        KafkaLog.Left(_logger, _name);
                        _left.TrySetResult();
                    }
                }
                catch (ConsumeException e)
                {
                    KafkaLog.ClientError(_logger, _name, e.Error.Code, e.Error.Reason);
                }
                catch (KafkaException e)
                {
                    KafkaLog.ClientError(_logger, _name, e.Error.Code, e.Error.Reason);
                    _stop.Token.WaitHandle.WaitOne(TimeSpan.FromMilliseconds(500));
                }
                catch (ObjectDisposedException)
                {
                    return;
                }
            }
        }
        finally
        {
            _pollStopped.TrySetResult();
            _left.TrySetResult();
        }
    }

    private void RunPollCommands()
    {
        while (_pollCommands.TryDequeue(out var command))
        {
            command();
        }
    }

    /// <summary>Notices freezes of this process: a gap in its own ticks suspends delivery (<see cref="Fresh"/>).</summary>
    private void TickLoop()
    {
        var period = TimeSpan.FromMilliseconds(100);
        while (!_stop.IsCancellationRequested)
        {
            if (Freezes.Tick(Stopwatch.GetTimestamp()) is { } gap)
            {
                KafkaLog.Frozen(_logger, _name, (long)gap.TotalMilliseconds, (long)_settings.SuspensionAfterFreeze.TotalMilliseconds);
            }
            try
            {
                _stop.Token.WaitHandle.WaitOne(period);
            }
            catch (ObjectDisposedException)
            {
                return;
            }
        }
    }

    private void LogClientError(Error error)
    {
        if (error.IsFatal)
        {
            KafkaLog.FatalClientError(_logger, _name, error.Code, error.Reason);
        }
        else
        {
            KafkaLog.ClientError(_logger, _name, error.Code, error.Reason);
        }
    }

    private static string Describe(IEnumerable<TopicPartition> partitions) =>
        string.Join(",", partitions.Select(p => $"{p.Topic}/{p.Partition.Value}"));

    /// <summary>One assigned partition: its fetch queue (for the whole assignment) and the lease reading it, if any.</summary>
    private sealed class AssignedPartition(KafkaPartitionQueue queue, long number)
    {
        public KafkaPartitionQueue Queue { get; } = queue;

        public long Number { get; } = number;

        public KafkaPartitionLease? Lease { get; set; }

        /// <summary>Where the next lease starts when an earlier one of this assignment was closed.</summary>
        public long? ResumeAt { get; set; }
    }
}
