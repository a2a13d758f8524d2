using Akka.Actor;
using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.StandIn;
using Centrifugo.Actors.Tests.Processes;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.Node;

/// <summary>Two nodes in one cluster running different configurations, as during a rolling configuration change.</summary>
public sealed class RollingConfigTests(PostgresFixture pg, ITestOutputHelper output) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task A_consumer_only_a_younger_node_knows_runs_there_and_delivers()
    {
        var oldTable = await OutboxTestTable.CreateAsync(pg.DataSource, PostgresFixture.UniqueName("outbox"));
        var newTable = await OutboxTestTable.CreateAsync(pg.DataSource, PostgresFixture.UniqueName("outbox"));
        await using var standIn = await CentrifugoStandIn.StartNewAsync();
        var oldConsumer = TestNode.Postgres("pg_old", pg.Instance.UrlDsn, oldTable.Name, partitions: 4);
        var newConsumer = TestNode.Postgres("pg_new", pg.Instance.UrlDsn, newTable.Name, partitions: 4);

        // The oldest node (it hosts the singletons) still runs the configuration without pg_new.
        await using var old = await TestNode.StartAsync(TestNode.Options(standIn.Url, standIn.ApiKey, oldConsumer), output);
        await old.WaitForPartitionsAsync(4);
        var seed = Akka.Cluster.Cluster.Get(old.Services.GetRequiredService<ActorSystem>()).SelfAddress.ToString();
        var options = TestNode.Options(standIn.Url, standIn.ApiKey, oldConsumer, newConsumer);
        await using var updated = await TestNode.StartAsync(options with { Cluster = options.Cluster with { SeedNodes = [seed] } }, output);

        const int PerPartition = 5;
        for (var seq = 0; seq < PerPartition; seq++)
        {
            await newTable.InsertAsync(Enumerable.Range(0, 4).Select(p => OutboxRows.Publish($"new:{p}", seq, p)));
            await oldTable.InsertAsync(Enumerable.Range(0, 4).Select(p => OutboxRows.Publish($"old:{p}", seq, p)));
        }
        await Poll.UntilAsync(() => Enumerable.Range(0, 4).All(p => standIn.ReceivedFor($"new:{p}").Count >= PerPartition
                && standIn.ReceivedFor($"old:{p}").Count >= PerPartition),
            "every row of both consumers delivered", TimeSpan.FromSeconds(60));

        Assert.Equal(4, updated.Board.Snapshot().Count(s => s.Consumer == "pg_new"));
        Assert.DoesNotContain(old.Board.Snapshot(), s => s.Consumer == "pg_new");
        Assert.DoesNotContain(old.Logs.Lines, l => l.Contains("[5001]", StringComparison.Ordinal));
    }
}
