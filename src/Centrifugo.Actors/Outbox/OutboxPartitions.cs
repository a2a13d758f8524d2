using Centrifugo.Actors.Delivery;
using Centrifugo.Actors.Partitions;
using Centrifugo.Actors.Sharding;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Outbox;

/// <summary>The fixed set of partitions 0..num_partitions-1 of one postgresql consumer.</summary>
internal sealed class OutboxPartitionCatalog(OutboxConsumerRuntime runtime) : IPartitionCatalog
{
    private readonly IReadOnlyList<string> _ids = Enumerable.Range(0, runtime.Options.NumPartitions)
        .Select(p => PartitionEntityId.Outbox(runtime.Consumer, p))
        .ToArray();

    public Task<IReadOnlyList<string>> EntityIdsAsync(CancellationToken cancellationToken) => Task.FromResult(_ids);
}

/// <summary>
/// LISTEN/NOTIFY of one postgresql consumer as a wake source of this node: a notification wakes exactly that
/// partition if it runs here (every node listens; the owner's node acts).
/// </summary>
internal sealed class OutboxWakeSource(OutboxConsumerRuntime runtime, ILoggerFactory loggerFactory) : IWakeSource
{
    private OutboxNotificationListener? _listener;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var wakes = runtime.Wakes;
        _listener = new OutboxNotificationListener(
            runtime.Consumer,
            runtime.Options,
            partition => wakes.Wake(partition),
            loggerFactory);
        await _listener.StartAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (_listener is not null)
        {
            await _listener.DisposeAsync();
        }
    }
}

/// <summary>
/// The census: every partition_poll_interval, ONE query (a loose index scan) finds the partitions of a consumer that
/// have rows, and wakes exactly those. Idle partitions therefore cost nothing per partition: they wait for a wake
/// (census or NOTIFY) instead of each polling the table, so the idle query rate is one per consumer per poll
/// interval however many partitions there are. Runs on every node that hosts a partition of the consumer (a node
/// hosting none skips the query) and wakes the partitions it hosts.
/// </summary>
internal sealed class OutboxCensusWakeSource(OutboxConsumerRuntime runtime, ILogger logger) : IWakeSource
{
    private readonly CancellationTokenSource _stop = new();
    private Task _loop = Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var token = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stop.Token).Token;
        _loop = Task.Run(() => RunAsync(token), CancellationToken.None);
        return Task.CompletedTask;
    }

    private async Task RunAsync(CancellationToken token)
    {
        var retries = 0;
        while (!token.IsCancellationRequested)
        {
            var wait = runtime.Options.PartitionPollInterval;
            try
            {
                if (runtime.Wakes.Any)
                {
                    foreach (var partition in await runtime.Store.NonEmptyPartitionsAsync(token))
                    {
                        runtime.Wakes.Wake(partition);
                    }
                }
                retries = 0;
            }
            catch (Exception ex) when (!token.IsCancellationRequested)
            {
                // Partitions still wake on NOTIFY and on their own (long) safety poll meanwhile.
                OutboxLog.CensusFailed(logger, runtime.Consumer, ex.Message);
                wait = Backoff.Next(++retries);
            }
            try
            {
                await Task.Delay(wait, token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _loop;
        }
        catch (OperationCanceledException)
        {
        }
        _stop.Dispose();
    }
}
