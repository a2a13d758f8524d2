using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.Processes;
using Centrifugo.Actors.Testing.StandIn;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.Processes;

/// <summary>Wake-ups (NOTIFY) reach a partition through its own node, whatever happens to the other nodes.</summary>
[Collection(NodeProcessCollection.Name)]
public sealed class WakeUpTests(PostgresFixture pg, ITestOutputHelper output) : IClassFixture<PostgresFixture>, IAsyncLifetime
{
    private const int Partitions = 4;
    private CentrifugoStandIn _standIn = null!;

    public async Task InitializeAsync() => _standIn = await CentrifugoStandIn.StartNewAsync();

    public async Task DisposeAsync() => await _standIn.DisposeAsync();

    [Fact]
    public async Task A_notify_wakes_a_partition_of_a_surviving_node_while_the_killed_oldest_node_is_still_a_member()
    {
        // The census polls once an hour and downing waits 60 s: between the kill and the removal of the killed node
        // only NOTIFY can wake the survivor's partitions. Before wake sources ran on every node, they ran in the keeper
        // singleton on the oldest node, and nothing woke anybody until the singleton had moved.
        var name = PostgresFixture.UniqueName("outbox");
        var channel = PostgresFixture.UniqueName("wake");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name, notifyChannel: channel);
        var consumer = new PgConsumerConfig(
            "pg_wake", pg.Instance.UrlDsn, name, Partitions, PollInterval: "1h", NotificationChannel: channel);
        var settings = new Dictionary<string, string> { ["downing_stable_after"] = "60s" };
        // The PostgreSQL failure detector would down the killed node at once: off, the window is the one a frozen node opens.
        static void NoLiveness(System.Text.Json.Nodes.JsonObject json) => json["cluster"]!["postgres_liveness"] = false;
        var oldest = new NodeConfig
            { ApiUrl = _standIn.Url, ApiKey = _standIn.ApiKey, Consumers = [consumer], ClusterSettings = settings, Customize = NoLiveness };
        oldest = oldest with { SeedNodes = [oldest.Address] };
        var survivorConfig = new NodeConfig
        {
            ApiUrl = _standIn.Url, ApiKey = _standIn.ApiKey, Consumers = [consumer], ClusterSettings = settings,
            SeedNodes = [oldest.Address], Customize = NoLiveness,
        };

        await using var a = oldest.Run("oldest");
        await a.WaitUntilReadyAsync(TimeSpan.FromSeconds(60));
        await using var survivor = survivorConfig.Run("survivor");
        await survivor.WaitUntilReadyAsync(TimeSpan.FromSeconds(60));
        await survivor.WaitUntilAsync(async () => (await survivor.PartitionsAsync()).Count == Partitions / 2,
            "the survivor hosts its half of the partitions", TimeSpan.FromSeconds(60));
        var hosted = (await survivor.PartitionsAsync()).Select(p => int.Parse(p.EntityId.Split(':')[2])).ToArray();

        a.KillHard();
        await a.WaitForExitAsync(TimeSpan.FromSeconds(10));
        foreach (var partition in hosted)
        {
            await table.InsertOneAsync(OutboxRows.Publish($"wake:{partition}", 0, partition));
        }

        try
        {
            await Poll.UntilAsync(() => hosted.All(p => _standIn.ReceivedFor($"wake:{p}").Count == 1),
                "the survivor's partitions delivered the notified rows", TimeSpan.FromSeconds(30));
            var members = await survivor.ClusterMembersAsync();
            output.WriteLine($"members when delivered: {string.Join(", ", members.Select(m => $"{m.Key}={m.Value}"))}");
            Assert.True(members.ContainsKey(oldest.Address), "the killed node is still a member (not yet downed) when the rows arrived");
        }
        catch
        {
            output.WriteLine(survivor.Tail(80));
            throw;
        }
    }
}
