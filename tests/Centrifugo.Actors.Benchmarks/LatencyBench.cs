using System.Buffers.Text;
using System.Diagnostics;
using System.Text;
using Centrifugo.Actors.Testing.Load;
using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.StandIn;
using Npgsql;
using static Centrifugo.Actors.Benchmarks.Measure;

namespace Centrifugo.Actors.Benchmarks;

/// <summary>
/// `latency`: the outbox table has Centrifugo's NOTIFY trigger and the node listens. Producers insert at a fixed
/// rate, each row its own transaction; latency = the stand-in accepting the command − the INSERT's commit
/// returning to the producer (also reported from the INSERT being sent). One process, one monotonic clock.
/// </summary>
internal static class LatencyBench
{
    private const int MaxInFlight = 128;
    private const int Partitions = 8;

    public static async Task RunAsync(BenchEnvironment env, BenchOptions options, CancellationToken cancellationToken)
    {
        var total = options.LatencyRate * options.LatencySeconds;
        var warmup = Math.Min(options.LatencyRate, total / 10); // the first second: pools and JIT still warming
        Console.WriteLine();
        Console.WriteLine($"## NOTIFY latency: {options.LatencyRate} inserts/s for {options.LatencySeconds} s " +
            $"({total} rows, first {warmup} not counted), {Partitions} partitions, " +
            $"open-loop producer (≤ {MaxInFlight} transactions in flight, synchronous_commit off in its sessions)");

        var received = new long[total];
        await using var standIn = await CentrifugoStandIn.StartNewAsync(new StandInOptions
        {
            RecordCommands = false,
            OnAccepted = command =>
            {
                var now = Stopwatch.GetTimestamp();
                var seq = SequenceOf(command.RequestJson);
                if (seq >= 0 && seq < total)
                {
                    Interlocked.CompareExchange(ref received[seq], now, 0); // first delivery counts
                }
            },
        }, cancellationToken);

        // The producer's sessions commit asynchronously (the server keeps its stock settings): with a WAL flush per
        // producer commit this 2-core machine tops out near 700 commits/s, below the rate to measure. NOTIFY is
        // still sent at commit, so the latency measured is unchanged in kind.
        await using var producer = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(env.ConnectionString)
        {
            MaxPoolSize = MaxInFlight + 8,
            Options = "-c synchronous_commit=off",
        }.ConnectionString);
        var table = await OutboxTestTable.CreateAsync(
            producer, env.NextTableName("latency"), notifyChannel: "bench_latency", cancellationToken: cancellationToken);
        try
        {
            await using var node = await BenchEnvironment.StartNodeAsync(
                standIn.Url, standIn.ApiKey, env.Consumer(table.Name, Partitions, 100, channel: "bench_latency"), cancellationToken);
            // Open loop: a slow fsync must not lower the offered rate.
            var load = await OpenLoopLoad.RunAsync(table, total, options.LatencyRate, Partitions, MaxInFlight, cancellationToken);
            var (sent, committed, produced) = (load.Sent, load.Committed, load.Produced);
            await standIn.WaitForReceivedAsync(total, TimeSpan.FromSeconds(60));

            var fromCommit = new double[total - warmup];
            var fromSend = new double[total - warmup];
            var commitCost = new double[total - warmup];
            for (var i = warmup; i < total; i++)
            {
                fromCommit[i - warmup] = Milliseconds(received[i] - committed[i]);
                fromSend[i - warmup] = Milliseconds(received[i] - sent[i]);
                commitCost[i - warmup] = Milliseconds(committed[i] - sent[i]);
            }

            Array.Sort(fromCommit);
            Array.Sort(fromSend);
            Array.Sort(commitCost);
            Console.WriteLine($"producers achieved {F(total / produced.TotalSeconds)} inserts/s; delivered before the commit returned: " +
                $"{fromCommit.Count(x => x < 0)} rows");
            Console.WriteLine();
            Console.WriteLine("| measured | p50 ms | p99 ms | max ms |");
            Console.WriteLine("|---|---|---|---|");
            Console.WriteLine($"| commit returned → delivered (target p50 ≤ 3, p99 ≤ 15) | {F(Percentile(fromCommit, 50), "0.00")} " +
                $"| {F(Percentile(fromCommit, 99), "0.00")} | {F(fromCommit[^1], "0.00")} |");
            Console.WriteLine($"| INSERT sent → delivered | {F(Percentile(fromSend, 50), "0.00")} " +
                $"| {F(Percentile(fromSend, 99), "0.00")} | {F(fromSend[^1], "0.00")} |");
            Console.WriteLine($"| INSERT sent → commit returned (producer side) | {F(Percentile(commitCost, 50), "0.00")} " +
                $"| {F(Percentile(commitCost, 99), "0.00")} | {F(commitCost[^1], "0.00")} |");
        }
        finally
        {
            await env.DropTableAsync(table, CancellationToken.None);
        }
    }

    private static int SequenceOf(string requestJson)
    {
        var at = requestJson.IndexOf("\"seq\":", StringComparison.Ordinal);
        return at >= 0 && Utf8Parser.TryParse(Encoding.ASCII.GetBytes(requestJson[(at + 6)..].TrimStart()), out int seq, out _) ? seq : -1;
    }
}
