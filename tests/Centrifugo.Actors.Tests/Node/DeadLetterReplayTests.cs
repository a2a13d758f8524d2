using System.Text.Json;
using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Host;
using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.StandIn;
using Centrifugo.Actors.Tests.Processes;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.Node;

/// <summary><c>dead-letters list|replay</c> against a real in-process node and real PostgreSQL.</summary>
public sealed class DeadLetterReplayTests(PostgresFixture pg, ITestOutputHelper output) : IClassFixture<PostgresFixture>
{
    private const string Token = "dead-letter-token-0123";

    private static async Task<(int Code, string Out, string Err)> Run(Func<VerbContext, Task<int>> verb, string url, string? token = Token)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        using var client = new AdminClient(url, token);
        var code = await AdminCli.RunAsync(VerbContext.Create(client, output, error), verb);
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task Replay_puts_exactly_the_dead_letters_back_in_their_partition_in_order_once()
    {
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name);
        await using var standIn = await CentrifugoStandIn.StartNewAsync();
        var options = TestNode.Options(standIn.Url, standIn.ApiKey, TestNode.Postgres("pg_dl", pg.Instance.UrlDsn, name, partitions: 2))
            with { Admin = new AdminOptions { Address = "127.0.0.1:0", Token = Token } };
        await using var node = await TestNode.StartAsync(options, output);
        await node.WaitForPartitionsAsync(2);

        // Centrifugo answers 102 (a permanent error) to the first 3 commands of partition 0, then to the first 2 of partition 1.
        standIn.FailNext(3, errorCode: 102);
        await table.InsertAsync(Enumerable.Range(0, 10).Select(i => OutboxRows.Publish("dl:0", i, 0)));
        await Poll.UntilAsync(async () => await table.CountAsync() == 0 && (await table.ReadDeadLettersAsync()).Count == 3,
            "partition 0 drained, 3 dead letters", TimeSpan.FromSeconds(30));
        standIn.FailNext(2, errorCode: 102);
        await table.InsertAsync(Enumerable.Range(0, 5).Select(i => OutboxRows.Publish("dl:1", i, 1)));
        await Poll.UntilAsync(async () => await table.CountAsync() == 0 && (await table.ReadDeadLettersAsync()).Count == 5,
            "partition 1 drained, 5 dead letters", TimeSpan.FromSeconds(30));
        Assert.Equal([3L, 4, 5, 6, 7, 8, 9], standIn.ReceivedFor("dl:0").Select(OutboxRows.Seq).ToArray());
        var dead = (await table.ReadDeadLettersAsync()).OrderBy(d => d.Id).ToArray();

        // list: token required; table and JSON.
        var refused = await Run(v => AdminCli.DeadLettersListAsync(v, "pg_dl", 50, json: false), node.AdminUrl, token: null);
        Assert.Equal(AdminCli.Unauthorized, refused.Code);
        var list = await Run(v => AdminCli.DeadLettersListAsync(v, "pg_dl", 4, json: false), node.AdminUrl);
        Assert.Equal(AdminCli.Ok, list.Code);
        Assert.Contains("pg_dl (postgresql", list.Out, StringComparison.Ordinal);
        Assert.Contains("5 dead letter(s), showing 4", list.Out, StringComparison.Ordinal);
        Assert.Matches($@"{dead[0].Id}\s+0\s+publish\s+", list.Out);
        var listJson = await Run(v => AdminCli.DeadLettersListAsync(v, null, 50, json: true), node.AdminUrl);
        using (var doc = JsonDocument.Parse(listJson.Out))
        {
            var consumer = Assert.Single(doc.RootElement.GetProperty("consumers").EnumerateArray());
            Assert.Equal(
                dead.Select(d => d.Id), consumer.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("id").GetInt64()));
            Assert.Contains("102", consumer.GetProperty("items")[0].GetProperty("reason").GetString(), StringComparison.Ordinal);
        }

        // replay: token required, POST only, exactly one of --ids/--all.
        var noToken = await Run(v => AdminCli.DeadLettersReplayAsync(v, "pg_dl", [dead[0].Id], false, false), node.AdminUrl,
            token: "wrong-token-0000000000");
        Assert.Equal(AdminCli.Unauthorized, noToken.Code);
        Assert.Contains(node.Logs.Lines, l =>
            l.Contains("[1202]", StringComparison.Ordinal) && l.Contains("dead-letters replay", StringComparison.Ordinal));
        using (var http = new HttpClient())
        {
            Assert.Equal(System.Net.HttpStatusCode.MethodNotAllowed,
                (await http.GetAsync(new Uri(node.AdminUrl + "/dead-letters/replay?consumer=pg_dl&all=true"))).StatusCode);
        }
        Assert.Equal(AdminCli.Usage, (await Run(v => AdminCli.DeadLettersReplayAsync(v, "pg_dl", [], false, false), node.AdminUrl)).Code);
        Assert.Equal(AdminCli.Usage, (await Run(v => AdminCli.DeadLettersReplayAsync(v, "nope", [], true, false), node.AdminUrl)).Code);

        // The first two of partition 0: back in the outbox, delivered after what partition 0 had, in order.
        var two = await Run(v => AdminCli.DeadLettersReplayAsync(v, "pg_dl", [dead[1].Id, dead[0].Id], false, true), node.AdminUrl);
        Assert.True(two.Code == AdminCli.Ok, two.Err);
        using (var doc = JsonDocument.Parse(two.Out))
        {
            Assert.Equal(2, doc.RootElement.GetProperty("replayed").GetInt32());
            Assert.Equal(2, doc.RootElement.GetProperty("new_ids_by_partition").GetProperty("0").GetArrayLength());
        }
        Assert.Contains(node.Logs.Lines, l => l.Contains("[1201]", StringComparison.Ordinal)
            && l.Contains($"Admin action dead-letters replay on pg_dl ids {dead[1].Id},{dead[0].Id} by", StringComparison.Ordinal));
        await Poll.UntilAsync(() => Task.FromResult(standIn.ReceivedFor("dl:0").Count == 9),
            "two replayed rows delivered", TimeSpan.FromSeconds(30));
        Assert.Equal([3L, 4, 5, 6, 7, 8, 9, 0, 1], standIn.ReceivedFor("dl:0").Select(OutboxRows.Seq).ToArray());

        // Idempotent per item: the same ids again move nothing.
        var again = await Run(v => AdminCli.DeadLettersReplayAsync(v, "pg_dl", [dead[0].Id, dead[1].Id], false, false), node.AdminUrl);
        Assert.Equal(AdminCli.Ok, again.Code);
        Assert.Contains("replayed 0 dead letter(s)", again.Out, StringComparison.Ordinal);
        Assert.Contains($"already replayed?): {dead[0].Id},{dead[1].Id}", again.Out, StringComparison.Ordinal);

        var all = await Run(v => AdminCli.DeadLettersReplayAsync(v, "pg_dl", [], true, false), node.AdminUrl);
        Assert.Equal(AdminCli.Ok, all.Code);
        Assert.Contains("replayed 3 dead letter(s) of pg_dl", all.Out, StringComparison.Ordinal);
        await Poll.UntilAsync(() => Task.FromResult(standIn.ReceivedFor("dl:0").Count == 10 && standIn.ReceivedFor("dl:1").Count == 5),
            "every replayed row delivered", TimeSpan.FromSeconds(30));
        Assert.Equal([3L, 4, 5, 6, 7, 8, 9, 0, 1, 2], standIn.ReceivedFor("dl:0").Select(OutboxRows.Seq).ToArray());
        Assert.Equal([2L, 3, 4, 0, 1], standIn.ReceivedFor("dl:1").Select(OutboxRows.Seq).ToArray());
        Assert.Empty(await table.ReadDeadLettersAsync());
        // Delivered is not yet deleted: a short batch's DELETE + COMMIT may wait up to 25 ms for the next wake-up.
        await Poll.UntilAsync(async () => await table.CountAsync() == 0, "replayed rows completed", TimeSpan.FromSeconds(30));
        Assert.DoesNotContain(Token, node.Logs.All, StringComparison.Ordinal);
    }
}
