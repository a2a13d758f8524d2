using System.Text.Json.Nodes;
using Centrifugo.Actors.Testing.Processes;
using Centrifugo.Actors.Testing.StandIn;

namespace Centrifugo.Actors.Tests.Processes;

/// <summary>
/// cluster.discovery on loopback with the config method (the Kubernetes method differs only in how the peers are
/// looked up: see KubernetesDiscoveryTests): two real node processes without seed nodes form one cluster.
/// </summary>
[Collection(NodeProcessCollection.Name)]
public sealed class ClusterBootstrapTests : IAsyncLifetime
{
    private CentrifugoStandIn _standIn = null!;

    public async Task InitializeAsync() => _standIn = await CentrifugoStandIn.StartNewAsync();

    public async Task DisposeAsync() => await _standIn.DisposeAsync();

    [Fact]
    public async Task Two_nodes_without_seed_nodes_form_one_cluster_from_the_discovered_peers()
    {
        int[] ports = [NodeProcess.FreeTcpPort(), NodeProcess.FreeTcpPort()];
        var points = new JsonArray(ports.Select(p => (JsonNode?)JsonValue.Create($"127.0.0.1:{p}")).ToArray());
        NodeConfig Config(int port) => new()
        {
            ApiUrl = _standIn.Url,
            ApiKey = _standIn.ApiKey,
            ClusterPort = port,
            ClusterExtra = new Dictionary<string, JsonNode>
            {
                ["discovery"] = "config",
                ["bootstrap"] = new JsonObject
                {
                    ["required_contact_points"] = 2,
                    ["interval"] = "200ms",
                    ["contact_points"] = points.DeepClone(),
                },
            },
        };

        // The higher address starts first: it must wait for the lowest one instead of forming a cluster alone.
        await using var b = Config(ports.Max()).Run("node-high");
        await b.WaitForOutputAsync("Cluster discovery: joining seed nodes", TimeSpan.FromSeconds(60));
        await using var a = Config(ports.Min()).Run("node-low");
        foreach (var node in new[] { a, b })
        {
            await node.WaitUntilAsync(async () =>
            {
                var members = await node.ClusterMembersAsync();
                return members.Count == 2 && members.Values.All(s => s == "Up");
            }, "two Up members", TimeSpan.FromSeconds(90));
        }

        Assert.Contains($"(self akka.tcp://centrifugo-actors@127.0.0.1:{ports.Min()}, may form a new cluster: True)", a.Output,
            StringComparison.Ordinal);
        Assert.Contains($"(self akka.tcp://centrifugo-actors@127.0.0.1:{ports.Max()}, may form a new cluster: False)", b.Output,
            StringComparison.Ordinal);
    }
}
