using Centrifugo.Actors.Configuration;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Outbox;

/// <summary>
/// LISTEN on partition_notification_channel (on partition_notification_dsn when set, else dsn) and
/// calls back with the partition index of each valid notification. Reconnects forever (1 s pause).
/// STUB: implemented by the PostgreSQL work package.
/// </summary>
internal sealed class OutboxNotificationListener : IAsyncDisposable
{
    public OutboxNotificationListener(string consumerName, PostgresConsumerOptions options, Action<int> onPartitionNotified, ILoggerFactory loggerFactory)
    {
        _ = consumerName; _ = options; _ = onPartitionNotified; _ = loggerFactory;
    }

    /// <summary>Starts listening in the background; returns once the first LISTEN succeeded or the token fires.</summary>
    public Task StartAsync(CancellationToken cancellationToken) => throw new NotImplementedException();

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
