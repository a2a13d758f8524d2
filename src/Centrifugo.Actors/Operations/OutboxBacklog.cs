using Centrifugo.Actors.Outbox;
using Microsoft.Extensions.Logging;
using Npgsql;
using Prometheus;

namespace Centrifugo.Actors.Operations;

/// <summary>Rows waiting in one outbox partition, and the id of the first one (the partition's position).</summary>
internal sealed record PartitionBacklog(long Rows, long? HeadId);

/// <summary>
/// The outbox backlog per partition of one consumer, for the admin endpoint (<c>partitions list</c>, a Prometheus
/// scrape): one grouped query over the (partition, id) index, bounded by a short timeout. The endpoint needs no token
/// to be read, so however many requests ask, the query runs at most once per <see cref="Interval"/> (requests meanwhile
/// share its answer, or the query in flight) and on a session of its own (an unpooled data source: one connection per
/// query, never one of the partitions' pool).
/// </summary>
internal sealed class OutboxBacklog : IDisposable
{
    public static readonly TimeSpan QueryTimeout = TimeSpan.FromSeconds(2);
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(5);

    private static readonly Gauge Backlog = Metrics.CreateGauge(
        "centrifugo_actors_outbox_backlog",
        "Rows waiting in an outbox partition hosted by this node (read at scrape time, at most 5 s old).",
        new GaugeConfiguration { LabelNames = ["consumer_name", "partition"] });

    private static readonly Lock SeriesGate = new();
    private static HashSet<(string, string)> _series = [];

    private readonly NpgsqlDataSource _dataSource;
    private readonly string _sql;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private Task<IReadOnlyDictionary<int, PartitionBacklog>>? _last;
    private long _lastStarted;
    private long _queries;

    public OutboxBacklog(OutboxConsumerRuntime runtime, ILoggerFactory loggerFactory, TimeProvider? time = null)
    {
        Consumer = runtime.Consumer;
        _dataSource = PostgresDataSources.Create(runtime.Options.Dsn, runtime.Options.Tls, pooling: false, loggerFactory);
        _sql = $"SELECT partition::int, count(*), min(id)::bigint FROM {runtime.Store.Sql.OutboxTable} GROUP BY partition";
        _time = time ?? TimeProvider.System;
    }

    public string Consumer { get; }

    /// <summary>How many queries this reader has started (the admin endpoint's whole database cost).</summary>
    public long Queries => Interlocked.Read(ref _queries);

    /// <summary>
    /// Rows and head id of every partition with rows (partitions without rows are absent), at most <see cref="Interval"/>
    /// old. A failed query fails every caller of its interval. <paramref name="cancellationToken"/> only stops the wait.
    /// </summary>
    public Task<IReadOnlyDictionary<int, PartitionBacklog>> ReadAsync(CancellationToken cancellationToken)
    {
        Task<IReadOnlyDictionary<int, PartitionBacklog>> task;
        lock (_gate)
        {
            if (_last is null || (_last.IsCompleted && _time.GetElapsedTime(_lastStarted) >= Interval))
            {
                _lastStarted = _time.GetTimestamp();
                Interlocked.Increment(ref _queries);
                _last = QueryAsync();
            }
            task = _last;
        }
        return task.WaitAsync(cancellationToken);
    }

    private async Task<IReadOnlyDictionary<int, PartitionBacklog>> QueryAsync()
    {
        using var timeout = new CancellationTokenSource(QueryTimeout);
        await using var command = _dataSource.CreateCommand(_sql);
        await using var reader = await command.ExecuteReaderAsync(timeout.Token);
        var result = new Dictionary<int, PartitionBacklog>();
        while (await reader.ReadAsync(timeout.Token))
        {
            result[reader.GetInt32(0)] = new PartitionBacklog(reader.GetInt64(1), reader.IsDBNull(2) ? null : reader.GetInt64(2));
        }
        return result;
    }

    public void Dispose() => _dataSource.Dispose();

    /// <summary>Sets the backlog gauge of every outbox partition hosted here (0 when empty); drops series of partitions gone. A failed read
    /// keeps the last values.</summary>
    public static async Task UpdateGaugeAsync(
        IEnumerable<(OutboxBacklog Backlog, IReadOnlyList<int> Hosted)> consumers, CancellationToken cancellationToken)
    {
        var values = new List<((string, string) Key, long Rows)>();
        var failed = false;
        foreach (var (reader, hosted) in consumers)
        {
            if (hosted.Count == 0)
            {
                continue;
            }
            try
            {
                var backlog = await reader.ReadAsync(cancellationToken);
                values.AddRange(hosted.Select(p => ((reader.Consumer, p.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                    backlog.TryGetValue(p, out var b) ? b.Rows : 0L)));
            }
            catch (Exception ex) when (ex is NpgsqlException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                failed = true;
            }
        }
        lock (SeriesGate)
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

/// <summary>The backlog readers of a node's postgresql consumers, by consumer name; owned by the admin endpoint.</summary>
internal sealed class OutboxBacklogs(IEnumerable<OutboxConsumerRuntime> consumers, ILoggerFactory loggerFactory) : IDisposable
{
    public IReadOnlyDictionary<string, OutboxBacklog> ByConsumer { get; } =
        consumers.ToDictionary(c => c.Consumer, c => new OutboxBacklog(c, loggerFactory), StringComparer.Ordinal);

    public void Dispose()
    {
        foreach (var backlog in ByConsumer.Values)
        {
            backlog.Dispose();
        }
    }
}
