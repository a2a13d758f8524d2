using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.Processes;
using Centrifugo.Actors.Testing.StandIn;
using Centrifugo.Actors.Tests.Processes;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.Cluster;

/// <summary>
/// PostgreSQL as the failure detector for a crashed node: two real node processes on one outbox; kill -9 of one
/// releases its liveness lock, the other downs it at once (event 1111, not the split-brain resolver) and delivers its
/// partitions.
/// </summary>
[Trait(TestLane.Category, TestLane.Slow)]
[Collection(NodeProcessCollection.Name)]
public sealed class PostgresLivenessTests(PostgresFixture pg, ITestOutputHelper output) : IClassFixture<PostgresFixture>
{
    private const int Partitions = 4;

    [Fact]
    public async Task A_killed_node_is_downed_when_its_liveness_lock_is_released_and_its_partitions_deliver_on_the_other()
    {
        await using var standIn = await CentrifugoStandIn.StartNewAsync();
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name);
        var template = new NodeConfig
        {
            ApiUrl = standIn.Url,
            ApiKey = standIn.ApiKey,
            Consumers = [new PgConsumerConfig("pg_live", pg.Instance.UrlDsn, name, Partitions)],
        };
        var all = Enumerable.Range(0, Partitions).Select(p => $"pg:pg_live:{p}").ToHashSet(StringComparer.Ordinal);
        await using var cluster = NodeCluster.Create(2, template);
        await cluster.StartReadyAsync(0, TimeSpan.FromSeconds(60));
        await cluster.StartReadyAsync(1, TimeSpan.FromSeconds(60));
        var (spread, last) = await cluster.WaitForEvenSpreadAsync(all, TimeSpan.FromSeconds(60));
        Assert.True(spread is not null, $"no even spread: {last}");
        // Each node has seen the other's lock held (its first checks after the join).
        await cluster[0].WaitForOutputAsync("[1110]", TimeSpan.FromSeconds(30));
        await cluster[1].WaitForOutputAsync("[1110]", TimeSpan.FromSeconds(30));
        var victimPartitions = (await cluster.HostedAsync())[1];
        Assert.NotEmpty(victimPartitions);

        cluster[1].KillHard();
        await cluster[0].WaitUntilAsync(
            () => Task.FromResult(cluster[0].Lines
                .Any(l => l.Contains("[1111]", StringComparison.Ordinal) && l.Contains(cluster.Address(1), StringComparison.Ordinal))),
            "the survivor downs the killed node on its released liveness lock", TimeSpan.FromSeconds(30));
        Assert.DoesNotContain(cluster[0].Lines, l => l.Contains("SBR took decision", StringComparison.Ordinal));

        // Its partitions deliver on the survivor.
        await table.InsertAsync(Enumerable.Range(0, Partitions).Select(p => OutboxRows.Publish($"live:{p}", 0, p)));
        await cluster[0].WaitUntilAsync(async () => await table.CountAsync() == 0, "every partition delivered on the survivor",
            TimeSpan.FromSeconds(60));
        Assert.Equal(all, (await cluster.HostedAsync())[0].ToHashSet(StringComparer.Ordinal));
        output.WriteLine(cluster[0].Tail(30));
    }
}

/// <summary>Which session the detector uses, and when it stays off.</summary>
[Trait(TestLane.Category, TestLane.Fast)]
public sealed class PostgresLivenessSourceTests
{
    private static string? Database(string json) =>
        Centrifugo.Actors.Hosting.PostgresLiveness.DataSourceFor(
            Configuration.Cfg.Load(json), Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance) is { } source
            ? new Npgsql.NpgsqlConnectionStringBuilder(source.ConnectionString).Database
            : null;

    [Fact]
    public void The_first_postgresql_consumer_by_name_gives_the_session_and_pgbouncer_settings_or_the_option_turn_it_off()
    {
        Assert.Equal("app", Database(Configuration.Cfg.Config(Configuration.Cfg.Pg("pg_b"), Configuration.Cfg.Kafka())));
        Assert.Null(Database(Configuration.Cfg.Config(Configuration.Cfg.Kafka())));
        var off = Configuration.Cfg.Config(Configuration.Cfg.Pg()).TrimEnd('}') + ""","cluster":{"postgres_liveness":false}}""";
        Assert.Null(Database(off));
        var pgbouncer = Configuration.Cfg.Config(Configuration.Cfg.Pg())
            .Replace("sslmode=disable", "sslmode=disable&default_query_exec_mode=simple_protocol", StringComparison.Ordinal);
        Assert.Null(Database(pgbouncer));
    }
}
