using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.Processes;
using Centrifugo.Actors.Testing.StandIn;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.Processes;

/// <summary>
/// Two deployments (two independent clusters, e.g. blue/green) on one outbox table: every partition has two owners.
/// The partition's advisory lock belongs to the table, not to the consumer name, so the owners exclude each other also
/// under two names (a second deployment named differently, a consumer renamed in a rolling update, two config entries
/// on one table); the lock and the read-ahead head check deliver every row once, in order.
/// </summary>
[Collection(NodeProcessCollection.Name)]
public sealed class TwoDeploymentsTests(PostgresFixture pg, ITestOutputHelper output) : IClassFixture<PostgresFixture>, IAsyncLifetime
{
    private const int Partitions = 4;
    private CentrifugoStandIn _standIn = null!;

    public async Task InitializeAsync() => _standIn = await CentrifugoStandIn.StartNewAsync();

    public async Task DisposeAsync() => await _standIn.DisposeAsync();

    [Theory]
    [InlineData("pg_blue_green", "pg_blue_green", false)]
    [InlineData("blue_pg", "green_pg", false)] // also: the old and the new name during a rolling rename
    [InlineData("blue_pg", "green_pg", true)] // two config entries on one table in one node
    public async Task Two_owners_on_one_outbox_table_deliver_every_row_once_in_order(string blueName, string greenName, bool oneNode)
    {
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name);
        // The second owner spells the table schema-qualified: the same table for PostgreSQL, so the same lock.
        var blueConsumer = new PgConsumerConfig(blueName, pg.Instance.UrlDsn, name, Partitions, PollInterval: "20ms");
        var greenConsumer = new PgConsumerConfig(greenName, pg.Instance.UrlDsn, "public." + name, Partitions, PollInterval: "20ms");
        var blue = new NodeConfig
            { ApiUrl = _standIn.Url, ApiKey = _standIn.ApiKey, Consumers = oneNode ? [blueConsumer, greenConsumer] : [blueConsumer] };
        var green = new NodeConfig { ApiUrl = _standIn.Url, ApiKey = _standIn.ApiKey, Consumers = [greenConsumer] };

        await using var a = blue.Run("blue");
        await using var b = oneNode ? null : green.Run("green");
        await a.WaitUntilReadyAsync(TimeSpan.FromSeconds(60));
        if (b is not null)
        {
            await b.WaitUntilReadyAsync(TimeSpan.FromSeconds(60));
        }

        // Bursts that fill several select-limit batches, so both deployments read ahead and contend for the lock.
        var produced = new long[Partitions];
        for (var burst = 0; burst < 40; burst++)
        {
            var rows = new List<OutboxInsert>();
            for (var p = 0; p < Partitions; p++)
            {
                for (var i = 0; i < 150; i++)
                {
                    rows.Add(OutboxRows.Publish($"bg:{p}", produced[p]++, p));
                }
            }
            await table.InsertAsync(rows);
        }

        await Poll.UntilAsync(async () => await table.CountAsync() == 0, "outbox drained by the two owners", TimeSpan.FromSeconds(90));
        var lines = a.Lines.Concat(b?.Lines ?? []).ToList();
        var warnings = lines.Count(l => l.Contains("taken by another owner", StringComparison.Ordinal));
        output.WriteLine($"produced {produced.Sum()}, received {_standIn.ReceivedCount}, stale read-aheads re-read {warnings}");
        for (var p = 0; p < Partitions; p++)
        {
            OutboxRows.AssertDeliveredInOrder(_standIn, $"bg:{p}", produced[p]);
        }
        Assert.Equal(produced.Sum(), _standIn.ReceivedCount); // nothing failed, so nothing is delivered twice
        Assert.Empty(await table.ReadDeadLettersAsync());
    }
}
