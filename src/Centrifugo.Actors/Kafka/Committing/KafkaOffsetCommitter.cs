using System.Collections.Concurrent;
using System.Diagnostics;
using Confluent.Kafka;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Kafka;

/// <summary>What <see cref="KafkaOffsetCommitter"/> needs of a partition it commits for (a <see cref="KafkaPartitionLease"/>).</summary>
internal interface IKafkaCommitTarget
{
    TopicPartition TopicPartition { get; }

    long? MarkedOffset { get; }

    long? CommittedOffset { get; }

    /// <summary>The offset to commit (marked + 1) when it is ahead of the committed one, else null.</summary>
    long? PendingCommit();

    /// <summary>The group's committed offset reached <paramref name="next"/>.</summary>
    void Committed(long next);
}

/// <summary>
/// The group-coordinator side of a <see cref="KafkaConsumerHub"/>: committed-offset lookups for new leases, the
/// batched commit of every lease's marked offset each <see cref="KafkaSettings.CommitInterval"/>, and the
/// final commit of a closing lease (retried until <see cref="KafkaSettings.FinalCommitTimeout"/>). All of these are
/// blocking client calls, so they run on one dedicated thread: a slow coordinator never stops fetching. The broker
/// fences every commit by the member's generation (classic) or epoch (consumer protocol). Thread-safe.
/// </summary>
internal sealed class KafkaOffsetCommitter : IDisposable
{
    private readonly string _name;
    private readonly IConsumer<byte[]?, byte[]?> _consumer;
    private readonly Func<IEnumerable<IKafkaCommitTarget>> _targets;
    private readonly KafkaSettings _settings;
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
        KafkaSettings settings,
        ILogger logger)
    {
        _name = consumerName;
        _consumer = consumer;
        _targets = targets;
        _settings = settings;
        _logger = logger;
        new Thread(Run) { IsBackground = true, Name = $"kafka-commit-{consumerName}" }.Start();
    }

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
            // One partition's failing lookup (an unauthorised topic, an unstable offset) must not hold the others:
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
        // Closing leases are committed too: a revoked partition has already left the hub's assignment.
        foreach (var target in _targets().Concat(_finalCommits.Select(f => f.Target)).Distinct())
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
                    KafkaLog.PartitionCommitFailed(_logger, _name, target.TopicPartition.Topic, target.TopicPartition.Partition.Value, next,
                        result.Error.Code, result.Error.Reason);
                }
            }
        }
        catch (KafkaException e)
        {
            KafkaLog.CommitFailed(_logger, _name, e.Error.Code, e.Error.Reason);
        }
        catch (ObjectDisposedException)
        {
            // The consumer closed (the node left the group): nothing more can be committed by this member.
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
                KafkaLog.FinalCommitAbandoned(_logger, _name, target.TopicPartition.Topic, target.TopicPartition.Partition.Value,
                    target.MarkedOffset ?? -1, target.CommittedOffset ?? -1);
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
