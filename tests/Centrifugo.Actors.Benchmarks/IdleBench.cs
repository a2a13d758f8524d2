using System.Diagnostics;
using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.StandIn;
using Npgsql;
using static Centrifugo.Actors.Benchmarks.Measure;

namespace Centrifugo.Actors.Benchmarks;

/// <summary>
/// `idle`: one node owning many empty partitions. Over a window after all are running: CPU of this process
/// (node + idle stand-in), CPU of the PostgreSQL server, and transactions/s from pg_stat_database (one partition
/// pass = one transaction of BEGIN + lock + SELECT + COMMIT).
/// </summary>
internal static class IdleBench
{
    public static async Task RunAsync(BenchEnvironment env, BenchOptions options, CancellationToken cancellationToken)
    {
        Console.WriteLine();
        Console.WriteLine($"## idle cost: {options.IdlePartitions} empty partitions on one node, window {options.IdleSeconds} s");
        Console.WriteLine();
        Console.WriteLine("| configuration | node process CPU % of a core | PostgreSQL CPU % of a core | transactions/s | Centrifugo's loop would do (passes/s) |");
        Console.WriteLine("|---|---|---|---|---|");
        await using var standIn = await CentrifugoStandIn.StartNewAsync(new StandInOptions { RecordCommands = false }, cancellationToken);
        await MeasureAsync(env, standIn, options, TimeSpan.FromMilliseconds(300), "", "poll 300 ms (Centrifugo default), no NOTIFY", cancellationToken);
        await MeasureAsync(env, standIn, options, TimeSpan.FromSeconds(60), "bench_idle", "NOTIFY + poll 60 s", cancellationToken);
    }

    private static async Task MeasureAsync(
        BenchEnvironment env, CentrifugoStandIn standIn, BenchOptions options, TimeSpan poll, string channel, string label, CancellationToken cancellationToken)
    {
        var table = await OutboxTestTable.CreateAsync(env.DataSource, env.NextTableName("idle"),
            notifyChannel: channel.Length > 0 ? channel : null, cancellationToken: cancellationToken);
        try
        {
            await using var node = await BenchEnvironment.StartNodeAsync(
                standIn.Url, standIn.ApiKey, env.Consumer(table.Name, options.IdlePartitions, 100, poll, channel), cancellationToken);
            // The window opens once every partition made its first pass (the start-up wave is not idle cost).
            await node.WaitForPartitionsAsync(options.IdlePartitions, TimeSpan.FromMinutes(2), cancellationToken);
            // PostgreSQL 15 backends flush their statistics when idle, but may hold them up to 10 s: wait that out
            // so the start-up wave does not land in pg_stat_database during the window.
            await Task.Delay(TimeSpan.FromSeconds(12), cancellationToken);
            var commits0 = await TransactionsAsync(env, cancellationToken);
            var cpu0 = ProcessCpu();
            var pg0 = PostgresCpu(env.Postgres.DataDirectory);
            var clock = Stopwatch.StartNew();
            await Task.Delay(TimeSpan.FromSeconds(options.IdleSeconds), cancellationToken);
            var elapsed = clock.Elapsed.TotalSeconds;
            var cpu = (ProcessCpu() - cpu0).TotalSeconds / elapsed * 100;
            var pg = (PostgresCpu(env.Postgres.DataDirectory) - pg0).TotalSeconds / elapsed * 100;
            // Statistics reach pg_stat_database up to ~1 s late (PG 15 flushes pending counters at most once a second).
            await Task.Delay(TimeSpan.FromSeconds(1.5), cancellationToken);
            var commits = (await TransactionsAsync(env, cancellationToken) - commits0) / elapsed;
            Console.WriteLine($"| {label} | {F(cpu, "0.0")} | {F(pg, "0.0")} | {F(commits)} | {F(options.IdlePartitions / poll.TotalSeconds)} |");
        }
        finally
        {
            await env.DropTableAsync(table, CancellationToken.None);
        }
    }

    private static async Task<long> TransactionsAsync(BenchEnvironment env, CancellationToken cancellationToken)
    {
        await using var command = env.DataSource.CreateCommand(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = env.Database });
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }
}
