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

/// <summary>LISTEN/NOTIFY of one postgresql consumer as a wake source: a notification wakes exactly that partition.</summary>
internal sealed class OutboxWakeSource(OutboxConsumerRuntime runtime, ILoggerFactory loggerFactory) : IWakeSource
{
    private OutboxNotificationListener? _listener;

    public async Task StartAsync(Action<string> wakeEntity, CancellationToken cancellationToken)
    {
        var consumer = runtime.Consumer;
        _listener = new OutboxNotificationListener(
            consumer,
            runtime.Options,
            partition => wakeEntity(PartitionEntityId.Outbox(consumer, partition)),
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
