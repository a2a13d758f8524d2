using System.Diagnostics;
using System.Globalization;
using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.Processes;
using Centrifugo.Actors.Testing.StandIn;
using Npgsql;
using static Centrifugo.Actors.Benchmarks.Measure;

namespace Centrifugo.Actors.Benchmarks;

/// <summary>
/// `idle`: one node owning many empty partitions, run as the real executable in its own process
/// (<c>centrifugo-actors run</c>), so its CPU is the node's alone: the stand-in and this harness live elsewhere.
/// Over a window taken once every partition runs and the node's CPU has settled (tiered JIT of a fresh process):
/// CPU of the node process, CPU of the PostgreSQL server, and transactions/s from pg_stat_database (one partition
/// pass = one transaction of BEGIN + lock + SELECT + COMMIT).
/// </summary>
internal static class IdleBench
{
    private static readonly TimeSpan SettleWindow = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan MaxSettle = TimeSpan.FromSeconds(120);

    public static async Task RunAsync(BenchEnvironment env, BenchOptions options, CancellationToken cancellationToken)
    {
        Console.WriteLine();
        Console.WriteLine($"## idle cost: {options.IdlePartitions} empty partitions on one node process, window {options.IdleSeconds} s");
        Console.WriteLine();
        Console.WriteLine("| configuration | node process CPU % of a core | PostgreSQL CPU % of a core | transactions/s " +
            "| Centrifugo's loop would do (passes/s) | settled after |");
        Console.WriteLine("|---|---|---|---|---|---|");
        await using var standIn = await CentrifugoStandIn.StartNewAsync(new StandInOptions { RecordCommands = false }, cancellationToken);
        await MeasureAsync(
            env, standIn, options, TimeSpan.FromMilliseconds(300), null, "poll 300 ms (Centrifugo default), no NOTIFY", cancellationToken);
        await MeasureAsync(env, standIn, options, TimeSpan.FromSeconds(60), "bench_idle", "NOTIFY + poll 60 s", cancellationToken);
    }

    private static async Task MeasureAsync(
        BenchEnvironment env, CentrifugoStandIn standIn, BenchOptions options, TimeSpan poll, string? channel, string label,
        CancellationToken cancellationToken)
    {
        var table = await OutboxTestTable.CreateAsync(
            env.DataSource, env.NextTableName("idle"), notifyChannel: channel, cancellationToken: cancellationToken);
        try
        {
            var config = new NodeConfig
            {
                ApiUrl = standIn.Url,
                ApiKey = standIn.ApiKey,
                NumberOfShards = 100, // the product's default
                Consumers =
                [
                    new PgConsumerConfig("bench", env.Postgres.GetKeyValueDsn(env.Database), table.Name, options.IdlePartitions,
                        ((long)poll.TotalMilliseconds).ToString(CultureInfo.InvariantCulture) + "ms", channel),
                ],
            };
            await using var node = config.Run("idle-node");
            await node.WaitUntilReadyAsync(TimeSpan.FromMinutes(1));
            // The window opens once every partition made its first pass (the start-up wave is not idle cost).
            await node.WaitUntilAsync(
                async () => (await node.PartitionsAsync()).Count(p => p.State is "idle" or "delivering") == options.IdlePartitions,
                $"{options.IdlePartitions} partitions running", TimeSpan.FromMinutes(2));
            // PostgreSQL 15 backends flush their statistics when idle, but may hold them up to 10 s: wait that out
            // so the start-up wave does not land in pg_stat_database during the window.
            await Task.Delay(TimeSpan.FromSeconds(12), cancellationToken);
            var settled = await SettleAsync(node.Pid, cancellationToken);

            var commits0 = await TransactionsAsync(env, cancellationToken);
            var cpu0 = ProcessCpu(node.Pid);
            var pg0 = PostgresCpu(env.Postgres.DataDirectory);
            var clock = Stopwatch.StartNew();
            await Task.Delay(TimeSpan.FromSeconds(options.IdleSeconds), cancellationToken);
            var elapsed = clock.Elapsed.TotalSeconds;
            var cpu = (ProcessCpu(node.Pid) - cpu0).TotalSeconds / elapsed * 100;
            var pg = (PostgresCpu(env.Postgres.DataDirectory) - pg0).TotalSeconds / elapsed * 100;
            // Statistics reach pg_stat_database up to ~1 s late (PG 15 flushes pending counters at most once a second).
            await Task.Delay(TimeSpan.FromSeconds(1.5), cancellationToken);
            var commits = (await TransactionsAsync(env, cancellationToken) - commits0) / elapsed;
            Console.WriteLine($"| {label} | {F(cpu, "0.0")} | {F(pg, "0.0")} | {F(commits)} " +
                $"| {F(options.IdlePartitions / poll.TotalSeconds)} | {F(settled.TotalSeconds)} s |");
            node.Terminate();
            await node.WaitForExitAsync(TimeSpan.FromSeconds(60));
        }
        finally
        {
            await env.DropTableAsync(table, CancellationToken.None);
        }
    }

    /// <summary>
    /// A fresh process keeps re-compiling its periodic paths for a while (tier-0 → instrumented → tier-1); a
    /// long-running node has paid that once. Waits until two consecutive 5 s CPU samples of the node differ by less
    /// than 0.5 percentage points (at most 2 min) and returns how long that took.
    /// </summary>
    private static async Task<TimeSpan> SettleAsync(int pid, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        double? previous = null;
        while (clock.Elapsed < MaxSettle)
        {
            var cpu0 = ProcessCpu(pid);
            await Task.Delay(SettleWindow, cancellationToken);
            var percent = (ProcessCpu(pid) - cpu0).TotalSeconds / SettleWindow.TotalSeconds * 100;
            if (previous is { } last && Math.Abs(percent - last) < 0.5)
            {
                break;
            }

            previous = percent;
        }

        return clock.Elapsed;
    }

    private static async Task<long> TransactionsAsync(BenchEnvironment env, CancellationToken cancellationToken)
    {
        await using var command = env.DataSource.CreateCommand(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = env.Database });
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }
}
