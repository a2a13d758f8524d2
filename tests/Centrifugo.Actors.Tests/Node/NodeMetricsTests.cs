using System.Text.RegularExpressions;
using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.StandIn;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.Node;

/// <summary>/metrics of a real node: delivery histograms, API errors by method and code, hosted partitions, cluster members.</summary>
public sealed class NodeMetricsTests(PostgresFixture pg, ITestOutputHelper output) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task Metrics_show_delivery_latency_batches_api_errors_hosted_partitions_and_members()
    {
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name);
        await table.InsertAsync(
        [
            new OutboxInsert("publish", """{"channel":"ok:a","data":1}""", 0),
            new OutboxInsert("publish", """{"channel":"ok:a","data":2}""", 0),
            // Unknown namespace: Centrifugo error 102, a permanent rejection (dead-lettered).
            new OutboxInsert("publish", """{"channel":"nope:a","data":3}""", 1),
        ]);
        await using var standIn = await CentrifugoStandIn.StartNewAsync(
            new StandInOptions { KnownNamespaces = new HashSet<string> { "ok" } });
        await using var node = await TestNode.StartAsync(TestNode.Options(standIn.Url, standIn.ApiKey,
            TestNode.Postgres("pg_metrics", pg.Instance.UrlDsn, name, partitions: 2)), output);
        await Poll.UntilAsync(async () => await table.CountAsync() == 0, "outbox drained", TimeSpan.FromSeconds(30));

        using var http = new HttpClient();
        var text = "";
        await Poll.UntilAsync(async () =>
        {
            text = await http.GetStringAsync(new Uri(node.AdminUrl + "/metrics"));
            return text.Contains("centrifugo_actors_partitions_hosted{consumer_name=\"pg_metrics\"} 2", StringComparison.Ordinal);
        }, "two partitions hosted", TimeSpan.FromSeconds(30));

        double Value(string series)
        {
            var match = Regex.Match(text, "^" + Regex.Escape(series) + @" (\S+)$", RegexOptions.Multiline);
            Assert.True(match.Success, $"series {series} in /metrics");
            return double.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        }

        Assert.Equal(1, Value("centrifugo_actors_api_command_errors_total{consumer_name=\"pg_metrics\",method=\"publish\",error=\"102\"}"));
        Assert.True(Value("centrifugo_actors_delivery_duration_seconds_count{consumer_name=\"pg_metrics\"}") >= 2);
        Assert.True(Value("centrifugo_actors_delivery_duration_seconds_sum{consumer_name=\"pg_metrics\"}") > 0);
        Assert.Equal(3, Value("centrifugo_actors_batch_size_sum{consumer_name=\"pg_metrics\"}"));
        Assert.Equal(0, Value("centrifugo_actors_delivery_retries_total{consumer_name=\"pg_metrics\"}"));
        Assert.Equal(1, Value("centrifugo_actors_dead_lettered_total{consumer_name=\"pg_metrics\"}"));
        Assert.Equal(3, Value("centrifugo_consumers_messages_processed_total{consumer_name=\"pg_metrics\"}"));
        // Partitions by state: every hosted one in exactly one state; and the build.
        var states = new[] { "starting", "idle", "delivering", "retrying", "stalled", "stopping", "paused" };
        Assert.Equal(2, states.Sum(st => Value($"centrifugo_actors_partitions{{consumer_name=\"pg_metrics\",state=\"{st}\"}}")));
        Assert.Equal(0, Value("centrifugo_actors_partitions{consumer_name=\"pg_metrics\",state=\"stalled\"}"));
        Assert.Matches("(?m)^centrifugo_actors_build_info\\{version=\"[^\"]+\"\\} 1$", text);
        Assert.Equal(1, Value("centrifugo_actors_cluster_members{status=\"Up\"}"));
        Assert.Equal(0, Value("centrifugo_actors_cluster_members{status=\"Leaving\"}"));
        Assert.Equal(0, Value("centrifugo_actors_cluster_unreachable_members"));

        // The Grafana dashboard (docs/grafana-dashboard.json) only queries series this node exports.
        var root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "Centrifugo.Actors.sln")))
        {
            root = Path.GetDirectoryName(root.TrimEnd(Path.DirectorySeparatorChar))!;
        }
        using var dashboard = System.Text.Json.JsonDocument.Parse(
            await File.ReadAllTextAsync(Path.Combine(root, "docs", "grafana-dashboard.json")));
        var names = dashboard.RootElement.GetProperty("panels").EnumerateArray()
            .SelectMany(p => p.GetProperty("targets").EnumerateArray())
            .SelectMany(t => Regex.Matches(t.GetProperty("expr").GetString()!, @"centrifugo_[a-z_]+").Select(m => m.Value))
            .Distinct().ToArray();
        Assert.True(names.Length >= 10);
        // Kafka lag has series only while a Kafka partition is hosted; it is declared by NodeGauges.
        Assert.All(names.Where(n => n != "centrifugo_actors_kafka_lag"), n => Assert.Matches("(?m)^" + n + @"[{ ]", text));
    }
}
