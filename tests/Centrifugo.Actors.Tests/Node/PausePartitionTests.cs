using System.Net;
using System.Text.Json;
using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Host;
using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.StandIn;
using Centrifugo.Actors.Tests.Processes;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.Node;

/// <summary><c>partitions pause|resume</c> against a real in-process node (real HTTP, sharding, Distributed Data, PostgreSQL).</summary>
public sealed class PausePartitionTests(PostgresFixture pg, ITestOutputHelper output) : IClassFixture<PostgresFixture>
{
    private const string Token = "pause-admin-token-0123";

    private static async Task<(int Code, string Out, string Err)> Run(Func<VerbContext, Task<int>> verb, string url, string? token = Token)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        using var client = new AdminClient(url, token);
        var code = await AdminCli.RunAsync(VerbContext.Create(client, output, error), verb);
        return (code, output.ToString(), error.ToString());
    }

    private static async Task<string?> StateAsync(TestNode node, string id)
    {
        using var http = new HttpClient();
        using var doc = JsonDocument.Parse(await http.GetStringAsync(new Uri(node.AdminUrl + "/status/partitions")));
        return doc.RootElement.EnumerateArray().Where(p => p.GetProperty("entity_id").GetString() == id)
            .Select(p => p.GetProperty("state").GetString()).FirstOrDefault();
    }

    [Fact]
    public async Task A_paused_partition_delivers_nothing_while_the_others_flow_and_resumes_in_order()
    {
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name);
        await using var standIn = await CentrifugoStandIn.StartNewAsync();
        var options = TestNode.Options(standIn.Url, standIn.ApiKey, TestNode.Postgres("pg_pause", pg.Instance.UrlDsn, name, partitions: 3))
            with { Admin = new AdminOptions { Address = "127.0.0.1:0", Token = Token } };
        await using var node = await TestNode.StartAsync(options, output);
        await node.WaitForPartitionsAsync(3);

        // POST only, token required, refusal logged.
        using (var http = new HttpClient())
        {
            Assert.Equal(HttpStatusCode.MethodNotAllowed,
                (await http.GetAsync(new Uri(node.AdminUrl + "/partitions/pause?id=pg:pg_pause:1"))).StatusCode);
        }
        var refused = await Run(v => AdminCli.PartitionPauseAsync(v, "pg:pg_pause:1", true, json: false), node.AdminUrl,
            token: "wrong-token-0000000000");
        Assert.Equal(AdminCli.Unauthorized, refused.Code);
        Assert.Contains("HTTP 401", refused.Err, StringComparison.Ordinal);
        Assert.Contains(node.Logs.Lines, l =>
            l.Contains("[1202]", StringComparison.Ordinal) && l.Contains("pause", StringComparison.Ordinal));
        var unknown = await Run(v => AdminCli.PartitionPauseAsync(v, "pg:pg_pause:7", true, json: false), node.AdminUrl);
        Assert.Equal(AdminCli.Usage, unknown.Code);

        var paused = await Run(v => AdminCli.PartitionPauseAsync(v, "pg:pg_pause:1", true, json: false), node.AdminUrl);
        Assert.Equal(AdminCli.Ok, paused.Code);
        Assert.Contains("pause pg:pg_pause:1: in force on akka.tcp://", paused.Out, StringComparison.Ordinal);
        Assert.Contains(node.Logs.Lines, l => l.Contains("[1201]", StringComparison.Ordinal)
            && l.Contains("Admin action pause on pg:pg_pause:1 by 127.0.0.1:", StringComparison.Ordinal));

        // In force when the verb returns: rows inserted right after it stay in the outbox.
        const int PerPartition = 30;
        for (var seq = 0; seq < PerPartition; seq++)
        {
            await table.InsertAsync(new[] { 0, 1, 2 }.Select(p => OutboxRows.Publish($"pause:{p}", seq, p)));
        }
        await Poll.UntilAsync(
            () => Task.FromResult(
                standIn.ReceivedFor("pause:0").Count >= PerPartition && standIn.ReceivedFor("pause:2").Count >= PerPartition),
            "partitions 0 and 2 delivered", TimeSpan.FromSeconds(30));
        // Delivered is not yet deleted: a short batch's DELETE + COMMIT may wait up to 25 ms for the next wake-up.
        await Poll.UntilAsync(async () => await table.CountAsync(0) == 0 && await table.CountAsync(2) == 0,
            "partitions 0 and 2 completed", TimeSpan.FromSeconds(30));
        Assert.Equal(PerPartition, await table.CountAsync(1));
        Assert.Empty(standIn.ReceivedFor("pause:1"));

        // Position (next outbox id) and backlog of the paused partition, in the table, the JSON and the metric (read at
        // most OutboxBacklog.Interval ago: wait for a read made after the inserts).
        await Poll.UntilAsync(async () =>
        {
            var fresh = await Run(v => AdminCli.PartitionsListAsync(v, "pg_pause", null, json: true), node.AdminUrl);
            using var doc = JsonDocument.Parse(fresh.Out);
            long? Backlog(string id) => doc.RootElement.EnumerateArray().Where(p => p.GetProperty("entity_id").GetString() == id)
                .Select(p => p.TryGetProperty("backlog", out var rows) ? rows.GetInt64() : (long?)null).FirstOrDefault();
            return Backlog("pg:pg_pause:1") == PerPartition && Backlog("pg:pg_pause:0") == 0;
        }, "the backlog read after the inserts", TimeSpan.FromSeconds(30));
        var list = await Run(v => AdminCli.PartitionsListAsync(v, "pg_pause", "paused", json: false), node.AdminUrl);
        Assert.Equal(AdminCli.Ok, list.Code);
        Assert.Matches(@"pg:pg_pause:1\s+akka\.tcp://\S+\s+paused", list.Out);
        var listJson = await Run(v => AdminCli.PartitionsListAsync(v, "pg_pause", null, json: true), node.AdminUrl);
        var head = (await table.IdsAsync()).Min();
        using (var doc = JsonDocument.Parse(listJson.Out))
        {
            var p1 = doc.RootElement.EnumerateArray().Single(p => p.GetProperty("entity_id").GetString() == "pg:pg_pause:1");
            Assert.Equal(PerPartition, p1.GetProperty("backlog").GetInt64());
            Assert.Equal(head, p1.GetProperty("position").GetInt64());
            var p0 = doc.RootElement.EnumerateArray().Single(p => p.GetProperty("entity_id").GetString() == "pg:pg_pause:0");
            Assert.Equal(0, p0.GetProperty("backlog").GetInt64());
        }
        Assert.Matches($@"pg:pg_pause:1\s+akka\.tcp://\S+\s+paused\s+{head}\s+{PerPartition}\s+", list.Out);
        using (var http = new HttpClient())
        {
            var metrics = await http.GetStringAsync(new Uri(node.AdminUrl + "/metrics"));
            Assert.Contains($"centrifugo_actors_outbox_backlog{{consumer_name=\"pg_pause\",partition=\"1\"}} {PerPartition}", metrics,
                StringComparison.Ordinal);
            Assert.Contains("centrifugo_actors_outbox_backlog{consumer_name=\"pg_pause\",partition=\"0\"} 0", metrics,
                StringComparison.Ordinal);
            Assert.Contains("centrifugo_actors_partitions{consumer_name=\"pg_pause\",state=\"paused\"} 1", metrics,
                StringComparison.Ordinal);
            using var pausedSet = JsonDocument.Parse(await http.GetStringAsync(new Uri(node.AdminUrl + "/status/paused")));
            Assert.Equal(
                ["pg:pg_pause:1"], pausedSet.RootElement.GetProperty("paused").EnumerateArray().Select(e => e.GetString()!).ToArray());
        }

        var show = await Run(v => AdminCli.PartitionsShowAsync(v, "pg:pg_pause:1", json: true), node.AdminUrl);
        using (var doc = JsonDocument.Parse(show.Out))
        {
            Assert.Equal("paused", doc.RootElement.GetProperty("state").GetString());
        }

        var resumed = await Run(v => AdminCli.PartitionPauseAsync(v, "pg:pg_pause:1", false, json: true), node.AdminUrl);
        Assert.Equal(AdminCli.Ok, resumed.Code);
        using (var doc = JsonDocument.Parse(resumed.Out))
        {
            Assert.True(doc.RootElement.GetProperty("in_force").GetBoolean());
            Assert.Equal("resume", doc.RootElement.GetProperty("action").GetString());
        }
        await Poll.UntilAsync(async () => await table.CountAsync() == 0, "outbox drained after resume", TimeSpan.FromSeconds(30));
        OutboxRows.AssertDeliveredInOrder(standIn, "pause:1", PerPartition);
        Assert.NotEqual("paused", await StateAsync(node, "pg:pg_pause:1"));
        Assert.DoesNotContain(Token, node.Logs.All, StringComparison.Ordinal);
    }
}
