using Centrifugo.Actors.Sharding;

namespace Centrifugo.Actors.Kafka;

/// <summary>
/// The partitions of one kafka consumer's topics, from metadata discovery (partitions added later appear within
/// <see cref="RefreshAfter"/> plus the keeper interval, without a restart). The keeper asks every 2 s; answers come
/// from the last discovery while a new one runs in the background, so a slow or unreachable broker never delays
/// the keeper. Partitions once seen are kept (Kafka never removes partitions; a topic missing from one answer is
/// usually a metadata hiccup). Thread-safe.
/// </summary>
internal sealed class KafkaPartitionCatalog(KafkaConsumerRuntime runtime) : IPartitionCatalog
{
    public static readonly TimeSpan RefreshAfter = TimeSpan.FromSeconds(5);

    private readonly Lock _gate = new();
    private readonly SortedSet<string> _known = new(StringComparer.Ordinal);
    private Task? _refresh;
    private DateTime _refreshedAt = DateTime.MinValue;

    public async Task<IReadOnlyList<string>> EntityIdsAsync(CancellationToken cancellationToken)
    {
        Task? first = null;
        lock (_gate)
        {
            if (_refresh is null || (_refresh.IsCompleted && DateTime.UtcNow - _refreshedAt >= RefreshAfter))
            {
                _refresh = RefreshAsync(cancellationToken);
            }
            if (_known.Count == 0)
            {
                first = _refresh;
            }
        }

        if (first is not null)
        {
            await first.WaitAsync(cancellationToken);
        }

        lock (_gate)
        {
            return _known.ToArray();
        }
    }

    private async Task RefreshAsync(CancellationToken cancellationToken)
    {
        try
        {
            var found = await runtime.Hub.DiscoverPartitionsAsync(cancellationToken);
            lock (_gate)
            {
                foreach (var (topic, partition) in found)
                {
                    _known.Add(PartitionEntityId.Kafka(runtime.Consumer, topic, partition));
                }
            }
        }
        finally
        {
            lock (_gate)
            {
                _refreshedAt = DateTime.UtcNow;
            }
        }
    }
}
