using System.Text.Json;
using Centrifugo.Actors.Host;
using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.StandIn;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.Node;

public sealed class StatusCommandTests(PostgresFixture pg, ITestOutputHelper testOutput) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task Status_lists_the_cluster_and_every_partition_with_its_counters()
    {
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name);
        await table.InsertAsync(
        [
            new OutboxInsert("publish", """{"channel":"st:a","data":1}""", 2),
            new OutboxInsert("presence", """{"channel":"st:a"}""", 2),
        ]);
        await using var standIn = await CentrifugoStandIn.StartNewAsync();
        await using var node = await TestNode.StartAsync(TestNode.Options(standIn.Url, standIn.ApiKey,
            TestNode.Postgres("pg_status", pg.Instance.UrlDsn, name, partitions: 4)), testOutput);
        await Poll.UntilAsync(async () => await table.CountAsync() == 0, "outbox drained", TimeSpan.FromSeconds(30));

        using var http = new HttpClient();
        // The pass that emptied a partition reports "delivering"; its next (empty) read reports "idle".
        await Poll.UntilAsync(async () =>
        {
            using var state = JsonDocument.Parse(await http.GetStringAsync(new Uri(node.AdminUrl + "/status/partitions?scope=cluster")));
            return state.RootElement.EnumerateArray().All(p => p.GetProperty("state").GetString() == "idle");
        }, "every partition idle", TimeSpan.FromSeconds(30));
        using var json = JsonDocument.Parse(await http.GetStringAsync(new Uri(node.AdminUrl + "/status/partitions?scope=cluster")));
        var partitions = json.RootElement.EnumerateArray().ToArray();
        Assert.Equal(["pg:pg_status:0", "pg:pg_status:1", "pg:pg_status:2", "pg:pg_status:3"],
            partitions.Select(p => p.GetProperty("entity_id").GetString()));
        var p2 = partitions[2];
        Assert.Equal(1, p2.GetProperty("delivered").GetInt64());
        Assert.Equal(1, p2.GetProperty("dead_lettered").GetInt64());

        // `cluster show` and `partitions list` on one screen, with their exit codes.
        var (code, output, _) = await StatusAsync(node.AdminUrl);
        Assert.Equal(AdminCli.Ok, code);
        Assert.Matches(@"cluster: 1 member\(s\), 0 unreachable", output);
        Assert.Matches(@"akka\.tcp://\S+\s+-\s+Up\s", output);
        Assert.Contains("partitions: 4", output, StringComparison.Ordinal);
        Assert.Matches(@"pg:pg_status:2\s+akka\.tcp://\S+\s+idle\s+-\s+0\s+1\s+1\s+0\s", output);
    }

    [Fact]
    public async Task Status_fails_clearly_when_the_admin_endpoint_cannot_be_read()
    {
        var port = Testing.Processes.NodeProcess.FreeTcpPort();
        var (code, _, error) = await StatusAsync($"http://127.0.0.1:{port}");
        Assert.Equal(AdminCli.Unavailable, code);
        Assert.Contains($"cannot read the admin endpoint at http://127.0.0.1:{port}", error, StringComparison.Ordinal);
    }

    private static async Task<(int Code, string Out, string Err)> StatusAsync(string url)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        using var client = new AdminClient(url, token: null);
        var code = await AdminCli.RunAsync(VerbContext.Create(client, output, error), AdminCli.StatusAsync);
        return (code, output.ToString(), error.ToString());
    }
}
