using System.Collections.Concurrent;
using Centrifugo.Actors.Configuration;
using Confluent.Kafka;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Kafka;

/// <summary>Timings of a <see cref="KafkaConsumerHub"/>; the defaults are for production, tests shorten them.</summary>
internal sealed record KafkaConsumerHubSettings
{
    /// <summary>How often marked offsets are committed (batched over all leases).</summary>
    public TimeSpan CommitInterval { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>Longest the poll thread waits on the consumer queue; bounds the latency of assign/unassign requests.</summary>
    public TimeSpan PollTimeout { get; init; } = TimeSpan.FromMilliseconds(50);
    /// <summary>Per attempt of reading committed offsets (retried until the acquirer gives up).</summary>
    public TimeSpan CommittedLookupTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>How long closing a lease retries its final commit before leaving the re-read to the next owner.</summary>
    public TimeSpan FinalCommitTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>
    /// Longest one commit call through the group member may block the committer's thread (a final commit retries until
    /// <see cref="FinalCommitTimeout"/>). A member whose node just died never answers, and that thread also serves the
    /// committed-offset lookups of new leases: with the final-commit timeout here, owners restarted by the next member
    /// waited for the dead member's 10 s. Default 3 s, the grant ttl: a commit answered later is under a lapsed grant.
    /// </summary>
    public TimeSpan MemberCommitTimeout { get; init; } = TimeSpan.FromSeconds(3);
    public TimeSpan MetadataTimeout { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>
/// One librdkafka consumer per (node, kafka consumer config), shared by the partition entities of that consumer.
/// Cluster.Sharding decides which node reads a partition (among those the group member singleton owns), so this
/// consumer has no group subscription: partitions are added and removed with incremental manual assignment, starting
/// at the group's committed offset; commits go through the group member (<see cref="Committer"/>), made by the
/// hub's <see cref="KafkaOffsetCommitter"/>.
/// Every assigned partition keeps its own librdkafka fetch queue, detached from the consumer queue
/// (<see cref="KafkaPartitionQueue"/>), which its lease's reader drains in batches; librdkafka stops fetching a
/// partition whose queue is at <c>partition_queue_max_size</c> records or <c>partition_queue_max_bytes</c>
/// (<c>queued.min.messages</c> / <c>queued.max.messages.kbytes</c>, per partition for separate queues), so a stuck
/// partition never slows the others and nothing is paused (a pause discards the partition's prefetch). A dedicated
/// thread serves the consumer queue (client errors and logs) and runs assignment changes. The committer's own thread
/// does the blocking group calls (committed-offset lookups and batched commits), so a slow coordinator never stops
/// fetching.
/// Thread-safe.
/// </summary>
internal sealed class KafkaConsumerHub : IAsyncDisposable
{
    /// <summary>Most events the poll thread takes from the consumer queue per call.</summary>
    private const int ReadBatchSize = 64;

    /// <summary>
    /// fetch.queue.backoff.ms: how soon librdkafka looks again at a partition whose queue was full (librdkafka's
    /// default, 1 s, would leave a drained queue empty for up to a second; the check is local, no request).
    /// </summary>
    internal const int FetchQueueBackoffMs = 20;

    private readonly string _name;

    internal ILogger Logger => _logger;

    internal string Name => _name;
    private readonly KafkaConsumerHubSettings _settings;
    private readonly ILogger _logger;
    private readonly IConsumer<byte[]?, byte[]?> _consumer;
    private readonly IntPtr _rk;
    private readonly IAdminClient _metadata;
    private readonly IReadOnlyList<string> _topics;

    // Leases registered on this hub (active or closing); one per partition.
    private readonly ConcurrentDictionary<TopicPartition, KafkaPartitionLease> _leases = new();
    // The assigned partitions and their leases: touched by the poll thread only.
    private readonly Dictionary<TopicPartition, KafkaPartitionLease> _routes = [];
    private readonly ConcurrentQueue<Action> _pollCommands = new();
    private readonly Lock _pollCommandsRun = new();
    private readonly KafkaOffsetCommitter _committer;
    private readonly TaskCompletionSource _pollStopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();
    private volatile bool _stopPolling;
    private int _disposed;

    public KafkaConsumerHub(string consumerName, KafkaConsumerOptions options, ILoggerFactory loggerFactory)
        : this(consumerName, options, loggerFactory, new KafkaConsumerHubSettings())
    {
    }

    public KafkaConsumerHub(string consumerName, KafkaConsumerOptions options, ILoggerFactory loggerFactory, KafkaConsumerHubSettings settings)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        _name = consumerName;
        _settings = settings;
        _topics = options.Topics;
        _logger = loggerFactory.CreateLogger<KafkaConsumerHub>();
        QueueMaxRecords = QueueLimit(options.PartitionQueueMaxSize);
        QueueMaxBytes = Math.Max(1, options.PartitionQueueMaxBytes);
        var config = KafkaClientConfigBuilder.Consumer(options);
        config.QueuedMinMessages = QueueMaxRecords;
        config.QueuedMaxMessagesKbytes = (int)Math.Clamp((QueueMaxBytes + 1023) / 1024, 1, 2_097_151);
        config.Set("fetch.queue.backoff.ms", FetchQueueBackoffMs.ToString(System.Globalization.CultureInfo.InvariantCulture));
        _consumer = new ConsumerBuilder<byte[]?, byte[]?>(config)
            .SetKeyDeserializer(Deserializers.ByteArray)
            .SetValueDeserializer(Deserializers.ByteArray)
            .SetErrorHandler((_, e) => LogClientError(e))
            .SetLogHandler((_, m) => KafkaLog.Librdkafka(_logger, KafkaLog.FromSyslog(m.Level), _name, m.Facility, m.Message))
            .Build();
        _metadata = new DependentAdminClientBuilder(_consumer.Handle).Build();
        // Resolved here, so a librdkafka that lacks the batch API fails the start-up instead of a background thread.
        IntPtr queue;
        try
        {
            _rk = Librdkafka.NativeHandle(_consumer.Handle);
            queue = ConsumerQueue(_rk);
        }
        catch
        {
            _metadata.Dispose();
            _consumer.Dispose();
            throw;
        }

        _committer = new KafkaOffsetCommitter(consumerName, _consumer, () => _leases.Values, settings, _logger);
        new Thread(() => PollLoop(queue)) { IsBackground = true, Name = $"kafka-poll-{consumerName}" }.Start();
        KafkaLog.HubStarted(_logger, _name, KafkaClientConfigBuilder.Describe(options));
    }

    public string ConsumerName => _name;

    /// <summary>
    /// When set (by the node once its group member singleton proxy exists), every commit goes through the group member
    /// instead of this consumer (which has no membership); see <see cref="KafkaOffsetCommitter.Committer"/>.
    /// </summary>
    internal Func<IReadOnlyList<KafkaCommitEntry>, TimeSpan, IReadOnlyList<KafkaCommitOutcome>>? Committer
    {
        get => _committer.Committer;
        set => _committer.Committer = value;
    }

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
    /// The partitions of the configured topics from fresh metadata (call periodically: partitions added later appear).
    /// A topic whose metadata is unavailable is logged and left out of this answer.
    /// </summary>
    public Task<IReadOnlyList<(string Topic, int Partition)>> DiscoverPartitionsAsync(CancellationToken cancellationToken)
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
                    var metadata = _metadata.GetMetadata(topic, _settings.MetadataTimeout);
                    var topicMetadata = metadata.Topics.FirstOrDefault(t => t.Topic == topic);
                    if (topicMetadata is null || topicMetadata.Error.IsError || topicMetadata.Partitions.Count == 0)
                    {
                        var error = topicMetadata?.Error ?? new Error(ErrorCode.UnknownTopicOrPart);
                        KafkaLog.MetadataFailed(_logger, _name, topic, error.Code, error.Reason);
                        continue;
                    }

                    found.AddRange(topicMetadata.Partitions.Select(p => (topic, p.PartitionId)).Order());
                }
                catch (KafkaException e)
                {
                    KafkaLog.MetadataFailed(_logger, _name, topic, e.Error.Code, e.Error.Reason);
                }
            }

            return found;
        }, cancellationToken);
    }

    /// <summary>
    /// Asks the cluster for its broker list once (the start-up reachability check); throws <see cref="KafkaException"/>
    /// when no broker answered within <paramref name="timeout"/>.
    /// </summary>
    public Task PingAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        return Task.Run(() => _metadata.GetMetadata(timeout), cancellationToken);
    }

    /// <summary>
    /// Starts reading a partition at the group's committed offset (earliest when none). Retries while the group
    /// coordinator is unreachable, until cancelled. A partition has one lease per hub: if it is still leased here (its
    /// previous owner on this node is gone without disposing), that lease is closed and committed first.
    /// </summary>
    public async Task<KafkaPartitionLease> AcquireAsync(string topic, int partition, CancellationToken cancellationToken)
    {
        var tp = new TopicPartition(topic, partition);
        KafkaPartitionLease lease;
        for (var attempt = 0; ; attempt++)
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            if (attempt >= 10)
            {
                throw new InvalidOperationException($"Could not register a lease for {tp}: it keeps being acquired concurrently.");
            }

            lease = new KafkaPartitionLease(this, tp);
            if (_leases.TryAdd(tp, lease))
            {
                break;
            }

            if (_leases.TryGetValue(tp, out var previous))
            {
                KafkaLog.TakingOver(_logger, _name, topic, partition);
                await previous.DisposeAsync();
            }
        }

        try
        {
            var committed = await _committer.LookupCommittedAsync(tp, cancellationToken);
            var start = committed >= 0 ? new Offset(committed) : Offset.Beginning;
            lease.Start(committed);
            await OnPollThreadAsync(() =>
            {
                if (lease.IsClosed)
                {
                    return; // closed meanwhile (taken over): never assign what nobody will read
                }

                // Detached from the consumer queue before the assignment starts fetching into it.
                lease.Attach(KafkaPartitionQueue.Open(_rk, topic, partition));
                _routes[tp] = lease;
                _consumer.IncrementalAssign([new TopicPartitionOffset(tp, start)]);
            });
            KafkaLog.Acquired(_logger, _name, topic, partition, start.ToString(), committed);
            return lease;
        }
        catch
        {
            await lease.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await Task.WhenAll(_leases.Values.Select(l => l.DisposeAsync().AsTask()));
        _stopPolling = true;
        await _pollStopped.Task;
        await _committer.StopAsync();
        await _stop.CancelAsync();
        _committer.Dispose();
        _metadata.Dispose();
        _consumer.Close();
        _consumer.Dispose();
        _stop.Dispose();
        KafkaLog.HubStopped(_logger, _name);
    }

    /// <summary>The leases registered on this hub right now (diagnostics and tests).</summary>
    internal IReadOnlyList<KafkaPartitionLease> Leases => _leases.Values.ToArray();

    // ---- used by KafkaPartitionLease ----

    internal WatermarkOffsets Watermarks(TopicPartition tp) => _consumer.GetWatermarkOffsets(tp);

    internal Task UnassignAsync(KafkaPartitionLease lease) => OnPollThreadAsync(() =>
    {
        if (!_routes.TryGetValue(lease.TopicPartition, out var routed) || routed != lease)
        {
            return;
        }

        _routes.Remove(lease.TopicPartition);
        _consumer.IncrementalUnassign([lease.TopicPartition]);
    });

    /// <summary>Commits the lease's marked offset; true once committed, false when it gave up (logged).</summary>
    internal Task<bool> CommitFinalAsync(KafkaPartitionLease lease) => _committer.CommitFinalAsync(lease);

    internal void Forget(KafkaPartitionLease lease)
    {
        _leases.TryRemove(new KeyValuePair<TopicPartition, KafkaPartitionLease>(lease.TopicPartition, lease));
        KafkaLog.Released(_logger, _name, lease.TopicPartition.Topic, lease.TopicPartition.Partition.Value, lease.CommittedOffset ?? -1);
    }

    // ---- poll thread ----

    private Task OnPollThreadAsync(Action action)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _pollCommands.Enqueue(() =>
        {
            try
            {
                action();
                done.TrySetResult();
            }
            catch (Exception e)
            {
                done.TrySetException(e);
            }
        });
        if (_pollStopped.Task.IsCompleted)
        {
            RunPollCommands();
        }

        return done.Task;
    }

    /// <summary>The consumer's queue, read by the poll thread (which releases it when it ends). Throws when it cannot be had.</summary>
    private static IntPtr ConsumerQueue(IntPtr rk)
    {
        var queue = Librdkafka.rd_kafka_queue_get_consumer(rk);
        return queue != IntPtr.Zero ? queue : throw new InvalidOperationException("the Kafka consumer has no consumer queue (no group.id)");
    }

    /// <summary>
    /// Poll thread: runs assignment changes and serves the consumer queue, which carries client events (errors, logs)
    /// only: every assigned partition's records go to its own queue.
    /// </summary>
    private unsafe void PollLoop(IntPtr queue)
    {
        try
        {
            var slots = new Librdkafka.Message*[ReadBatchSize];
            var timeoutMs = (int)Math.Max(1, _settings.PollTimeout.TotalMilliseconds);
            while (!_stopPolling)
            {
                RunPollCommands();
                fixed (Librdkafka.Message** buffer = slots)
                {
                    var count = ReadBatch(queue, timeoutMs, buffer, ReadBatchSize);
                    for (var i = 0; i < count; i++)
                    {
                        try
                        {
                            LogIfError(buffer[i]);
                        }
                        finally
                        {
                            Librdkafka.rd_kafka_message_destroy(buffer[i]);
                        }
                    }
                }
            }
        }
        finally
        {
            Librdkafka.rd_kafka_queue_destroy(queue);

            _pollStopped.TrySetResult();
            // Requests racing with shutdown still complete (OnPollThreadAsync runs them inline from now on).
            RunPollCommands();
        }
    }

    private unsafe int ReadBatch(IntPtr queue, int timeoutMs, Librdkafka.Message** buffer, int size)
    {
        var count = (int)Librdkafka.rd_kafka_consume_batch_queue(queue, timeoutMs, buffer, (nuint)size);
        if (count >= 0)
        {
            return count;
        }

        // Only invalid arguments make the call itself fail; do not spin on it.
        KafkaLog.ClientError(_logger, _name, ErrorCode.Local_Fail, "rd_kafka_consume_batch_queue failed");
        _stop.Token.WaitHandle.WaitOne(TimeSpan.FromSeconds(1));
        return 0;
    }

    /// <summary>
    /// Poll thread: logs an error event of the consumer queue. A record cannot arrive here (each partition's queue is
    /// detached before it is assigned); one that did would be dropped and refetched by the next owner.
    /// </summary>
    private unsafe void LogIfError(Librdkafka.Message* message)
    {
        if (message->Err != 0 && message->Err != (int)ErrorCode.Local_PartitionEOF)
        {
            var topic = message->Topic == IntPtr.Zero ? "" : Librdkafka.TopicName(message->Topic);
            KafkaLog.ConsumeError(_logger, _name, topic, message->Topic == IntPtr.Zero ? -1 : message->Partition,
                (ErrorCode)message->Err, Librdkafka.ErrorReason(message));
        }
    }

    private void RunPollCommands()
    {
        lock (_pollCommandsRun)
        {
            RunQueued(_pollCommands, e => KafkaLog.PollThreadFailure(_logger, _name, "", -1, e));
        }
    }

    /// <summary>
    /// Runs the commands queued when it starts, no more: a command that queues itself again (K9: it was a Resume that
    /// kept failing; partitions are no longer paused, the guard stays) runs once per poll iteration instead of
    /// spinning the poll thread forever.
    /// </summary>
    internal static void RunQueued(ConcurrentQueue<Action> commands, Action<KafkaException> failed)
    {
        for (var n = commands.Count; n > 0 && commands.TryDequeue(out var command); n--)
        {
            try
            {
                command();
            }
            catch (KafkaException e)
            {
                // Commands that report back catch for themselves; others are logged.
                failed(e);
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
}
