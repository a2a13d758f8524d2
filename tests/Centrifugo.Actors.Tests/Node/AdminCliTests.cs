using System.Net;
using System.Text.Json;
using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Host;
using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.Processes;
using Centrifugo.Actors.Testing.StandIn;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.Node;

/// <summary>The pbm-style verbs against a real node (in-process, real HTTP, real cluster and sharding).</summary>
public sealed class AdminCliTests(PostgresFixture pg, ITestOutputHelper output) : IClassFixture<PostgresFixture>
{
    private static async Task<(int Code, string Out, string Err)> Run(Func<VerbContext, Task<int>> verb, string url, string? token = null)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        using var client = new AdminClient(url, token);
        var code = await AdminCli.RunAsync(VerbContext.Create(client, output, error), verb);
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task Cluster_shards_and_partitions_verbs_print_tables_and_json_with_health_exit_codes()
    {
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name);
        await table.InsertAsync([new OutboxInsert("publish", """{"channel":"cli:a","data":1}""", 1)]);
        await using var standIn = await CentrifugoStandIn.StartNewAsync();
        var options = TestNode.Options(standIn.Url, standIn.ApiKey, TestNode.Postgres("pg_cli", pg.Instance.UrlDsn, name, partitions: 3));
        // As the StatefulSet sets it (CENTRIFUGO_ACTORS_CLUSTER_POD_NAME from the pod's name).
        await using var node = await TestNode.StartAsync(options with { Cluster = options.Cluster with { PodName = "actors-0" } }, output);
        await node.WaitForPartitionsAsync(3);
        await Poll.UntilAsync(async () => await table.CountAsync() == 0, "outbox drained", TimeSpan.FromSeconds(30));
        // The pass that emptied a partition reports "delivering"; its next (empty) read reports "idle".
        using (var http = new HttpClient())
        {
            await Poll.UntilAsync(async () =>
            {
                using var state = JsonDocument.Parse(await http.GetStringAsync(new Uri(node.AdminUrl + "/status/partitions")));
                return state.RootElement.EnumerateArray().All(p => p.GetProperty("state").GetString() == "idle");
            }, "every partition idle", TimeSpan.FromSeconds(30));
        }

        var show = await Run(v => AdminCli.ClusterShowAsync(v, json: false), node.AdminUrl);
        Assert.Equal(AdminCli.Ok, show.Code);
        Assert.Matches(@"cluster: 1 member\(s\), 0 unreachable, leader akka\.tcp://centrifugo-actors@127\.0\.0\.1:\d+", show.Out);
        // pod; leader, oldest, this node
        Assert.Matches(
            @"akka\.tcp://centrifugo-actors@127\.0\.0\.1:\d+\s+actors-0\s+Up\s+\S*partitions-pg-pg_cli\S*\s+yes\s+\*\s+\*\s+\*", show.Out);
        var showJson = await Run(v => AdminCli.ClusterShowAsync(v, json: true), node.AdminUrl);
        using (var doc = JsonDocument.Parse(showJson.Out))
        {
            Assert.Equal("Up", doc.RootElement.GetProperty("members")[0].GetProperty("status").GetString());
            Assert.Equal(doc.RootElement.GetProperty("self").GetString(), doc.RootElement.GetProperty("oldest").GetString());
            Assert.Equal("actors-0", doc.RootElement.GetProperty("members")[0].GetProperty("pod").GetString());
        }

        var shards = await Run(v => AdminCli.ShardsAsync(v, json: false), node.AdminUrl);
        Assert.Equal(AdminCli.Ok, shards.Code);
        Assert.Contains("3 partition(s) running", shards.Out, StringComparison.Ordinal);
        var shardsJson = await Run(v => AdminCli.ShardsAsync(v, json: true), node.AdminUrl);
        using (var doc = JsonDocument.Parse(shardsJson.Out))
        {
            var n = Assert.Single(doc.RootElement.GetProperty("nodes").EnumerateArray());
            Assert.Equal(3, n.GetProperty("partitions").GetInt32());
        }

        var list = await Run(v => AdminCli.PartitionsListAsync(v, "pg_cli", null, json: false), node.AdminUrl);
        Assert.Equal(AdminCli.Ok, list.Code);
        Assert.Contains("partitions: 3", list.Out, StringComparison.Ordinal);
        Assert.Matches(@"pg:pg_cli:1\s+akka\.tcp://\S+\s+idle\s+-\s+0\s+1\s+0\s+0", list.Out);
        // --watch: the second refresh shows a rate (nothing moves now: 0).
        var rates = new DeliveryRates();
        await Run(v => AdminCli.PartitionsListAsync(v, "pg_cli", null, json: false, rates), node.AdminUrl);
        var second = await Run(v => AdminCli.PartitionsListAsync(v, "pg_cli", null, json: false, rates), node.AdminUrl);
        Assert.Matches(@"pg:pg_cli:1\s+akka\.tcp://\S+\s+idle\s+-\s+0\s+1\s+0\s+0\s+0\s", second.Out);
        Assert.Contains("RATE/S", second.Out, StringComparison.Ordinal);
        var none = await Run(v => AdminCli.PartitionsListAsync(v, "other", null, json: true), node.AdminUrl);
        Assert.Equal("[]", none.Out.Trim());
        var idle = await Run(v => AdminCli.PartitionsListAsync(v, null, "IDLE", json: true), node.AdminUrl);
        using (var doc = JsonDocument.Parse(idle.Out))
        {
            Assert.Equal(3, doc.RootElement.GetArrayLength());
        }

        var one = await Run(v => AdminCli.PartitionsShowAsync(v, "pg:pg_cli:1", json: true), node.AdminUrl);
        using (var doc = JsonDocument.Parse(one.Out))
        {
            Assert.Equal(1, doc.RootElement.GetProperty("delivered").GetInt64());
        }
        var table1 = await Run(v => AdminCli.PartitionsShowAsync(v, "pg:pg_cli:1", json: false), node.AdminUrl);
        Assert.Matches(@"state\s+idle", table1.Out);
        var missing = await Run(v => AdminCli.PartitionsShowAsync(v, "pg:pg_cli:9", json: false), node.AdminUrl);
        Assert.Equal(AdminCli.Usage, missing.Code);
    }

    [Fact]
    public async Task A_stalled_partition_makes_partitions_list_exit_3()
    {
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name);
        await table.InsertAsync([new OutboxInsert("publish", """{"channel":"cli:s","data":1}""", 0)]);
        await using var standIn = await CentrifugoStandIn.StartNewAsync();
        // A wrong API key: Centrifugo answers 401, the partition stalls (configuration fault).
        await using var node = await TestNode.StartAsync(TestNode.Options(standIn.Url, "wrong-key",
            TestNode.Postgres("pg_stall", pg.Instance.UrlDsn, name, partitions: 1)), output);
        await Poll.UntilAsync(() => Task.FromResult(node.Board.Stalled().Count == 1), "partition stalled", TimeSpan.FromSeconds(30));

        var list = await Run(v => AdminCli.PartitionsListAsync(v, null, "stalled", json: false), node.AdminUrl);
        Assert.Equal(AdminCli.Unhealthy, list.Code);
        Assert.Contains("(1 stalled or unreachable)", list.Out, StringComparison.Ordinal);
        Assert.Contains("401", list.Out, StringComparison.Ordinal);
        // `status` exits as the other verbs do.
        var status = await Run(AdminCli.StatusAsync, node.AdminUrl);
        Assert.Equal(AdminCli.Unhealthy, status.Code);
        Assert.Contains("stalled", status.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Shards_exits_3_when_no_region_answered_in_time()
    {
        // What /status/shards returns when Akka's GetClusterShardingStats times out: an empty map, not "no shards".
        var url = $"http://127.0.0.1:{NodeProcess.FreeTcpPort()}/";
        using var listener = new HttpListener();
        listener.Prefixes.Add(url);
        listener.Start();
        var serve = Task.Run(async () =>
        {
            var ctx = await listener.GetContextAsync();
            ctx.Response.ContentType = "application/json";
            await ctx.Response.OutputStream.WriteAsync("""{"nodes":[]}"""u8.ToArray());
            ctx.Response.Close();
        });
        var result = await Run(v => AdminCli.ShardsAsync(v, false), url.TrimEnd('/'));
        await serve;
        Assert.Equal(AdminCli.Unhealthy, result.Code);
        Assert.DoesNotContain("0 on 0 node(s)", result.Out, StringComparison.Ordinal);
        Assert.Contains("no shard region answered", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unreadable_endpoint_exits_1_with_a_clear_message()
    {
        var url = $"http://127.0.0.1:{NodeProcess.FreeTcpPort()}";
        foreach (var verb in new Func<VerbContext, Task<int>>[]
                 {
                     v => AdminCli.ClusterShowAsync(v, false),
                     v => AdminCli.ShardsAsync(v, false),
                     v => AdminCli.PartitionsListAsync(v, null, null, false),
                 })
        {
            var result = await Run(verb, url);
            Assert.Equal(AdminCli.Unavailable, result.Code);
            Assert.Contains($"cannot read the admin endpoint at {url}", result.Err, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Leave_is_post_only_needs_the_token_and_is_logged_with_who_and_what()
    {
        await using var standIn = await CentrifugoStandIn.StartNewAsync();
        const string token = "test-admin-token-0123";
        var options = TestNode.Options(standIn.Url, standIn.ApiKey)
            with { Admin = new AdminOptions { Address = "127.0.0.1:0", Token = token } };
        await using var node = await TestNode.StartAsync(options, output);
        await Poll.UntilAsync(
            async () => (await Run(v => AdminCli.ClusterShowAsync(v, false), node.AdminUrl)).Out.Contains(" Up ", StringComparison.Ordinal),
            "member Up", TimeSpan.FromSeconds(30));

        using var http = new HttpClient();
        Assert.Equal(HttpStatusCode.MethodNotAllowed, (await http.GetAsync(new Uri(node.AdminUrl + "/cluster/leave"))).StatusCode);

        // The token from a file (a mounted Secret); a wrong one exits 4, an unreadable file is a usage error.
        var tokenFile = Path.GetTempFileName();
        await File.WriteAllTextAsync(tokenFile, "wrong-token-0000000000\n");
        var refused = await Run(v => AdminCli.ClusterActionAsync(v, "leave", null, true), node.AdminUrl,
            token: AdminClient.Token(tokenFile));
        Assert.Equal(AdminCli.Unauthorized, refused.Code);
        await File.WriteAllTextAsync(tokenFile, token + "\n");
        Assert.Equal(token, AdminClient.Token(tokenFile));
        File.Delete(tokenFile);
        Assert.Contains(tokenFile, Assert.Throws<AdminUsageException>(() => AdminClient.Token(tokenFile)).Message,
            StringComparison.Ordinal);
        var none = await Run(v => AdminCli.DownUnreachableAsync(v, false), node.AdminUrl, token);
        Assert.Equal(AdminCli.Ok, none.Code);
        Assert.Contains("no unreachable member", none.Out, StringComparison.Ordinal);
        Assert.Contains(node.Logs.Lines, l => l.Contains("[1202]", StringComparison.Ordinal));

        var notConfirmed = await Run(v => AdminCli.ClusterActionAsync(v with { Input = new StringReader("n\n") },
                "down", "akka.tcp://centrifugo-actors@127.0.0.1:1", false),
            node.AdminUrl, token);
        Assert.Equal(AdminCli.Usage, notConfirmed.Code);
        var notMember = await Run(v => AdminCli.ClusterActionAsync(v, "down", "akka.tcp://centrifugo-actors@127.0.0.1:1", true),
            node.AdminUrl, token);
        Assert.Equal(AdminCli.Usage, notMember.Code);

        var leave = await Run(v => AdminCli.ClusterActionAsync(v with { Input = new StringReader("y\n") }, "leave", null, false),
            node.AdminUrl, token);
        Assert.Equal(AdminCli.Ok, leave.Code);
        Assert.Contains(": accepted", leave.Out, StringComparison.Ordinal);
        var logged = Assert.Single(node.Logs.Lines, l => l.Contains("[1201]", StringComparison.Ordinal));
        Assert.Matches(
            @"Admin action leave on akka\.tcp://centrifugo-actors@127\.0\.0\.1:\d+ by 127\.0\.0\.1:\d+ user=\S+ at \d{4}-", logged);
        Assert.DoesNotContain(token, string.Join('\n', node.Logs.Lines), StringComparison.Ordinal);
        var cluster = Akka.Cluster.Cluster.Get(node.Services.GetService(typeof(Akka.Actor.ActorSystem)) as Akka.Actor.ActorSystem);
        await Poll.UntilAsync(() => Task.FromResult(cluster.SelfMember.Status is not Akka.Cluster.MemberStatus.Up),
            "member left", TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task Every_route_of_the_contract_is_mapped_and_exactly_the_actions_and_dead_letters_need_the_token()
    {
        await using var standIn = await CentrifugoStandIn.StartNewAsync();
        await using var node = await TestNode.StartAsync(TestNode.Options(standIn.Url, standIn.ApiKey), output);
        var routes = node.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Select(e => (Path: "/" + e.RoutePattern.RawText!.TrimStart('/'),
                Method: e.Metadata.GetRequiredMetadata<IHttpMethodMetadata>().HttpMethods.Single(),
                Audit: e.Metadata.GetMetadata<AuditName>()?.Name))
            .ToArray();
        var paths = typeof(AdminPaths).GetFields().Select(f => (string)f.GetRawConstantValue()!).ToArray();
        Assert.Equal(paths.Order(), routes.Select(r => r.Path).Order());
        Assert.Equal([AdminPaths.Down, AdminPaths.Leave, AdminPaths.DeadLetters, AdminPaths.Replay,
                AdminPaths.LogLevel, AdminPaths.Pause, AdminPaths.Resume],
            routes.Where(r => r.Audit is not null).Select(r => r.Path).Order(StringComparer.Ordinal));

        // Without admin.token a request that is not the CLI's (no user header) is refused exactly on the guarded routes.
        using var http = new HttpClient();
        foreach (var route in routes)
        {
            using var response = await http.SendAsync(
                new HttpRequestMessage(new HttpMethod(route.Method), new Uri(node.AdminUrl + route.Path)));
            Assert.True((response.StatusCode == HttpStatusCode.Forbidden) == (route.Audit is not null),
                $"{route.Method} {route.Path}: {response.StatusCode}");
        }
        Assert.Equal(routes.Count(r => r.Audit is not null), node.Logs.Lines.Count(l => l.Contains("[1202]", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Without_a_token_a_browser_cannot_post_or_rebind_but_the_cli_can()
    {
        var name = PostgresFixture.UniqueName("outbox");
        await OutboxTestTable.CreateAsync(pg.DataSource, name);
        await using var standIn = await CentrifugoStandIn.StartNewAsync();
        await using var node = await TestNode.StartAsync(TestNode.Options(standIn.Url, standIn.ApiKey,
            TestNode.Postgres("pg_csrf", pg.Instance.UrlDsn, name, partitions: 2)), output);
        await node.WaitForPartitionsAsync(2);
        var pause = new Uri(node.AdminUrl + "/partitions/pause?id=pg:pg_csrf:0");
        using var http = new HttpClient();

        // A page's form or fetch in no-cors mode: a simple cross-origin POST (no custom header, a browser Origin).
        using (var simple = new HttpRequestMessage(HttpMethod.Post, pause) { Content = new StringContent("x") })
        {
            simple.Headers.Add("Origin", "http://evil.example");
            Assert.Equal(HttpStatusCode.Forbidden, (await http.SendAsync(simple)).StatusCode);
        }
        // DNS rebinding: the page's own name resolved to 127.0.0.1, so it may add headers, but Host names it.
        using (var rebound = new HttpRequestMessage(HttpMethod.Post, pause))
        {
            rebound.Headers.Add(AdminActions.UserHeader, "page");
            rebound.Headers.Host = "evil.example";
            Assert.Equal(HttpStatusCode.Forbidden, (await http.SendAsync(rebound)).StatusCode);
        }
        using (var read = new HttpRequestMessage(HttpMethod.Get, new Uri(node.AdminUrl + "/dead-letters")))
        {
            read.Headers.Add(AdminActions.UserHeader, "page");
            read.Headers.Host = "evil.example:80";
            Assert.Equal(HttpStatusCode.Forbidden, (await http.SendAsync(read)).StatusCode);
        }
        using (var pausedSet = JsonDocument.Parse(await http.GetStringAsync(new Uri(node.AdminUrl + "/status/paused"))))
        {
            Assert.Equal(0, pausedSet.RootElement.GetProperty("paused").GetArrayLength());
        }
        Assert.Equal(2,
            node.Logs.Lines.Count(l => l.Contains("[1202]", StringComparison.Ordinal) && l.Contains("pause", StringComparison.Ordinal)));

        // The CLI, unchanged, on the same node.
        var accepted = await Run(v => AdminCli.PartitionPauseAsync(v, "pg:pg_csrf:0", true, json: false), node.AdminUrl);
        Assert.Equal(AdminCli.Ok, accepted.Code);
        await Poll.UntilAsync(async () =>
        {
            using var pausedSet = JsonDocument.Parse(await http.GetStringAsync(new Uri(node.AdminUrl + "/status/paused")));
            return pausedSet.RootElement.GetProperty("paused").EnumerateArray().Select(e => e.GetString()).SequenceEqual(["pg:pg_csrf:0"]);
        }, "pg:pg_csrf:0 paused", TimeSpan.FromSeconds(30));
        var listed = await Run(v => AdminCli.DeadLettersListAsync(v, "pg_csrf", 10, json: true), node.AdminUrl);
        Assert.Equal(AdminCli.Ok, listed.Code);
    }
}
