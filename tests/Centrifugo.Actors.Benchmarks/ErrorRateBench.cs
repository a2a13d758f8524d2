using System.Diagnostics;
using System.Globalization;
using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.StandIn;
using static Centrifugo.Actors.Benchmarks.Measure;

namespace Centrifugo.Actors.Benchmarks;

/// <summary>
/// `errorrate`: how long one partition takes to drain a backlog when Centrifugo answers error 100 to a steady share
/// of the commands (each command, retries included, with probability 1/N from a seeded generator), against the same
/// backlog with no errors, with <c>derive_idempotency_key</c> off and on. Every row must end up accepted (error 100 is
/// retried, never dead-lettered); the drain ends when the outbox is empty. Counted at the stand-in, which honours
/// idempotency keys like Centrifugo: the commands the node sent (raw, failed attempts included), and the publications
/// that reached subscribers (a re-sent command whose key was seen is answered but not published).
/// Rounds alternate the error rates; the ratio to the 0 % run (same round, same option) is reported, medians over rounds.
/// </summary>
internal static class ErrorRateBench
{
    private sealed record Run(int Round, int Every, bool Keys, double Seconds, long Sent, long Accepted, long Publications);

    public static async Task RunAsync(BenchEnvironment env, BenchOptions options, CancellationToken cancellationToken)
    {
        var rows = options.ErrorRateRows;
        int[] rates = [0, .. options.ErrorRateEvery];
        var limit = options.Limits[0];
        var maxBatchSize = options.MaxBatchSizeFor(limit);
        Console.WriteLine();
        Console.WriteLine("## error-rate drain: " +
            $"{rows} rows backlog in 1 partition, limit {limit}, max_batch_size {maxBatchSize}, {options.Rounds} rounds, " +
            $"error 100 on each command with probability 1/N (N = {string.Join(", ", rates.Skip(1))}), derive_idempotency_key off and on");
        await using var standIn = await CentrifugoStandIn.StartNewAsync(new StandInOptions { RecordCommands = false }, cancellationToken);

        // Warm-up (not counted): the JIT compiles the hot paths, including the failure path.
        await DrainAsync(env, standIn, Math.Min(rows, 5000), limit, maxBatchSize, 60, keys: true, cancellationToken);

        var results = new List<Run>();
        for (var round = 1; round <= options.Rounds; round++)
        {
            var order = round % 2 == 1 ? rates : rates.Reverse().ToArray();
            foreach (var every in order)
            {
                foreach (var keys in round % 2 == 1 ? new[] { false, true } : [true, false])
                {
                    var run = await DrainAsync(
                        env, standIn, rows, limit, maxBatchSize, every, keys, cancellationToken) with { Round = round };
                    results.Add(run);
                    Console.WriteLine($"round {round} {Rate(every)} keys {(keys ? "on" : "off")}: drained in {F(run.Seconds, "0.00")} s " +
                        $"({F(rows / run.Seconds)} rows/s), sent {run.Sent}, publications {run.Publications}");
                }
            }
        }

        Console.WriteLine();
        Console.WriteLine("| error 100 rate | derive_idempotency_key | round | drain s | rows/s | commands sent (raw) | re-sent " +
            "| publications reaching subscribers | duplicate publications | drain time / 0 % |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|");
        foreach (var r in results.OrderBy(x => x.Every == 0 ? 0 : 1.0 / x.Every).ThenBy(x => x.Keys).ThenBy(x => x.Round))
        {
            Console.WriteLine(
                $"| {Rate(r.Every)} | {(r.Keys ? "on" : "off")} | {r.Round} | {F(r.Seconds, "0.00")} | {F(rows / r.Seconds)} | {r.Sent} " +
                $"| {r.Sent - rows} | {r.Publications} | {Duplicates(r, rows)} | {F(r.Seconds / Baseline(results, r), "0.00")} |");
        }

        foreach (var every in rates)
        {
            foreach (var keys in new[] { false, true })
            {
                var runs = results.Where(x => x.Every == every && x.Keys == keys).ToArray();
                var seconds = runs.Select(x => x.Seconds).ToArray();
                var ratios = runs.Select(x => x.Seconds / Baseline(results, x)).ToArray();
                var resent = runs.Select(x => (double)(x.Sent - rows)).ToArray();
                var duplicates = runs.Select(x => (double)(x.Publications - rows)).ToArray();
                Console.WriteLine($"| {Rate(every)} | {(keys ? "on" : "off")} | **median** | {F(Median(seconds), "0.00")} " +
                    $"| {F(rows / Median(seconds))} | | {F(Median(resent), "0")} | | **{F(Median(duplicates), "0")} " +
                    $"({F(100 * Median(duplicates) / rows, "0.0")} %)** | **{F(Median(ratios), "0.00")}** |");
            }
        }
    }

    private static double Baseline(List<Run> results, Run run) =>
        results.Single(b => b.Round == run.Round && b.Every == 0 && b.Keys == run.Keys).Seconds;

    private static string Duplicates(Run run, int rows) =>
        string.Create(CultureInfo.InvariantCulture, $"{run.Publications - rows} ({100.0 * (run.Publications - rows) / rows:0.0} %)");

    private static string Rate(int every) =>
        every == 0 ? "0 %" : string.Create(CultureInfo.InvariantCulture, $"1/{every} ({100.0 / every:0.0} %)");

    private static int _runs;

    /// <summary>Node started on an empty table; the backlog commits in one transaction that notifies the partition; timed until the outbox
    /// is empty.</summary>
    private static async Task<Run> DrainAsync(
        BenchEnvironment env, CentrifugoStandIn standIn, int rows, int limit, int maxBatchSize, int every, bool keys,
        CancellationToken cancellationToken)
    {
        var table = await OutboxTestTable.CreateAsync(env.DataSource, env.NextTableName("err"), cancellationToken: cancellationToken);
        try
        {
            var channel = "bench_" + table.Name;
            var consumer = env.Consumer(table.Name, 1, limit, channel: channel);
            // A fresh table restarts its ids: a consumer name per run keeps its derived keys apart from earlier runs'.
            consumer = consumer with
            {
                Name = string.Create(CultureInfo.InvariantCulture, $"bench_{Interlocked.Increment(ref _runs)}"),
                Postgresql = consumer.Postgresql with { DeriveIdempotencyKey = keys },
            };
            await using var node = await BenchEnvironment.StartNodeAsync(
                standIn.Url, standIn.ApiKey, consumer, cancellationToken, maxBatchSize);
            standIn.FailOneIn(every);
            var sent = standIn.CommandsReceived;
            var accepted = standIn.ReceivedCount;
            var publications = standIn.Publications;
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

            return new Run(0, every, keys, clock.Elapsed.TotalSeconds,
                standIn.CommandsReceived - sent, standIn.ReceivedCount - accepted, standIn.Publications - publications);
        }
        finally
        {
            standIn.FailOneIn(0);
            await env.DropTableAsync(table, CancellationToken.None);
        }
    }
}
