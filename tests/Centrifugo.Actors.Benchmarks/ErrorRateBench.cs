using System.Diagnostics;
using System.Globalization;
using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.StandIn;
using static Centrifugo.Actors.Benchmarks.Measure;

namespace Centrifugo.Actors.Benchmarks;

/// <summary>
/// `errorrate`: how long one partition takes to drain a backlog when Centrifugo answers error 100 to a steady share
/// of the commands (each command, retries included, with probability 1/N from a seeded generator), against the same backlog with no errors. Every row
/// must end up accepted (error 100 is retried, never dead-lettered); the drain ends when the outbox is empty.
/// Rounds alternate the error rates; the ratio to the 0 % run of the same round is reported, medians over rounds.
/// </summary>
internal static class ErrorRateBench
{
    private static readonly int[] Every = [0, 100, 60, 50];

    public static async Task RunAsync(BenchEnvironment env, BenchOptions options, CancellationToken cancellationToken)
    {
        var rows = options.ErrorRateRows;
        var limit = options.Limits[0];
        var maxBatchSize = options.MaxBatchSizeFor(limit);
        Console.WriteLine();
        Console.WriteLine($"## error-rate drain: {rows} rows backlog in 1 partition, limit {limit}, max_batch_size {maxBatchSize}, {options.Rounds} rounds, error 100 on each command with probability 1/N (N = {string.Join(", ", Every.Skip(1))})");
        await using var standIn = await CentrifugoStandIn.StartNewAsync(new StandInOptions { RecordCommands = false }, cancellationToken);

        // Warm-up (not counted): the JIT compiles the hot paths, including the failure path.
        await DrainAsync(env, standIn, Math.Min(rows, 5000), limit, maxBatchSize, 60, cancellationToken);

        var results = new List<(int Round, int Every, double Seconds, long Accepted)>();
        for (var round = 1; round <= options.Rounds; round++)
        {
            var order = round % 2 == 1 ? Every : Every.Reverse().ToArray();
            foreach (var every in order)
            {
                var (seconds, accepted) = await DrainAsync(env, standIn, rows, limit, maxBatchSize, every, cancellationToken);
                results.Add((round, every, seconds, accepted));
                Console.WriteLine($"round {round} {Rate(every)}: drained in {F(seconds, "0.00")} s ({F(rows / seconds)} rows/s), stand-in accepted {accepted} (duplicates: at-least-once)");
            }
        }

        Console.WriteLine();
        Console.WriteLine("| error 100 rate | round | drain s | rows/s | accepted (with duplicates) | drain time / 0 % |");
        Console.WriteLine("|---|---|---|---|---|---|");
        foreach (var r in results.OrderBy(x => x.Every == 0 ? 0 : 1.0 / x.Every).ThenBy(x => x.Round))
        {
            var baseline = results.Single(x => x.Round == r.Round && x.Every == 0).Seconds;
            Console.WriteLine($"| {Rate(r.Every)} | {r.Round} | {F(r.Seconds, "0.00")} | {F(rows / r.Seconds)} | {r.Accepted} | {F(r.Seconds / baseline, "0.00")} |");
        }

        foreach (var every in Every)
        {
            var ratios = results.Where(x => x.Every == every)
                .Select(x => x.Seconds / results.Single(b => b.Round == x.Round && b.Every == 0).Seconds).ToArray();
            var seconds = results.Where(x => x.Every == every).Select(x => x.Seconds).ToArray();
            Console.WriteLine($"| {Rate(every)} | **median** | {F(Median(seconds), "0.00")} | {F(rows / Median(seconds))} | | **{F(Median(ratios), "0.00")}** (goal ≤ 2) |");
        }
    }

    private static string Rate(int every) => every == 0 ? "0 %" : string.Create(CultureInfo.InvariantCulture, $"1/{every} ({100.0 / every:0.0} %)");

    /// <summary>Node started on an empty table; the backlog commits in one transaction that notifies the partition; timed until the outbox is empty.</summary>
    private static async Task<(double Seconds, long Accepted)> DrainAsync(
        BenchEnvironment env, CentrifugoStandIn standIn, int rows, int limit, int maxBatchSize, int every, CancellationToken cancellationToken)
    {
        var table = await OutboxTestTable.CreateAsync(env.DataSource, env.NextTableName("err"), cancellationToken: cancellationToken);
        try
        {
            var channel = "bench_" + table.Name;
            await using var node = await BenchEnvironment.StartNodeAsync(
                standIn.Url, standIn.ApiKey, env.Consumer(table.Name, 1, limit, channel: channel), cancellationToken, maxBatchSize);
            standIn.FailOneIn(every);
            var before = standIn.ReceivedCount;
            await table.InsertAndNotifyAsync(BenchEnvironment.PublishRows(rows, 1), channel, 1, cancellationToken);
            var clock = Stopwatch.StartNew();
            var deadline = clock.Elapsed + TimeSpan.FromMinutes(10);
            while (await table.CountAsync(cancellationToken: cancellationToken) > 0)
            {
                if (clock.Elapsed > deadline)
                {
                    throw new TimeoutException($"backlog of {rows} rows not drained within 10 min at error rate 1/{every}");
                }

                await Task.Delay(20, cancellationToken);
            }

            clock.Stop();
            standIn.FailOneIn(0);
            await using var count = env.DataSource.CreateCommand(
                $"SELECT count(*) FROM {Centrifugo.Actors.Outbox.OutboxSql.QuoteTableName(table.Name + "_dead_letter")}");
            var deadLetters = await count.ExecuteScalarAsync(cancellationToken);
            if ((long)deadLetters! != 0)
            {
                throw new InvalidOperationException($"{deadLetters} rows dead-lettered: error 100 must be retried");
            }

            return (clock.Elapsed.TotalSeconds, standIn.ReceivedCount - before);
        }
        finally
        {
            standIn.FailOneIn(0);
            await env.DropTableAsync(table, CancellationToken.None);
        }
    }
}
