using Centrifugo.Actors.Outbox;
using Npgsql;
using Prometheus;

namespace Centrifugo.Actors.Operations;

/// <summary>Rows waiting in one outbox partition, and the id of the first one (the partition's position).</summary>
internal sealed record PartitionBacklog(long Rows, long? HeadId);

/// <summary>
/// The outbox backlog per partition: one grouped query over the (partition, id) index per consumer, made when the
/// admin endpoint is asked (<c>partitions list</c>, a Prometheus scrape), bounded by a short timeout.
/// </summary>
internal static class OutboxBacklog
{
    public static readonly TimeSpan QueryTimeout = TimeSpan.FromSeconds(2);

    private static readonly Gauge Backlog = Metrics.CreateGauge(
        "centrifugo_actors_outbox_backlog", "Rows waiting in an outbox partition hosted by this node (read at scrape time).",
        new GaugeConfiguration { LabelNames = ["consumer_name", "partition"] });

    private static readonly Lock Gate = new();
    private static HashSet<(string, string)> _series = [];

    /// <summary>Rows and head id of the given partitions (all when null); partitions without rows are absent.</summary>
    public static async Task<IReadOnlyDictionary<int, PartitionBacklog>> QueryAsync(OutboxStore store, IReadOnlyCollection<int>? partitions, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(QueryTimeout);
        await using var connection = await store.OpenSessionAsync(timeout.Token);
        await using var command = new NpgsqlCommand(
            $"SELECT partition::int, count(*), min(id)::bigint FROM {store.Sql.OutboxTable} " +
            "WHERE ($1::int[] IS NULL OR partition = ANY($1)) GROUP BY partition", connection);
        command.Parameters.Add(new NpgsqlParameter
        {
            Value = partitions is null ? DBNull.Value : partitions.ToArray(),
            NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Integer,
        });
        await using var reader = await command.ExecuteReaderAsync(timeout.Token);
        var result = new Dictionary<int, PartitionBacklog>();
        while (await reader.ReadAsync(timeout.Token))
        {
            result[reader.GetInt32(0)] = new PartitionBacklog(reader.GetInt64(1), reader.IsDBNull(2) ? null : reader.GetInt64(2));
        }
        return result;
    }

    /// <summary>Sets the backlog gauge of every outbox partition hosted here (0 when empty); drops series of partitions gone. A failed query keeps the last values.</summary>
    public static async Task UpdateGaugeAsync(IEnumerable<(OutboxConsumerRuntime Runtime, IReadOnlyList<int> Hosted)> consumers, CancellationToken cancellationToken)
    {
        var values = new List<((string, string) Key, long Rows)>();
        var failed = false;
        foreach (var (runtime, hosted) in consumers)
        {
            if (hosted.Count == 0)
            {
                continue;
            }
            try
            {
                var backlog = await QueryAsync(runtime.Store, hosted, cancellationToken);
                values.AddRange(hosted.Select(p => ((runtime.Consumer, p.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                    backlog.TryGetValue(p, out var b) ? b.Rows : 0L)));
            }
            catch (Exception ex) when (ex is NpgsqlException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                failed = true;
            }
        }
        lock (Gate)
        {
            foreach (var (key, rows) in values)
            {
                Backlog.WithLabels(key.Item1, key.Item2).Set(rows);
            }
            if (!failed)
            {
                var now = values.Select(v => v.Key).ToHashSet();
                foreach (var gone in _series.Except(now))
                {
                    Backlog.RemoveLabelled(gone.Item1, gone.Item2);
                }
                _series = now;
            }
            else
            {
                _series.UnionWith(values.Select(v => v.Key));
            }
        }
    }
}
