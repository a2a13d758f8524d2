using System.Collections.Concurrent;
using System.Diagnostics;
using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.Processes;
using Centrifugo.Actors.Testing.StandIn;
using Centrifugo.Actors.Tests.Postgres;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.Processes;

[Collection(NodeProcessCollection.Name)]
public sealed class FailoverProbe(PostgresFixture pg, ITestOutputHelper output) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task Probe()
    {
        const int Partitions = 12;
        var clock = Stopwatch.StartNew();
        var arrivals = new ConcurrentDictionary<int, ConcurrentQueue<long>>();
        await using var standIn = await CentrifugoStandIn.StartNewAsync(new StandInOptions
        {
            RecordCommands = false,
            OnAccepted = c =>
            {
                var ch = c.Channels.FirstOrDefault() ?? "";
                if (ch.StartsWith("p:", StringComparison.Ordinal))
                {
                    arrivals.GetOrAdd(int.Parse(ch[2..]), _ => new()).Enqueue(clock.ElapsedMilliseconds);
                }
            },
        });
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name);
        var consumer = new PgConsumerConfig("pg_probe", pg.Instance.UrlDsn, name, Partitions);
        var a = new NodeConfig { ApiUrl = standIn.Url, ApiKey = standIn.ApiKey, Consumers = [consumer] };
        a = a with { SeedNodes = [a.Address] };
        var b = new NodeConfig { ApiUrl = standIn.Url, ApiKey = standIn.ApiKey, Consumers = [consumer], SeedNodes = [a.Address] };
        var c = new NodeConfig { ApiUrl = standIn.Url, ApiKey = standIn.ApiKey, Consumers = [consumer], SeedNodes = [a.Address] };
        using var stop = new CancellationTokenSource();
        var producer = Task.Run(async () =>
        {
            using var pace = new PeriodicTimer(TimeSpan.FromMilliseconds(40));
            var seq = 0L;
            try
            {
                while (await pace.WaitForNextTickAsync(stop.Token))
                {
                    await table.InsertAsync(Enumerable.Range(0, Partitions).Select(p => OutboxRows.Publish($"p:{p}", seq, p)));
                    seq++;
                }
            }
            catch (OperationCanceledException) { }
        });
        string Worst(long since) => string.Join(",", Enumerable.Range(0, Partitions).Select(p =>
        {
            var ts = arrivals[p].Where(t => t > since - 200).Order().ToArray();
            return ts.Zip(ts.Skip(1), (x, y) => y - x).DefaultIfEmpty(0).Max();
        }).OrderDescending().Take(5));
        async Task<string> Spread(params NodeProcess[] nodes)
        {
            var counts = new List<int>();
            foreach (var n in nodes) counts.Add((await n.PartitionsAsync()).Count);
            return string.Join("/", counts);
        }
        async Task<bool> Even(params NodeProcess[] nodes)
        {
            var counts = new List<int>();
            foreach (var n in nodes) counts.Add((await n.PartitionsAsync()).Count);
            return counts.Sum() == Partitions && counts.Max() - counts.Min() <= 1;
        }
        await using var na = a.Run("a");
        await na.WaitUntilReadyAsync(TimeSpan.FromSeconds(60));
        await using var nb = b.Run("b");
        await using var nc = c.Run("c");
        await nb.WaitUntilReadyAsync(TimeSpan.FromSeconds(60));
        await nc.WaitUntilReadyAsync(TimeSpan.FromSeconds(60));
        var joined = clock.ElapsedMilliseconds;
        await na.WaitUntilAsync(() => Even(na, nb, nc), "even", TimeSpan.FromSeconds(90));
        output.WriteLine($"even after {clock.ElapsedMilliseconds - joined} ms: {await Spread(na, nb, nc)}");
        await Task.Delay(3000);
        var kill = clock.ElapsedMilliseconds;
        output.WriteLine($"kill at {DateTime.Now:HH:mm:ss.fff}");
        na.KillHard();
        await nb.WaitUntilAsync(async () => (await nb.PartitionsAsync()).Count + (await nc.PartitionsAsync()).Count == Partitions, "all hosted after kill", TimeSpan.FromSeconds(90));
        output.WriteLine($"kill -9 oldest: all hosted after {clock.ElapsedMilliseconds - kill} ms; spread {await Spread(nb, nc)}");
        await Task.Delay(3000);
        output.WriteLine($"kill -9 oldest: worst gap {Worst(kill)} ms");
        await nb.WaitUntilAsync(() => Even(nb, nc), "even after kill", TimeSpan.FromSeconds(60));
        await Task.Delay(3000);
        var term = clock.ElapsedMilliseconds;
        // per-partition gap around SIGTERM: longest interval between consecutive arrivals after term
        nb.Terminate();
        await nc.WaitUntilAsync(async () => (await nc.PartitionsAsync()).Count == Partitions, "c hosts all", TimeSpan.FromSeconds(60));
        await Task.Delay(3000);
        var worst = Worst(term);
        output.WriteLine($"SIGTERM: worst inter-arrival gap {worst} ms; exit {await nb.WaitForExitAsync(TimeSpan.FromSeconds(30))}");
        foreach (var n in new[] { nb, nc })
        {
            foreach (var line in n.Lines.Where(l => l.Contains("nreachable", StringComparison.Ordinal) || l.Contains("SBR", StringComparison.Ordinal)
                || l.Contains("removing", StringComparison.OrdinalIgnoreCase) || l.Contains("Down", StringComparison.Ordinal) || l.Contains("oldest", StringComparison.OrdinalIgnoreCase)
                || l.Contains("Singleton", StringComparison.Ordinal) || l.Contains("coordinator", StringComparison.OrdinalIgnoreCase)))
            {
                output.WriteLine(n.Name + ": " + (line.Length > 400 ? line[..400] : line));
            }
        }
        await stop.CancelAsync();
        await producer;
    }
}
