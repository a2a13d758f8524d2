using System.Diagnostics;
using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.StandIn;
using static Centrifugo.Actors.Benchmarks.Measure;

namespace Centrifugo.Actors.Benchmarks;

/// <summary>
/// `memory`: Centrifugo stalled (every stand-in request hangs until the client's 5 s timeout) while the whole
/// backlog waits; resident memory of this process (node + stand-in + benchmark) is sampled every second.
/// </summary>
internal static class MemoryBench
{
    private const int Limit = 1000;

    public static async Task RunAsync(BenchEnvironment env, BenchOptions options, CancellationToken cancellationToken)
    {
        Console.WriteLine();
        Console.WriteLine("## memory with Centrifugo stalled: " +
            $"{options.Rows} rows waiting, {options.Partitions} partitions, limit {Limit}, sampled {options.MemorySeconds} s");
        await using var standIn = await CentrifugoStandIn.StartNewAsync(new StandInOptions { RecordCommands = false }, cancellationToken);
        var table = await OutboxTestTable.CreateAsync(env.DataSource, env.NextTableName("memory"), cancellationToken: cancellationToken);
        try
        {
            await using var node = await BenchEnvironment.StartNodeAsync(
                standIn.Url, standIn.ApiKey, env.Consumer(table.Name, options.Partitions, Limit), cancellationToken);
            standIn.Latency = TimeSpan.FromHours(1);
            var idle = RssMb();
            await table.InsertAsync(BenchEnvironment.PublishRows(options.Rows, options.Partitions), cancellationToken);
            var afterFill = RssMb();
            var samples = new List<double>();
            var clock = Stopwatch.StartNew();
            for (var s = 1; s <= options.MemorySeconds; s++)
            {
                var due = TimeSpan.FromSeconds(s) - clock.Elapsed;
                if (due > TimeSpan.Zero)
                {
                    await Task.Delay(due, cancellationToken);
                }

                samples.Add(RssMb());
            }

            var pending = await table.CountAsync(cancellationToken: cancellationToken);
            var gcHeap = GC.GetGCMemoryInfo().HeapSizeBytes / 1024.0 / 1024.0;
            Console.WriteLine($"RSS MB: node idle before the backlog {F(idle)}, after the {options.Rows}-row COPY {F(afterFill)}; " +
                $"while stalled min {F(samples.Min())}, max {F(samples.Max())}, last {F(samples[^1])} (target < 300, flat)");
            Console.WriteLine($"samples: {string.Join(' ', samples.Select(x => F(x)))}");
            Console.WriteLine($"GC heap {F(gcHeap)} MB; rows still waiting {pending}; stand-in accepted {standIn.ReceivedCount}");
            standIn.Latency = TimeSpan.Zero;
        }
        finally
        {
            await env.DropTableAsync(table, CancellationToken.None);
        }
    }
}
