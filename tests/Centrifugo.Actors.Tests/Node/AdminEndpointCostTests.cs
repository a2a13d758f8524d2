using System.Diagnostics;
using Akka.Actor;
using Akka.Cluster.Sharding;
using Centrifugo.Actors.Hosting;
using Centrifugo.Actors.Partitions;
using Centrifugo.Actors.Sharding;
using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.StandIn;
using Centrifugo.Actors.Tests.Processes;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.Node;

/// <summary>What the unauthenticated status routes may cost: database queries and partition entities.</summary>
public sealed class AdminEndpointCostTests(PostgresFixture pg, ITestOutputHelper output) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task A_flood_of_status_and_metrics_requests_runs_one_backlog_count_per_interval_and_delivery_goes_on()
    {
        // A server of its own: pg_stat_statements counts the backlog query whoever runs it.
        await using var server = await PostgresInstance.StartAsync(new PostgresInstanceOptions(MaxConnections: 40,
            ExtraSettings: ["shared_preload_libraries = 'pg_stat_statements'", "pg_stat_statements.track = all"]));
        await using var data = NpgsqlDataSource.Create(server.ConnectionString);
        await using (var command = data.CreateCommand("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
        {
            await command.ExecuteNonQueryAsync();
        }
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(data, name);
        await using var standIn = await CentrifugoStandIn.StartNewAsync();
        await using var node = await TestNode.StartAsync(TestNode.Options(standIn.Url, standIn.ApiKey,
            TestNode.Postgres("pg_flood", server.UrlDsn + "&pool_max_conns=3", name, partitions: 2)), output);
        await node.WaitForPartitionsAsync(2);
        await using (var reset = data.CreateCommand("SELECT pg_stat_statements_reset()"))
        {
            await reset.ExecuteNonQueryAsync();
        }

        var clock = Stopwatch.StartNew();
        using var stop = new CancellationTokenSource();
        using var http = new HttpClient();
        var requests = 0;
        var flood = Enumerable.Range(0, 100).Select(i => Task.Run(async () =>
        {
            var path = i % 2 == 0 ? "/status/partitions" : "/metrics";
            while (!stop.IsCancellationRequested)
            {
                using var response = await http.GetAsync(new Uri(node.AdminUrl + path), CancellationToken.None);
                Interlocked.Increment(ref requests);
            }
        })).ToArray();
        const int Rows = 200;
        for (var seq = 0; seq < Rows; seq++)
        {
            await table.InsertAsync([OutboxRows.Publish("flood:a", seq, seq % 2)]);
        }
        await Poll.UntilAsync(() => standIn.ReceivedFor("flood:a").Count >= Rows,
            "every row delivered during the flood", TimeSpan.FromSeconds(60));
        await Poll.UntilAsync(() => Volatile.Read(ref requests) >= 1000, "1000 status requests answered", TimeSpan.FromSeconds(60));
        await stop.CancelAsync();
        await Task.WhenAll(flood);
        var elapsed = clock.Elapsed;

        await using var calls = data.CreateCommand(
            "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements WHERE query LIKE '%count(*)%' AND query LIKE '%' || $1 || '%'");
        calls.Parameters.AddWithValue(name);
        var counted = (long)(await calls.ExecuteScalarAsync())!;
        output.WriteLine($"{requests} requests in {elapsed.TotalSeconds:0.0} s: {counted} backlog queries");
        Assert.InRange(counted, 1, 1 + (long)(elapsed / Centrifugo.Actors.Operations.OutboxBacklog.Interval));
    }

    [Fact]
    public async Task Cluster_scope_asks_only_entities_that_run_and_starts_none()
    {
        var name = PostgresFixture.UniqueName("outbox");
        await OutboxTestTable.CreateAsync(pg.DataSource, name);
        await using var standIn = await CentrifugoStandIn.StartNewAsync();
        await using var node = await TestNode.StartAsync(TestNode.Options(standIn.Url, standIn.ApiKey,
            TestNode.Postgres("pg_scope", pg.Instance.UrlDsn, name, partitions: 2)), output);
        await node.WaitForPartitionsAsync(2);
        var system = node.Services.GetRequiredService<ActorSystem>();
        var region = Akka.Hosting.ActorRegistry.For(system).Get<PartitionRegion>();

        // A catalog naming a partition that runs nowhere (as another node's configuration may during a rolling change).
        var statuses = await ClusterStatus.PartitionsAsync(system, region, [.. node.Runtime.Catalogs, new FixedCatalog("pg:ghost:0")],
            TimeSpan.FromSeconds(3), CancellationToken.None);

        Assert.Equal(["pg:ghost:0", "pg:pg_scope:0", "pg:pg_scope:1"], statuses.Select(s => s.EntityId).ToArray());
        Assert.Equal(PartitionState.Unreachable, statuses[0].State);
        Assert.All(statuses.Skip(1), s => Assert.NotEqual(PartitionState.Unreachable, s.State));
        var state = await region.Ask<CurrentShardRegionState>(GetShardRegionState.Instance, TimeSpan.FromSeconds(3));
        Assert.Equal(["pg:pg_scope:0", "pg:pg_scope:1"], state.Shards.SelectMany(s => s.EntityIds).Order(StringComparer.Ordinal).ToArray());
        Assert.DoesNotContain(node.Logs.Lines, l => l.Contains("[5001]", StringComparison.Ordinal));
    }

    private sealed class FixedCatalog(params string[] ids) : IPartitionCatalog
    {
        public Task<IReadOnlyList<string>> EntityIdsAsync(CancellationToken cancellationToken) =>
            Task.FromResult<IReadOnlyList<string>>(ids);
    }
}
