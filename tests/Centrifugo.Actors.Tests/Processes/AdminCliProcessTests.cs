using System.Text.Json.Nodes;
using Centrifugo.Actors.Testing.Processes;
using Centrifugo.Actors.Testing.StandIn;

namespace Centrifugo.Actors.Tests.Processes;

/// <summary>The CLI as an executable against a node process, and the admin token rule at start-up.</summary>
[Collection(NodeProcessCollection.Name)]
public sealed class AdminCliProcessTests
{
    [Fact]
    public async Task Cluster_show_as_a_process_prints_json_and_exits_0_then_1_when_the_node_is_gone()
    {
        await using var standIn = await CentrifugoStandIn.StartNewAsync();
        var config = new NodeConfig { ApiUrl = standIn.Url, ApiKey = standIn.ApiKey };
        await using var node = config.Run("node");
        await node.WaitUntilReadyAsync(TimeSpan.FromSeconds(60));

        await using (var cli = NodeProcess.StartWithArguments(["cluster", "show", "--json", "--admin", node.AdminUrl], "cli"))
        {
            Assert.Equal(0, await cli.WaitForExitAsync(TimeSpan.FromSeconds(30)));
            var json = JsonNode.Parse(cli.Stdout)!;
            Assert.Equal("Up", (string?)json["members"]![0]!["status"]);
        }

        node.KillHard();
        await using var after = NodeProcess.StartWithArguments(["partitions", "list", "--admin", node.AdminUrl], "cli");
        Assert.Equal(1, await after.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("cannot read the admin endpoint", after.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_node_bound_beyond_loopback_without_a_token_refuses_to_start()
    {
        var config = new NodeConfig { ApiUrl = "http://127.0.0.1:1/api", ApiKey = "k", AdminHost = "0.0.0.0" };
        var result = await NodeProcess.RunToExitAsync("run", config.ToJson(), TimeSpan.FromSeconds(40));
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("in admin: token is required when address binds beyond loopback", result.Output, StringComparison.Ordinal);

        var hostName = config.ToJsonObject();
        hostName["admin"]!["address"] = "myhost:9110";
        var check = await NodeProcess.RunToExitAsync("check-config", hostName.ToJsonString(), TimeSpan.FromSeconds(40));
        Assert.Equal(1, check.ExitCode);
        Assert.Contains("the host must be an IP address", check.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Log_level_changes_what_a_running_node_logs_without_a_restart()
    {
        await using var standIn = await CentrifugoStandIn.StartNewAsync();
        var config = new NodeConfig { ApiUrl = standIn.Url, ApiKey = standIn.ApiKey };
        await using var node = config.Run("node");
        await node.WaitUntilReadyAsync(TimeSpan.FromSeconds(60));

        // Each change is logged (1201, information) before it takes effect: seen at info, not at warn or error.
        async Task SetAsync(string level, int expectedExit = 0)
        {
            await using var cli = NodeProcess.StartWithArguments(["log-level", level, "--admin", node.AdminUrl], "cli");
            Assert.Equal(expectedExit, await cli.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        }
        bool Logged(string level) => node.Lines.Any(l => l.Contains("[1201]", StringComparison.Ordinal)
            && l.Contains($"log level {level} ", StringComparison.Ordinal));

        await SetAsync("warn");
        await node.WaitUntilAsync(() => Task.FromResult(Logged("warn")), "the change to warn logged at info", TimeSpan.FromSeconds(10));
        await SetAsync("error");
        await SetAsync("info");
        await SetAsync("debug");
        await node.WaitUntilAsync(() => Task.FromResult(Logged("debug")), "the change to debug logged at info", TimeSpan.FromSeconds(10));
        Assert.False(Logged("error"));
        Assert.False(Logged("info"));
        await SetAsync("verbose", expectedExit: 2);
    }
}
