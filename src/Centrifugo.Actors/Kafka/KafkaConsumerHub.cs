using System.Collections.Concurrent;
using System.Diagnostics;
using Centrifugo.Actors.Configuration;
using Confluent.Kafka;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Kafka;

/// <summary>Timings of a <see cref="KafkaConsumerHub"/>; the defaults are for production, tests shorten them.</summary>
internal sealed record KafkaConsumerHubSettings
{
    /// <summary>How often marked offsets are committed (batched over all leases).</summary>
    public TimeSpan CommitInterval { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>Longest the poll thread blocks in Consume; bounds the latency of assign/resume requests.</summary>
    public TimeSpan PollTimeout { get; init; } = TimeSpan.FromMilliseconds(50);
    /// <summary>Per attempt of reading committed offsets (retried until the acquirer gives up).</summary>
    public TimeSpan CommittedLookupTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>How long closing a lease retries its final commit before leaving the re-read to the next owner.</summary>
    public TimeSpan FinalCommitTimeout { get; init; } = TimeSpan.FromSeconds(10);
    public TimeSpan MetadataTimeout { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>
/// One librdkafka consumer per (node, kafka consumer config), shared by the partition entities of that consumer.
/// Cluster.Sharding decides which node reads a partition (among those the group member singleton owns), so this
/// consumer has no group subscription: partitions are added and removed with incremental manual assignment, starting
/// at the group's committed offset; commits go through the group member (<see cref="Committer"/>).
/// A dedicated poll thread calls Consume continuously and routes each record to its lease's queue; a full queue pauses
/// only its own partition, so a stuck partition never slows the others. A second thread does the blocking group
/// calls (committed-offset lookups and batched commits), so a slow coordinator never stops fetching.
/// Thread-safe.
/// </summary>
internal sealed class KafkaConsumerHub : IAsyncDisposable
{
    private readonly string _name;

    internal ILogger Logger => _logger;

    internal string Name => _name;
    private readonly KafkaConsumerHubSettings _settings;
    private readonly ILogger _logger;
    private readonly IConsumer<byte[]?, byte[]?> _consumer;
    private readonly IAdminClient _metadata;
    private readonly IReadOnlyList<string> _topics;

    // Leases registered on this hub (active or closing); one per partition.
    private readonly ConcurrentDictionary<TopicPartition, KafkaPartitionLease> _leases = new();
    // Routing table and consumer assignment/pause state: touched by the poll thread only.
    private readonly Dictionary<TopicPartition, KafkaPartitionLease> _routes = [];
    private readonly ConcurrentQueue<Action> _pollCommands = new();
    private readonly Lock _pollCommandsRun = new();
    private readonly ConcurrentQueue<CommittedLookup> _lookups = new();
    private readonly ConcurrentQueue<FinalCommit> _finalCommits = new();
    private readonly SemaphoreSlim _coordinatorWake = new(0);
    private readonly TaskCompletionSource _pollStopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _coordinatorStopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();
    private volatile bool _stopPolling;
    private volatile bool _stopCoordinating;
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
        (PauseThreshold, ResumeAtOrBelow) = QueueLimits(options.PartitionQueueMaxSize);
        PauseBytes = Math.Max(1, options.PartitionQueueMaxBytes);
        _consumer = new ConsumerBuilder<byte[]?, byte[]?>(KafkaClientConfigBuilder.Consumer(options))
            .SetKeyDeserializer(Deserializers.ByteArray)
            .SetValueDeserializer(Deserializers.ByteArray)
            .SetErrorHandler((_, e) => LogClientError(e))
            .SetLogHandler((_, m) => KafkaLog.Librdkafka(_logger, KafkaLog.FromSyslog(m.Level), _name, m.Facility, m.Message))
            .Build();
        _metadata = new DependentAdminClientBuilder(_consumer.Handle).Build();
        new Thread(PollLoop) { IsBackground = true, Name = $"kafka-poll-{consumerName}" }.Start();
        new Thread(CoordinatorLoop) { IsBackground = true, Name = $"kafka-commit-{consumerName}" }.Start();
        KafkaLog.HubStarted(_logger, _name, KafkaClientConfigBuilder.Describe(options));
    }

    public string ConsumerName => _name;

    /// <summary>
    /// When set (by the node once its group member singleton proxy exists), every commit goes through the group member
    /// instead of this consumer (which has no membership): the call blocks the coordinator thread for at most the given
    /// timeout and returns one outcome per entry. Leases without a grant (epoch 0) are then never committed.
    /// </summary>
    internal Func<IReadOnlyList<KafkaCommitEntry>, TimeSpan, IReadOnlyList<KafkaCommitOutcome>>? Committer { get; set; }

    /// <summary>A lease's queue at or above this many records pauses its partition.</summary>
    internal int PauseThreshold { get; }

    /// <summary>A lease's queue at or above this many bytes pauses its partition too (resumes at half).</summary>
    internal long PauseBytes { get; }

    /// <summary>
    /// A paused partition resumes once its lease drained to this many queued records. The reader resumes it directly
    /// (librdkafka's pause/resume are thread-safe), not via the poll thread, which may sit in Consume for PollTimeout.
    /// A cycle still costs a refetch: pausing purges what librdkafka prefetched, and when that prefetch reached the
    /// partition end its next Fetch is a long poll the broker holds for fetch.wait.max.ms; librdkafka has one Fetch
    /// in flight per broker, so the refetch waits behind it. Small queue limits on a backlog that fits in one fetch
    /// therefore read about one queue per fetch_max_wait.
    /// </summary>
    internal int ResumeAtOrBelow { get; }

    /// <summary>
    /// The effective partition_queue_max_size (the configuration already mapped Centrifugo's -1 to 0 and unset to the
    /// default): 0 = pause whenever anything is queued (one fetch at a time), otherwise that many records.
    /// </summary>
    internal static (int Pause, int Resume) QueueLimits(int partitionQueueMaxSize)
    {
        var threshold = partitionQueueMaxSize <= 0 ? 1 : partitionQueueMaxSize;
        return (threshold, threshold / 2);
    }

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
            var committed = await LookupCommittedAsync(tp, cancellationToken);
            var start = committed >= 0 ? new Offset(committed) : Offset.Beginning;
            lease.Start(committed);
            await OnPollThreadAsync(() =>
            {
                _routes[tp] = lease;
                lease.Assigned();
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
        _stopCoordinating = true;
        _coordinatorWake.Release();
        await _coordinatorStopped.Task;
        await _stop.CancelAsync();
        _metadata.Dispose();
        _consumer.Close();
        _consumer.Dispose();
        _coordinatorWake.Dispose();
        _stop.Dispose();
        KafkaLog.HubStopped(_logger, _name);
    }

    /// <summary>The leases registered on this hub right now (diagnostics and tests).</summary>
    internal IReadOnlyList<KafkaPartitionLease> Leases => _leases.Values.ToArray();

    // ---- used by KafkaPartitionLease ----

    internal WatermarkOffsets Watermarks(TopicPartition tp) => _consumer.GetWatermarkOffsets(tp);

    internal void SetPaused(TopicPartition tp, bool paused)
    {
        if (paused)
        {
            _consumer.Pause([tp]);
        }
        else
        {
            _consumer.Resume([tp]);
        }
    }

    internal void RetryResume(KafkaPartitionLease lease) => _pollCommands.Enqueue(lease.ResumeIfDrained);

    internal Task UnassignAsync(KafkaPartitionLease lease) => OnPollThreadAsync(() =>
    {
        if (!_routes.TryGetValue(lease.TopicPartition, out var routed) || routed != lease)
        {
            return;
        }

        _routes.Remove(lease.TopicPartition);
        lease.Unassigned();
        _consumer.IncrementalUnassign([lease.TopicPartition]);
    });

    /// <summary>Commits the lease's marked offset; true once committed, false when it gave up (logged).</summary>
    internal Task<bool> CommitFinalAsync(KafkaPartitionLease lease)
    {
        var request = new FinalCommit(lease, Stopwatch.StartNew());
        _finalCommits.Enqueue(request);
        WakeCoordinator();
        return request.Done.Task;
    }

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

    private void PollLoop()
    {
        try
        {
            while (!_stopPolling)
            {
                RunPollCommands();
                ConsumeResult<byte[]?, byte[]?>? result;
                try
                {
                    result = _consumer.Consume(_settings.PollTimeout);
                }
                catch (ConsumeException e)
                {
                    var tpo = e.ConsumerRecord?.TopicPartitionOffset;
                    KafkaLog.ConsumeError(_logger, _name, tpo?.Topic ?? "", tpo?.Partition.Value ?? -1, e.Error.Code, e.Error.Reason);
                    continue;
                }
                catch (KafkaException e)
                {
                    LogClientError(e.Error);
                    // A fatal client error repeats on every call; do not spin on it.
                    _stop.Token.WaitHandle.WaitOne(TimeSpan.FromSeconds(1));
                    continue;
                }

                if (result is { IsPartitionEOF: false } && _routes.TryGetValue(result.TopicPartition, out var lease))
                {
                    // Records of partitions no longer routed here are dropped: their next owner refetches them
                    // from the committed offset.
                    try
                    {
                        lease.Deliver(ToRecord(result));
                    }
                    catch (KafkaException e)
                    {
                        // A failed Pause only means the queue grows past its limit until the next record retries it.
                        KafkaLog.PollThreadFailure(_logger, _name, result.Topic, result.Partition.Value, e);
                    }
                }
            }
        }
        finally
        {
            _pollStopped.TrySetResult();
            // Requests racing with shutdown still complete (OnPollThreadAsync runs them inline from now on).
            RunPollCommands();
        }
    }

    private void RunPollCommands()
    {
        lock (_pollCommandsRun)
        {
            while (_pollCommands.TryDequeue(out var command))
            {
                try
                {
                    command();
                }
                catch (KafkaException e)
                {
                    // Commands that report back catch for themselves; a failed Resume is retried by the next read.
                    KafkaLog.PollThreadFailure(_logger, _name, "", -1, e);
                }
            }
        }
    }

    private static KafkaRecord ToRecord(ConsumeResult<byte[]?, byte[]?> result)
    {
        var headers = result.Message.Headers is { Count: > 0 } h
            ? h.Select(x => new KeyValuePair<string, byte[]>(x.Key, x.GetValueBytes() ?? [])).ToArray()
            : [];
        return new KafkaRecord(result.Topic, result.Partition.Value, result.Offset.Value, result.Message.Key, result.Message.Value, headers);
    }

    // ---- coordinator thread: committed-offset lookups and commits (blocking calls) ----

    private Task<long> LookupCommittedAsync(TopicPartition tp, CancellationToken cancellationToken)
    {
        var lookup = new CommittedLookup(tp);
        var registration = cancellationToken.Register(() => lookup.Done.TrySetCanceled(cancellationToken));
        _ = lookup.Done.Task.ContinueWith(_ => registration.Dispose(), TaskScheduler.Default);
        _lookups.Enqueue(lookup);
        WakeCoordinator();
        return lookup.Done.Task;
    }

    private void WakeCoordinator()
    {
        try
        {
            _coordinatorWake.Release();
        }
        catch (ObjectDisposedException)
        {
            // Hub already stopped; the request is answered by the stop path.
        }
    }

    private void CoordinatorLoop()
    {
        var nextCommit = Stopwatch.StartNew();
        try
        {
            while (!_stopCoordinating)
            {
                var retryPending = !_finalCommits.IsEmpty;
                var wait = retryPending ? TimeSpan.FromMilliseconds(100) : _settings.CommitInterval - nextCommit.Elapsed;
                _coordinatorWake.Wait(wait < TimeSpan.Zero ? TimeSpan.Zero : wait);
                LookupCommitted();
                if (nextCommit.Elapsed >= _settings.CommitInterval || !_finalCommits.IsEmpty)
                {
                    CommitMarked();
                    AnswerFinalCommits(giveUpAll: false);
                    nextCommit.Restart();
                }
            }
        }
        finally
        {
            CommitMarked();
            AnswerFinalCommits(giveUpAll: true);
            while (_lookups.TryDequeue(out var lookup))
            {
                lookup.Done.TrySetException(new ObjectDisposedException(nameof(KafkaConsumerHub)));
            }

            _coordinatorStopped.TrySetResult();
        }
    }

    private void LookupCommitted()
    {
        var pending = new List<CommittedLookup>();
        while (_lookups.TryDequeue(out var lookup))
        {
            if (!lookup.Done.Task.IsCompleted)
            {
                pending.Add(lookup);
            }
        }

        if (pending.Count == 0)
        {
            return;
        }

        try
        {
            var committed = _consumer.Committed(pending.Select(l => l.TopicPartition).Distinct(), _settings.CommittedLookupTimeout);
            foreach (var lookup in pending)
            {
                var offset = committed.FirstOrDefault(c => c.TopicPartition == lookup.TopicPartition)?.Offset ?? Offset.Unset;
                lookup.Done.TrySetResult(offset.Value >= 0 ? offset.Value : -1);
            }
        }
        catch (KafkaException e)
        {
            KafkaLog.CommittedLookupFailed(_logger, _name, e.Error.Code, e.Error.Reason);
            foreach (var lookup in pending)
            {
                _lookups.Enqueue(lookup);
            }

            // Retried on the next commit tick rather than in a tight loop against an unreachable coordinator.
            _stop.Token.WaitHandle.WaitOne(TimeSpan.FromMilliseconds(500));
        }
    }

    private void CommitMarked()
    {
        var batch = new List<(KafkaPartitionLease Lease, long Next)>();
        foreach (var lease in _leases.Values)
        {
            if (lease.PendingCommit() is { } next)
            {
                batch.Add((lease, next));
            }
        }

        if (batch.Count == 0)
        {
            return;
        }

        if (Committer is { } committer)
        {
            CommitThroughMember(committer, batch);
            return;
        }

        try
        {
            _consumer.Commit(batch.Select(b => new TopicPartitionOffset(b.Lease.TopicPartition, b.Next)));
            foreach (var (lease, next) in batch)
            {
                lease.Committed(next);
            }
        }
        catch (TopicPartitionOffsetException e)
        {
            foreach (var (lease, next) in batch)
            {
                var result = e.Results.FirstOrDefault(r => r.TopicPartition == lease.TopicPartition);
                if (result is null || !result.Error.IsError)
                {
                    lease.Committed(next);
                }
                else
                {
                    KafkaLog.PartitionCommitFailed(_logger, _name, lease.TopicPartition.Topic, lease.TopicPartition.Partition.Value, next, result.Error.Code, result.Error.Reason);
                }
            }
        }
        catch (KafkaException e)
        {
            KafkaLog.CommitFailed(_logger, _name, e.Error.Code, e.Error.Reason);
        }
    }

    private void CommitThroughMember(
        Func<IReadOnlyList<KafkaCommitEntry>, TimeSpan, IReadOnlyList<KafkaCommitOutcome>> committer,
        List<(KafkaPartitionLease Lease, long Next)> batch)
    {
        batch.RemoveAll(b => b.Lease.Epoch == 0);
        if (batch.Count == 0)
        {
            return;
        }

        IReadOnlyList<KafkaCommitOutcome> outcomes;
        try
        {
            outcomes = committer(
                batch.Select(b => new KafkaCommitEntry(b.Lease.Topic, b.Lease.Partition, b.Lease.Epoch, b.Next)).ToArray(),
                _settings.FinalCommitTimeout);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException or InvalidOperationException
                                      or Akka.Actor.AskTimeoutException or ObjectDisposedException)
        {
            KafkaLog.CommitFailed(_logger, _name, ErrorCode.Local_TimedOut, e.Message);
            return;
        }

        for (var i = 0; i < batch.Count && i < outcomes.Count; i++)
        {
            var (lease, next) = batch[i];
            switch (outcomes[i])
            {
                case KafkaCommitOutcome.Committed:
                case KafkaCommitOutcome.Behind:
                    lease.Committed(next);
                    break;
                case KafkaCommitOutcome.StaleEpoch:
                case KafkaCommitOutcome.NotOwned:
                    lease.RefuseCommits();
                    lease.LapseGrant();
                    KafkaMemberLog.CommitRefused(_logger, _name, lease.Topic, lease.Partition, next, outcomes[i]);
                    break;
                default:
                    // Failed, or Fenced: the broker refused the member's generation (nothing moved). Retried with the
                    // next batch; if the membership is really gone the member revokes this lease's grant.
                    KafkaLog.PartitionCommitFailed(_logger, _name, lease.Topic, lease.Partition, next, ErrorCode.Local_Fail, outcomes[i].ToString());
                    break;
            }
        }
    }

    private void AnswerFinalCommits(bool giveUpAll)
    {
        var count = _finalCommits.Count;
        for (var i = 0; i < count && _finalCommits.TryDequeue(out var request); i++)
        {
            var lease = request.Lease;
            if (lease.PendingCommit() is null)
            {
                request.Done.TrySetResult(true);
            }
            else if (giveUpAll || request.Age.Elapsed >= _settings.FinalCommitTimeout)
            {
                KafkaLog.FinalCommitAbandoned(_logger, _name, lease.TopicPartition.Topic, lease.TopicPartition.Partition.Value, lease.MarkedOffset ?? -1, lease.CommittedOffset ?? -1);
                request.Done.TrySetResult(false);
            }
            else
            {
                _finalCommits.Enqueue(request);
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

    private sealed record CommittedLookup(TopicPartition TopicPartition)
    {
        public TaskCompletionSource<long> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed record FinalCommit(KafkaPartitionLease Lease, Stopwatch Age)
    {
        public TaskCompletionSource<bool> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
