using System.Diagnostics;
using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.Processes;
using Centrifugo.Actors.Testing.StandIn;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.Processes;

/// <summary>Two node processes on loopback share the partitions, hand them off on SIGTERM and take them back on rejoin.</summary>
[Collection(NodeProcessCollection.Name)]
public sealed class TwoNodeTests(PostgresFixture pg, ITestOutputHelper output) : IClassFixture<PostgresFixture>, IAsyncLifetime
{
    private const int Partitions = 8;
    // Least-shard allocation moves one shard per 10 s rebalance round: a few rounds, plus process start-up.
    private static readonly TimeSpan RebalanceBound = TimeSpan.FromSeconds(90);
    private CentrifugoStandIn _standIn = null!;

    public async Task InitializeAsync() => _standIn = await CentrifugoStandIn.StartNewAsync();

    public async Task DisposeAsync() => await _standIn.DisposeAsync();

    private static async Task<HashSet<string>> HostedAsync(NodeProcess node) =>
        (await node.PartitionsAsync()).Select(p => p.EntityId).ToHashSet(StringComparer.Ordinal);

    [Fact]
    public async Task Partitions_are_shared_handed_off_on_sigterm_and_rebalanced_on_rejoin_while_every_row_arrives_in_order()
    {
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name);
        var consumer = new PgConsumerConfig("pg_two", pg.Instance.UrlDsn, name, Partitions);
        var configA = new NodeConfig { ApiUrl = _standIn.Url, ApiKey = _standIn.ApiKey, Consumers = [consumer] };
        configA = configA with { SeedNodes = [configA.Address] };
        var configB = new NodeConfig
            { ApiUrl = _standIn.Url, ApiKey = _standIn.ApiKey, Consumers = [consumer], SeedNodes = [configA.Address] };
        var all = Enumerable.Range(0, Partitions).Select(p => $"pg:pg_two:{p}").ToHashSet(StringComparer.Ordinal);

        // Rows arrive during the whole scenario, one producer per channel order (ids grow with seq per partition).
        using var stopProducing = new CancellationTokenSource();
        var produced = new long[Partitions];
        var producer = Task.Run(async () =>
        {
            // Paced (~200 rows/s) so two cores keep up with four processes' worth of work.
            using var pace = new PeriodicTimer(TimeSpan.FromMilliseconds(5));
            try
            {
                for (var i = 0; i < 200_000 && await pace.WaitForNextTickAsync(stopProducing.Token); i++)
                {
                    var partition = i % Partitions;
                    await table.InsertOneAsync(OutboxRows.Publish($"two:{partition}", produced[partition], partition));
                    produced[partition]++;
                }
            }
            catch (OperationCanceledException) when (stopProducing.IsCancellationRequested)
            {
                // scenario over
            }
        });

        await using var a = configA.Run("node-a");
        NodeProcess? b = null, b2 = null;
        try
        {
            await a.WaitUntilReadyAsync(TimeSpan.FromSeconds(60));
            await a.WaitUntilAsync(async () => (await HostedAsync(a)).SetEquals(all),
                "node-a hosts every partition", TimeSpan.FromSeconds(60));

            b = configB.Run("node-b");
            await b.WaitUntilReadyAsync(TimeSpan.FromSeconds(60));
            await b.WaitUntilAsync(async () =>
            {
                var (onA, onB) = (await HostedAsync(a), await HostedAsync(b));
                return onA.Count > 0 && onB.Count > 0 && onA.Union(onB).ToHashSet().SetEquals(all);
            }, "both nodes host partitions", RebalanceBound);
            output.WriteLine($"shared: a={string.Join(",", await HostedAsync(a))} b={string.Join(",", await HostedAsync(b))}");

            // The cluster-wide view from node A includes node B's partitions (asked through the region, over remoting).
            var clusterView = await a.GetAsync("/status/partitions?scope=cluster");
            Assert.True(clusterView is { Status: System.Net.HttpStatusCode.OK }, "cluster-wide status answers");
            using (var view = System.Text.Json.JsonDocument.Parse(clusterView!.Value.Body))
            {
                var entries = view.RootElement.EnumerateArray().ToArray();
                Assert.Equal(all.Order(StringComparer.Ordinal), entries.Select(e => e.GetProperty("entity_id").GetString()!));
                Assert.DoesNotContain(entries, e => e.GetProperty("state").GetString() == "unreachable");
                Assert.Equal(2, entries.Select(e => e.GetProperty("node").GetString()).Distinct().Count());
            }

            var clock = Stopwatch.StartNew();
            b.Terminate();
            var exitCode = await b.WaitForExitAsync(TimeSpan.FromSeconds(30));
            Assert.True(exitCode == 0, $"node-b exit code {exitCode}.{b.Tail()}");
            Assert.Contains(b.Lines, l => l.Contains("Leaving", StringComparison.Ordinal));
            await a.WaitUntilAsync(async () => (await HostedAsync(a)).SetEquals(all),
                "node-a took over every partition", TimeSpan.FromSeconds(30));
            output.WriteLine($"hand-off complete {clock.ElapsedMilliseconds} ms after SIGTERM");
            await a.WaitUntilAsync(async () => (await a.ClusterMembersAsync()).Count == 1,
                "node-b removed from the membership", TimeSpan.FromSeconds(30));

            b2 = configB.Run("node-b-again");
            await b2.WaitUntilReadyAsync(TimeSpan.FromSeconds(60));
            await b2.WaitUntilAsync(async () => (await HostedAsync(b2)).Count > 0, "partitions rebalanced back to node-b", RebalanceBound);
            output.WriteLine($"rebalanced: a={string.Join(",", await HostedAsync(a))} b={string.Join(",", await HostedAsync(b2))}");

            await stopProducing.CancelAsync();
            await producer;
            await a.WaitUntilAsync(async () => await table.CountAsync() == 0, "outbox drained", TimeSpan.FromSeconds(60));
        }
        catch
        {
            output.WriteLine(a.Tail(200));
            output.WriteLine(b?.Tail(200) ?? "");
            output.WriteLine(b2?.Tail(200) ?? "");
            throw;
        }
        finally
        {
            await stopProducing.CancelAsync();
            await producer;
            if (b is not null)
            {
                await b.DisposeAsync();
            }

            if (b2 is not null)
            {
                await b2.DisposeAsync();
            }
        }

        output.WriteLine($"produced {produced.Sum()} rows, received {_standIn.ReceivedCount} commands");
        Assert.True(produced.Min() > 20, "the producer ran throughout");
        for (var p = 0; p < Partitions; p++)
        {
            OutboxRows.AssertDeliveredInOrder(_standIn, $"two:{p}", produced[p]);
        }

        Assert.Empty(await table.ReadDeadLettersAsync());
    }
}
