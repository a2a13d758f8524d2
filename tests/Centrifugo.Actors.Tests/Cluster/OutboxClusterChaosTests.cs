using System.Globalization;
using Centrifugo.Actors.Testing.Load;
using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.Processes;
using Centrifugo.Actors.Testing.StandIn;
using Centrifugo.Actors.Tests.Processes;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.Cluster;

/// <summary>
/// Three real node processes on one outbox while producers write the whole time and Centrifugo fails 1 command in
/// 60 with error 100: kill -9 of the oldest node, SIGTERM of another, SIGSTOP of a third past the downing time.
/// </summary>
[Trait(TestLane.Category, TestLane.Slow)]
[Collection(NodeProcessCollection.Name)]
public sealed class OutboxClusterChaosTests(PostgresFixture pg, ITestOutputHelper output) : IClassFixture<PostgresFixture>
{
    private const int Partitions = 24;
    /// <summary>The load is 25 rows/s per partition (600 rows/s); this runs it on 2 shared cores.</summary>
    private const double RowsPerSecondPerPartition = 25;

    [Fact]
    public async Task Kill_sigterm_and_freeze_of_nodes_lose_nothing_keep_order_and_every_partition_delivers_again()
    {
        var recorder = new DeliveryRecorder();
        await using var standIn = await CentrifugoStandIn.StartNewAsync(
            new StandInOptions { RecordCommands = false, OnAccepted = recorder.OnAccepted });
        standIn.FailEvery(60);
        var name = PostgresFixture.UniqueName("outbox");
        var channel = PostgresFixture.UniqueName("chaos");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name, notifyChannel: channel);
        var template = new NodeConfig
        {
            ApiUrl = standIn.Url,
            ApiKey = standIn.ApiKey,
            Consumers = [new PgConsumerConfig("pg_chaos", pg.Instance.UrlDsn, name, Partitions, "300ms", channel)],
            // The product's own shard count (and whatever cluster defaults it has).
            Customize = json => json["cluster"]!.AsObject().Remove("number_of_shards"),
        };
        var streamOfEntity = Enumerable.Range(0, Partitions)
            .ToDictionary(p => $"pg:pg_chaos:{p}", p => $"chaos:p{p}", StringComparer.Ordinal);

        await using var cluster = NodeCluster.Create(3, template);
        var chaos = new ClusterChaos(cluster, recorder, streamOfEntity, output.WriteLine);
        var load = OutboxLoad.Start(table, Partitions, RowsPerSecondPerPartition, "chaos:", recorder, TimeSpan.FromMinutes(8));
        // Beside it, reported and not asserted: two nodes listing one partition, nodes disagreeing about the members.
        var failures = await ChaosRun.RunWatchedAsync(cluster, chaos, load, output);

        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"load: {load.Produced} rows over {Partitions} partitions at {RowsPerSecondPerPartition}/s each, " +
            $"{load.Errors} failed writes; " +
            $"stand-in: {standIn.ReceivedCount} accepted, {standIn.PeriodicFailures} failed with error 100"));
        Dictionary<string, HashSet<long>>? waiting = null;
        async Task<IReadOnlySet<long>> PendingAsync(string stream)
        {
            waiting ??= await PendingRowsAsync(pg.DataSource, table, "chaos:");
            return waiting.GetValueOrDefault(stream) ?? [];
        }

        await ChaosRun.CheckDeliveriesAsync(recorder, chaos.Streams, PendingAsync, async () => await table.CountAsync() == 0,
            failures, output);
        if (load.Errors > 0)
        {
            failures.Add($"{load.Errors} producer writes failed");
        }

        if (failures.Count > 0)
        {
            output.WriteLine(cluster.Tails(40));
        }

        Assert.True(failures.Count == 0, "chaos checks failed:\n" + string.Join('\n', failures));
        Assert.Empty(await table.ReadDeadLettersAsync());
    }

    /// <summary>Sequence numbers of the rows still in the outbox, per stream ("&lt;prefix&gt;p&lt;partition&gt;").</summary>
    internal static async Task<Dictionary<string, HashSet<long>>> PendingRowsAsync(
        Npgsql.NpgsqlDataSource dataSource, OutboxTestTable table, string prefix)
    {
        await using var command = dataSource.CreateCommand(
            $"SELECT partition, (convert_from(payload, 'UTF8')::jsonb -> 'data' ->> 'seq')::bigint FROM {table.QuotedName}");
        await using var reader = await command.ExecuteReaderAsync();
        var pending = new Dictionary<string, HashSet<long>>(StringComparer.Ordinal);
        while (await reader.ReadAsync())
        {
            var stream = string.Create(CultureInfo.InvariantCulture, $"{prefix}p{reader.GetInt32(0)}");
            if (!pending.TryGetValue(stream, out var set))
            {
                pending[stream] = set = [];
            }

            set.Add(reader.GetInt64(1));
        }

        return pending;
    }
}
