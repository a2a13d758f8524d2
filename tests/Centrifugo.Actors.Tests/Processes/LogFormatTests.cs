using System.Text.Json;
using Centrifugo.Actors.Testing.Processes;
using Centrifugo.Actors.Testing.StandIn;

namespace Centrifugo.Actors.Tests.Processes;

/// <summary>log.format json|text and Akka's own lines through Microsoft.Extensions.Logging, on a real node process.</summary>
[Collection(NodeProcessCollection.Name)]
public sealed class LogFormatTests
{
    [Fact]
    public async Task Json_format_writes_one_object_per_line_and_akka_lines_carry_no_second_prefix()
    {
        await using var standIn = await CentrifugoStandIn.StartNewAsync();
        var config = new NodeConfig { ApiUrl = standIn.Url, ApiKey = standIn.ApiKey };
        await using var node = config.Run("node-json", new Dictionary<string, string?> { ["CENTRIFUGO_ACTORS_LOG_FORMAT"] = "json" });
        await node.WaitUntilReadyAsync(TimeSpan.FromSeconds(60));
        await node.WaitForOutputAsync("is JOINING itself", TimeSpan.FromSeconds(30));

        var lines = node.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var entries = lines.Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        Assert.All(entries, e =>
        {
            Assert.True(e.TryGetProperty("Timestamp", out _));
            Assert.True(e.TryGetProperty("LogLevel", out _));
            Assert.True(e.TryGetProperty("Category", out _));
        });
        var akka = entries.First(e => e.GetProperty("Message").GetString()!.Contains("is JOINING itself", StringComparison.Ordinal));
        Assert.StartsWith("Akka", akka.GetProperty("Category").GetString(), StringComparison.Ordinal);
        Assert.Equal(1900, akka.GetProperty("EventId").GetInt32());
        Assert.DoesNotContain("[INFO]", akka.GetProperty("Message").GetString(), StringComparison.Ordinal);
        Assert.True(akka.GetProperty("State").TryGetProperty("AkkaSource", out _));
    }

    [Fact]
    public async Task Text_format_akka_lines_have_one_timestamp_and_level()
    {
        await using var standIn = await CentrifugoStandIn.StartNewAsync();
        var config = new NodeConfig { ApiUrl = standIn.Url, ApiKey = standIn.ApiKey };
        await using var node = config.Run("node-text", new Dictionary<string, string?> { ["CENTRIFUGO_LOG_LEVEL"] = "warn" });
        await node.WaitUntilReadyAsync(TimeSpan.FromSeconds(60));
        // warn: Akka's info lines (remoting started, joining) are not shown at all.
        Assert.DoesNotContain(node.Lines, l => l.Contains("Remoting started", StringComparison.Ordinal));

        await using var info = config with { ClusterPort = NodeProcess.FreeTcpPort(), AdminPort = NodeProcess.FreeTcpPort() } is var c
            ? c.Run("node-info") : null!;
        await info.WaitForOutputAsync("Remoting started", TimeSpan.FromSeconds(60));
        var line = info.Lines.First(l => l.Contains("Remoting started", StringComparison.Ordinal));
        Assert.DoesNotContain("[INFO][", line, StringComparison.Ordinal);
        Assert.Matches(@"^\d\d:\d\d:\d\d\.\d{3} info: Akka\S*\[1900\] remoting \(akka://centrifugo-actors\): Remoting started", line);
    }
}
