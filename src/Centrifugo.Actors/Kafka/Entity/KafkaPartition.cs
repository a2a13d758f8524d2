using System.Buffers;
using Centrifugo.Actors.Delivery;
using Centrifugo.Actors.Partitions;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Kafka;

/// <summary>
/// A Kafka topic-partition as a <see cref="PartitionEntity"/> sees it: it opens where the consumer group assigned the
/// partition (<see cref="KafkaPlacement"/> places the entity there) by attaching a lease of the node's
/// <see cref="KafkaConsumerHub"/>; anywhere else, or while the previous lease is closing, it stands by and asks again
/// every <see cref="KafkaSettings.AttachRetry"/>.
/// </summary>
internal sealed class KafkaPartitionSource(KafkaConsumerRuntime runtime, string topic, int partition, ILogger logger) : IPartitionSource
{
    public PartitionState Waiting => PartitionState.Standby;

    public TimeSpan RetryOpen => runtime.Hub.Settings.AttachRetry;

    public TimeSpan DrainTimeout => runtime.DrainTimeout;

    public void Wake()
    {
        // A Kafka read waits for records itself.
    }

    public async Task<IPartitionRun?> OpenAsync(CancellationToken cancellationToken)
    {
        KafkaPartitionLease? lease;
        try
        {
            lease = await runtime.Hub.AttachAsync(topic, partition, cancellationToken);
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested)
        {
            KafkaLog.AttachFailed(logger, runtime.Consumer, topic, partition, e.Message);
            return null;
        }
        catch (OperationCanceledException)
        {
            return null;
        }
        if (lease is null)
        {
            return null;
        }
        if (cancellationToken.IsCancellationRequested)
        {
            // The entity stopped while the lease was being set up: give it back, or nobody could attach again.
            await lease.DisposeAsync();
            return null;
        }
        return new KafkaPartitionRun(lease, runtime.Processor, Math.Max(1, runtime.Options.MaxPollRecords), runtime.Consumer, logger);
    }

    public void Dispose()
    {
    }
}

/// <summary>
/// Reading one topic-partition through its lease: a batch read is held (and decoded once) until every record in it is
/// finished; a failed attempt leaves the unfinished records held for the next attempt, so nothing is read twice and no
/// mark passes an unfinished record. When the group revokes the partition the lease stops reading and the held batch
/// may finish within the drain budget; lost, nothing more is delivered. Disposing the run commits the last mark
/// (nothing when lost). Used by one loop at a time.
/// </summary>
internal sealed class KafkaPartitionRun(
    KafkaPartitionLease lease, KafkaRecordProcessor processor, int maxRecords, string consumer, ILogger logger) : IPartitionRun
{
    private KafkaRecordBatch? _held;
    private DecodeResult[] _decoded = [];
    private bool[] _finished = [];
    private int _start;
    private bool _lost;

    public PartitionState Opened => PartitionState.Idle;

    public long? Lag => lease.IsClosed ? null : lease.Lag;

    public long? Position => lease.IsClosed ? null : lease.NextOffset;

    public void OnEnded(Action<bool> ended) => lease.OnEnded(() =>
    {
        if (lease.IsLost)
        {
            KafkaLog.PartitionLost(logger, consumer, lease.Topic, lease.Partition);
        }
        ended(lease.IsLost);
    });

    public async Task<bool> WaitForWorkAsync(Action<PassReport> report, CancellationToken stop)
    {
        if (_lost || stop.IsCancellationRequested)
        {
            return false;
        }
        if (_held is not null)
        {
            return true;
        }
        KafkaRecordBatch batch;
        try
        {
            batch = await lease.ReadBatchAsync(maxRecords, stop);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            return false;
        }
        if (batch.Count == 0)
        {
            // Empty only when the lease ended.
            batch.Dispose();
            return false;
        }
        Hold(batch);
        return true;
    }

    /// <summary>Paused: the batch read stays held (not delivered, nothing marked), so nothing is read twice.</summary>
    public Task ReleaseAsync(Action<PassReport> report) => Task.CompletedTask;

    public async Task<PassReport> PassAsync(CancellationToken stop, CancellationToken work)
    {
        var batch = _held ?? throw new InvalidOperationException("No batch is held.");
        var count = batch.Count;
        try
        {
            var (next, pass) = await processor.AttemptAsync(lease, batch,
                new ArraySegment<DecodeResult>(_decoded, 0, count), new ArraySegment<bool>(_finished, 0, count), _start, work);
            _start = next;
            if (_start >= count)
            {
                Drop();
            }
            return pass;
        }
        catch (KafkaPartitionLostException)
        {
            _lost = true;
            Drop();
            return new PassReport(count - _start, 0, 0, null);
        }
    }

    public PartitionState StateAfter(PassReport report) => lease.QueuedCount > 0 ? PartitionState.Delivering : PartitionState.Idle;

    public async ValueTask DisposeAsync()
    {
        Drop();
        await lease.DisposeAsync();
    }

    private void Hold(KafkaRecordBatch batch)
    {
        var count = batch.Count;
        // Per-batch scratch from the pool, returned (cleared: commands point into the batch) when the batch is dropped.
        _decoded = ArrayPool<DecodeResult>.Shared.Rent(count);
        _finished = ArrayPool<bool>.Shared.Rent(count);
        Array.Clear(_finished, 0, count);
        for (var i = 0; i < count; i++)
        {
            _decoded[i] = processor.DecodeOrReject(batch, i);
        }
        _held = batch;
        _start = 0;
    }

    /// <summary>The batch's one owner lets go: its buffers and scratch go back to the pools.</summary>
    private void Drop()
    {
        if (_held is not { } batch)
        {
            return;
        }
        _held = null;
        ArrayPool<DecodeResult>.Shared.Return(_decoded, clearArray: true);
        ArrayPool<bool>.Shared.Return(_finished, clearArray: true);
        _decoded = [];
        _finished = [];
        batch.Dispose();
    }
}
