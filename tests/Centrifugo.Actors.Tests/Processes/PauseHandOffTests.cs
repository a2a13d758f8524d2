using Centrifugo.Actors.Host;
using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.Processes;
using Centrifugo.Actors.Testing.StandIn;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.Processes;

/// <summary>A paused partition stays paused when its node is SIGTERMed and the partition moves to a node that joined later.</summary>
[Collection(NodeProcessCollection.Name)]
public sealed class PauseHandOffTests(PostgresFixture pg, ITestOutputHelper output) : IClassFixture<PostgresFixture>
{
    private const int Partitions = 4;
    private const string Paused = "pg:pg_ph:1";

    private static async Task<string?> StateAsync(NodeProcess node, string id) =>
        (await node.PartitionsAsync()).FirstOrDefault(p => p.EntityId == id)?.State;

    /// <summary>pause|resume through the CLI; a failure names the step and the CLI's error.</summary>
    private static async Task CliAsync(string url, string id, bool pause)
    {
        using var client = new AdminClient(url, token: null);
        var error = new StringWriter();
        var code = await AdminCli.RunAsync(VerbContext.Create(client, TextWriter.Null, error),
            v => AdminCli.PartitionPauseAsync(v, id, pause, json: false));
        Assert.True(code == AdminCli.Ok, $"{(pause ? "pause" : "resume")} {id} at {url}: exit code {code}: {error}");
    }

    [Fact]
    public async Task Pause_survives_a_sigterm_hand_off_to_a_node_that_joined_later_and_resume_delivers_in_order()
    {
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name);
        await using var standIn = await CentrifugoStandIn.StartNewAsync();
        var consumer = new PgConsumerConfig("pg_ph", pg.Instance.UrlDsn, name, Partitions);
        var configA = new NodeConfig { ApiUrl = standIn.Url, ApiKey = standIn.ApiKey, Consumers = [consumer] };
        configA = configA with { SeedNodes = [configA.Address] };
        var configB = new NodeConfig
            { ApiUrl = standIn.Url, ApiKey = standIn.ApiKey, Consumers = [consumer], SeedNodes = [configA.Address] };
        var all = Enumerable.Range(0, Partitions).Select(p => $"pg:pg_ph:{p}").ToHashSet(StringComparer.Ordinal);
        var produced = new long[Partitions];

        async Task ProduceAsync(int rows)
        {
            for (var i = 0; i < rows; i++)
            {
                await table.InsertAsync(Enumerable.Range(0, Partitions).Select(p => OutboxRows.Publish($"ph:{p}", produced[p]++, p)));
            }
        }

        await using var a = configA.Run("node-a");
        NodeProcess? b = null;
        try
        {
            await a.WaitUntilReadyAsync(TimeSpan.FromSeconds(60));
            await a.WaitUntilAsync(async () => (await a.PartitionsAsync()).Select(p => p.EntityId).ToHashSet().SetEquals(all),
                "node-a hosts every partition", TimeSpan.FromSeconds(60));

            await CliAsync(a.AdminUrl, Paused, pause: true);
            await a.WaitUntilAsync(async () => await StateAsync(a, Paused) == "paused", "paused on node-a", TimeSpan.FromSeconds(30));
            await ProduceAsync(20);
            await a.WaitUntilAsync(
                () => Task.FromResult(standIn.ReceivedFor("ph:0").Count >= 20 && standIn.ReceivedFor("ph:3").Count >= 20),
                "others delivered", TimeSpan.FromSeconds(30));
            Assert.Equal(20, await table.CountAsync(1));

            // A node joins (it never saw the pause being made), then node-a is SIGTERMed: every partition moves to node-b.
            b = configB.Run("node-b");
            await b.WaitUntilReadyAsync(TimeSpan.FromSeconds(60));
            a.Terminate();
            var exit = await a.WaitForExitAsync(TimeSpan.FromSeconds(30));
            Assert.True(exit == 0, $"node-a exited with {exit} after SIGTERM (0 expected){a.Tail(60)}");
            await b.WaitUntilAsync(async () => (await b.PartitionsAsync()).Select(p => p.EntityId).ToHashSet().SetEquals(all),
                "node-b took over every partition", TimeSpan.FromSeconds(60));
            await b.WaitUntilAsync(async () => await StateAsync(b, Paused) == "paused", "still paused on node-b", TimeSpan.FromSeconds(30));

            await ProduceAsync(20);
            await b.WaitUntilAsync(
                () => Task.FromResult(standIn.ReceivedFor("ph:0").Count >= 40 && standIn.ReceivedFor("ph:2").Count >= 40),
                "others delivered on node-b", TimeSpan.FromSeconds(30));
            Assert.Equal(40, await table.CountAsync(1));
            Assert.Empty(standIn.ReceivedFor("ph:1"));

            await CliAsync(b.AdminUrl, Paused, pause: false);
            await b.WaitUntilAsync(async () => await table.CountAsync() == 0, "outbox drained after resume", TimeSpan.FromSeconds(60));
        }
        catch
        {
            output.WriteLine(a.Tail(200));
            output.WriteLine(b?.Tail(200) ?? "");
            throw;
        }
        finally
        {
            if (b is not null)
            {
                await b.DisposeAsync();
            }
        }

        for (var p = 0; p < Partitions; p++)
        {
            OutboxRows.AssertDeliveredInOrder(standIn, $"ph:{p}", produced[p]);
        }
    }
}
