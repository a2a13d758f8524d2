using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.Processes;
using Centrifugo.Actors.Testing.StandIn;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.Processes;

/// <summary>
/// Two deployments (two independent clusters, e.g. blue/green) on one outbox table: every partition has two owners.
/// The advisory lock and the read-ahead head check keep the last application of every command in order.
/// </summary>
[Collection(NodeProcessCollection.Name)]
public sealed class TwoDeploymentsTests(PostgresFixture pg, ITestOutputHelper output) : IClassFixture<PostgresFixture>, IAsyncLifetime
{
    private const int Partitions = 4;
    private CentrifugoStandIn _standIn = null!;

    public async Task InitializeAsync() => _standIn = await CentrifugoStandIn.StartNewAsync();

    public async Task DisposeAsync() => await _standIn.DisposeAsync();

    [Fact]
    public async Task Two_deployments_on_one_outbox_table_deliver_everything_with_the_last_application_in_order()
    {
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name);
        var consumer = new PgConsumerConfig("pg_blue_green", pg.Instance.UrlDsn, name, Partitions, PollInterval: "20ms");
        var blue = new NodeConfig { ApiUrl = _standIn.Url, ApiKey = _standIn.ApiKey, Consumers = [consumer] };
        var green = new NodeConfig { ApiUrl = _standIn.Url, ApiKey = _standIn.ApiKey, Consumers = [consumer] };

        await using var a = blue.Run("blue");
        await using var b = green.Run("green");
        await a.WaitUntilReadyAsync(TimeSpan.FromSeconds(60));
        await b.WaitUntilReadyAsync(TimeSpan.FromSeconds(60));

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

        await Poll.UntilAsync(async () => await table.CountAsync() == 0, "outbox drained by the two deployments", TimeSpan.FromSeconds(90));
        var warnings = a.Lines.Concat(b.Lines).Count(l => l.Contains("taken by another owner", StringComparison.Ordinal));
        output.WriteLine($"produced {produced.Sum()}, received {_standIn.ReceivedCount}, stale read-aheads re-read {warnings}");
        for (var p = 0; p < Partitions; p++)
        {
            OutboxRows.AssertDeliveredInOrder(_standIn, $"bg:{p}", produced[p]);
        }
        Assert.Empty(await table.ReadDeadLettersAsync());
    }
}
