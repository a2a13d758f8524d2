using System.Collections.Concurrent;
using System.Diagnostics;
using Confluent.Kafka;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Kafka;

/// <summary>What <see cref="KafkaOffsetCommitter"/> needs of a partition it commits for (a <see cref="KafkaPartitionLease"/>).</summary>
internal interface IKafkaCommitTarget
{
    TopicPartition TopicPartition { get; }

    /// <summary>The epoch of the delivery grant; 0 when no group member governs the partition.</summary>
    long Epoch { get; }

    long? MarkedOffset { get; }

    long? CommittedOffset { get; }

    /// <summary>The offset to commit (marked + 1) when it is ahead of the committed one, else null.</summary>
    long? PendingCommit();

    /// <summary>The group's committed offset reached <paramref name="next"/>.</summary>
    void Committed(long next);

    /// <summary>The group member refused a commit (stale epoch, not owned): nothing more is committed.</summary>
    void RefuseCommits();

    /// <summary>The grant ended: nothing more is delivered under it.</summary>
    void LapseGrant();
}

/// <summary>
/// The group-coordinator side of a <see cref="KafkaConsumerHub"/>: committed-offset lookups for new leases, the
/// batched commit of every lease's marked offset each <see cref="KafkaConsumerHubSettings.CommitInterval"/>, and the
/// final commit of a closing lease (retried until <see cref="KafkaConsumerHubSettings.FinalCommitTimeout"/>). All of
/// these are blocking client calls, so they run on one dedicated thread: a slow coordinator never stops fetching.
/// Commits go through the group member when <see cref="Committer"/> is set (the consumer itself has no membership),
/// else straight through the consumer (hub-only use in tests). Thread-safe.
/// </summary>
internal sealed class KafkaOffsetCommitter : IDisposable
{
    private readonly string _name;
    private readonly IConsumer<byte[]?, byte[]?> _consumer;
    private readonly Func<IEnumerable<IKafkaCommitTarget>> _targets;
    private readonly KafkaConsumerHubSettings _settings;
    private readonly ILogger _logger;
    private readonly ConcurrentQueue<CommittedLookup> _lookups = new();
    private readonly ConcurrentQueue<FinalCommit> _finalCommits = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();
    private volatile bool _stopping;

    /// <param name="targets">The partitions to commit for right now (read on every commit tick).</param>
    public KafkaOffsetCommitter(
        string consumerName,
        IConsumer<byte[]?, byte[]?> consumer,
        Func<IEnumerable<IKafkaCommitTarget>> targets,
        KafkaConsumerHubSettings settings,
        ILogger logger)
    {
        _name = consumerName;
        _consumer = consumer;
        _targets = targets;
        _settings = settings;
        _logger = logger;
        new Thread(Run) { IsBackground = true, Name = $"kafka-commit-{consumerName}" }.Start();
    }

    /// <summary>
    /// When set, every commit goes through the group member: the call blocks the commit thread for at most the given
    /// timeout (<see cref="KafkaConsumerHubSettings.MemberCommitTimeout"/>) and returns one outcome per entry. Targets without a grant (epoch 0) are then never committed.
    /// </summary>
    public Func<IReadOnlyList<KafkaCommitEntry>, TimeSpan, IReadOnlyList<KafkaCommitOutcome>>? Committer { get; set; }

    /// <summary>The group's committed offset of a partition (next offset to read), -1 when none; retried until cancelled.</summary>
    public Task<long> LookupCommittedAsync(TopicPartition tp, CancellationToken cancellationToken)
    {
        var lookup = new CommittedLookup(tp);
        var registration = cancellationToken.Register(() => lookup.Done.TrySetCanceled(cancellationToken));
        _ = lookup.Done.Task.ContinueWith(_ => registration.Dispose(), TaskScheduler.Default);
        _lookups.Enqueue(lookup);
        Wake();
        if (_stopped.Task.IsCompleted)
        {
            FailLookups();
        }

        return lookup.Done.Task;
    }

    /// <summary>Commits the target's marked offset; true once committed, false when it gave up (logged).</summary>
    public Task<bool> CommitFinalAsync(IKafkaCommitTarget target)
    {
        var request = new FinalCommit(target, Stopwatch.StartNew());
        _finalCommits.Enqueue(request);
        Wake();
        return request.Done.Task;
    }

    /// <summary>
    /// Stops the thread after one last commit of every marked offset; pending final commits that are still not
    /// committed then give up, pending lookups fail with <see cref="ObjectDisposedException"/>.
    /// </summary>
    public Task StopAsync()
    {
        _stopping = true;
        Wake();
        return _stopped.Task;
    }

    /// <summary>Stops the thread if <see cref="StopAsync"/> was not awaited (it still makes its last commit, without waiting).</summary>
    public void Dispose()
    {
        _stopping = true;
        _stop.Cancel();
        Wake();
        if (_stopped.Task.IsCompleted)
        {
            _wake.Dispose();
            _stop.Dispose();
        }
    }

    private void Wake()
    {
        try
        {
            _wake.Release();
        }
        catch (ObjectDisposedException)
        {
            // Already stopped; the request was answered by the stop path.
        }
    }

    private void Run()
    {
        var nextCommit = Stopwatch.StartNew();
        try
        {
            while (!_stopping)
            {
                var retryPending = !_finalCommits.IsEmpty;
                var wait = retryPending ? TimeSpan.FromMilliseconds(100) : _settings.CommitInterval - nextCommit.Elapsed;
                _wake.Wait(wait < TimeSpan.Zero ? TimeSpan.Zero : wait);
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
            _stopped.TrySetResult();
            FailLookups();
        }
    }

    private void FailLookups()
    {
        while (_lookups.TryDequeue(out var lookup))
        {
            lookup.Done.TrySetException(new ObjectDisposedException(nameof(KafkaOffsetCommitter)));
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
            // K7: one partition's failing lookup (an unauthorised topic, an unstable offset) must not hold the others:
            // partitions answered without an error are done, only the rest is asked again.
            var answered = (e as TopicPartitionOffsetException)?.Results
                .Where(r => !r.Error.IsError)
                .ToDictionary(r => r.TopicPartition, r => r.Offset.Value) ?? [];
            foreach (var lookup in pending)
            {
                if (answered.TryGetValue(lookup.TopicPartition, out var offset))
                {
                    lookup.Done.TrySetResult(offset >= 0 ? offset : -1);
                }
                else
                {
                    _lookups.Enqueue(lookup);
                }
            }

            // Retried on the next commit tick rather than in a tight loop against an unreachable coordinator.
            _stop.Token.WaitHandle.WaitOne(TimeSpan.FromMilliseconds(500));
        }
    }

    private void CommitMarked()
    {
        var batch = new List<(IKafkaCommitTarget Target, long Next)>();
        foreach (var target in _targets())
        {
            if (target.PendingCommit() is { } next)
            {
                batch.Add((target, next));
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
            _consumer.Commit(batch.Select(b => new TopicPartitionOffset(b.Target.TopicPartition, b.Next)));
            foreach (var (target, next) in batch)
            {
                target.Committed(next);
            }
        }
        catch (TopicPartitionOffsetException e)
        {
            foreach (var (target, next) in batch)
            {
                var result = e.Results.FirstOrDefault(r => r.TopicPartition == target.TopicPartition);
                if (result is null || !result.Error.IsError)
                {
                    target.Committed(next);
                }
                else
                {
                    KafkaLog.PartitionCommitFailed(_logger, _name, target.TopicPartition.Topic, target.TopicPartition.Partition.Value, next, result.Error.Code, result.Error.Reason);
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
        List<(IKafkaCommitTarget Target, long Next)> batch)
    {
        batch.RemoveAll(b => b.Target.Epoch == 0);
        if (batch.Count == 0)
        {
            return;
        }

        IReadOnlyList<KafkaCommitOutcome> outcomes;
        try
        {
            outcomes = committer(
                batch.Select(b => new KafkaCommitEntry(b.Target.TopicPartition.Topic, b.Target.TopicPartition.Partition.Value, b.Target.Epoch, b.Next)).ToArray(),
                _settings.MemberCommitTimeout);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException or InvalidOperationException
                                      or Akka.Actor.AskTimeoutException or ObjectDisposedException)
        {
            KafkaLog.CommitFailed(_logger, _name, ErrorCode.Local_TimedOut, e.Message);
            return;
        }

        for (var i = 0; i < batch.Count && i < outcomes.Count; i++)
        {
            var (target, next) = batch[i];
            var (topic, partition) = (target.TopicPartition.Topic, target.TopicPartition.Partition.Value);
            switch (outcomes[i])
            {
                case KafkaCommitOutcome.Committed:
                case KafkaCommitOutcome.Behind:
                    target.Committed(next);
                    break;
                case KafkaCommitOutcome.StaleEpoch:
                case KafkaCommitOutcome.NotOwned:
                    target.RefuseCommits();
                    target.LapseGrant();
                    KafkaMemberLog.CommitRefused(_logger, _name, topic, partition, next, outcomes[i]);
                    break;
                case KafkaCommitOutcome.Pending:
                    // The member is taking over (a graceful move): retried with the next batch, nothing to report.
                    break;
                default:
                    // Failed, or Fenced: the broker refused the member's generation (nothing moved). Retried with the
                    // next batch; if the membership is really gone the member revokes this lease's grant.
                    KafkaLog.PartitionCommitFailed(_logger, _name, topic, partition, next, ErrorCode.Local_Fail, outcomes[i].ToString());
                    break;
            }
        }
    }

    private void AnswerFinalCommits(bool giveUpAll)
    {
        var count = _finalCommits.Count;
        for (var i = 0; i < count && _finalCommits.TryDequeue(out var request); i++)
        {
            var target = request.Target;
            if (target.PendingCommit() is null)
            {
                request.Done.TrySetResult(true);
            }
            else if (giveUpAll || request.Age.Elapsed >= _settings.FinalCommitTimeout)
            {
                KafkaLog.FinalCommitAbandoned(_logger, _name, target.TopicPartition.Topic, target.TopicPartition.Partition.Value, target.MarkedOffset ?? -1, target.CommittedOffset ?? -1);
                request.Done.TrySetResult(false);
            }
            else
            {
                _finalCommits.Enqueue(request);
            }
        }
    }

    private sealed record CommittedLookup(TopicPartition TopicPartition)
    {
        public TaskCompletionSource<long> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed record FinalCommit(IKafkaCommitTarget Target, Stopwatch Age)
    {
        public TaskCompletionSource<bool> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
