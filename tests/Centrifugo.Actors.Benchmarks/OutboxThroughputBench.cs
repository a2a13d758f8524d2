using System.Diagnostics;
using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.StandIn;
using static Centrifugo.Actors.Benchmarks.Measure;

namespace Centrifugo.Actors.Benchmarks;

/// <summary>
/// `outbox`: for each select limit and round, in alternating order, (1) the raw drain (Centrifugo's loop, no
/// dispatch) of the backlog, (2) the node end-to-end into the stand-in, (3) the naive one-POST-per-row worker
/// on a smaller backlog. Ratios are taken within a round (the machine drifts), medians over rounds. An unmeasured
/// warm-up pass per limit comes first (<see cref="BenchOptions.WarmupRows"/>).
/// </summary>
internal static class OutboxThroughputBench
{
    private sealed record Round(int Limit, int Index, double RawRowsPerSecond, double EndToEndRowsPerSecond, double NaiveRowsPerSecond,
        double RawSeconds, double EndToEndSeconds, double FillSeconds)
    {
        public double Ratio => EndToEndRowsPerSecond / RawRowsPerSecond;
        public double VsNaive => EndToEndRowsPerSecond / NaiveRowsPerSecond;
    }

    public static async Task RunAsync(BenchEnvironment env, BenchOptions options, CancellationToken cancellationToken)
    {
        Console.WriteLine();
        Console.WriteLine($"## outbox throughput: {options.Rows} rows, {options.Partitions} partitions, " +
            $"limits {string.Join(',', options.Limits)}, {options.Rounds} rounds (naive worker: {options.NaiveRows} rows)");
        await using var standIn = await CentrifugoStandIn.StartNewAsync(new StandInOptions { RecordCommands = false }, cancellationToken);
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = int.MaxValue });
        http.DefaultRequestHeaders.TryAddWithoutValidation("X-API-Key", standIn.ApiKey);
        var naive = RawDrain.HttpPerRow(http, standIn.Url);

        // Tiered JIT compiles the node's hot paths during its first seconds (measured: ~30% of a core in a fresh
        // process, against a 2 s measured run); a long-running node pays that once. Warm up, then measure.
        if (options.WarmupRows > 0)
        {
            foreach (var limit in options.Limits)
            {
                var warmE2e = await EndToEndAsync(
                    env, standIn, options.WarmupRows, options.Partitions, limit, options.MaxBatchSizeFor(limit), cancellationToken);
                var warmRaw = await RawAsync(env, options.WarmupRows, options.Partitions, limit, null, cancellationToken);
                Console.WriteLine($"warm-up limit {limit} ({options.WarmupRows} rows, not counted): " +
                    $"raw drain {F(warmRaw.Rate)} rows/s, end-to-end {F(warmE2e.Rate)} rows/s");
            }

            var settled = await WaitForJitQuietAsync(TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(30), cancellationToken);
            Console.WriteLine($"JIT quiet after {F(settled.TotalSeconds, "0.0")} s");
        }

        var rounds = new List<Round>();
        for (var r = 0; r < options.Rounds; r++)
        {
            foreach (var limit in options.Limits)
            {
                // Alternate which of the two goes first so a drifting machine does not favour one of them.
                (double Rate, double Seconds, double Fill) raw, e2e;
                if (r % 2 == 0)
                {
                    raw = await RawAsync(env, options.Rows, options.Partitions, limit, null, cancellationToken);
                    e2e = await EndToEndAsync(
                        env, standIn, options.Rows, options.Partitions, limit, options.MaxBatchSizeFor(limit), cancellationToken);
                }
                else
                {
                    e2e = await EndToEndAsync(
                        env, standIn, options.Rows, options.Partitions, limit, options.MaxBatchSizeFor(limit), cancellationToken);
                    raw = await RawAsync(env, options.Rows, options.Partitions, limit, null, cancellationToken);
                }

                var naiveRun = await RawAsync(env, options.NaiveRows, options.Partitions, limit, naive, cancellationToken);
                var round = new Round(
                    limit, r + 1, raw.Rate, e2e.Rate, naiveRun.Rate, raw.Seconds, e2e.Seconds, Math.Max(raw.Fill, e2e.Fill));
                rounds.Add(round);
                Console.WriteLine(
                    $"round {round.Index} limit {limit}: raw drain {F(raw.Rate)} rows/s ({F(raw.Seconds, "0.0")} s), " +
                    $"end-to-end {F(e2e.Rate)} rows/s ({F(e2e.Seconds, "0.0")} s), naive {F(naiveRun.Rate)} rows/s; " +
                    $"e2e/raw {F(round.Ratio, "0.00")}, e2e/naive {F(round.VsNaive, "0.0")}; fill {F(round.FillSeconds, "0.0")} s");
            }
        }

        Console.WriteLine();
        Console.WriteLine(
            "| limit | max_batch_size | round | raw drain rows/s | end-to-end rows/s | naive rows/s | e2e / raw | e2e / naive |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        foreach (var round in rounds.OrderBy(x => x.Limit).ThenBy(x => x.Index))
        {
            Console.WriteLine($"| {round.Limit} | {options.MaxBatchSizeFor(round.Limit)} | {round.Index} | {F(round.RawRowsPerSecond)} " +
                $"| {F(round.EndToEndRowsPerSecond)} | {F(round.NaiveRowsPerSecond)} | {F(round.Ratio, "0.00")} " +
                $"| {F(round.VsNaive, "0.0")} |");
        }

        foreach (var limit in options.Limits)
        {
            var of = rounds.Where(x => x.Limit == limit).ToList();
            var target = limit >= 1000 ? 8 : 3;
            Console.WriteLine(
                $"| {limit} | {options.MaxBatchSizeFor(limit)} | **median** | {F(Median([.. of.Select(x => x.RawRowsPerSecond)]))} | " +
                $"{F(Median([.. of.Select(x => x.EndToEndRowsPerSecond)]))} | {F(Median([.. of.Select(x => x.NaiveRowsPerSecond)]))} | " +
                $"**{F(Median([.. of.Select(x => x.Ratio)]), "0.00")}** (target ≥ 0.8) | " +
                $"**{F(Median([.. of.Select(x => x.VsNaive)]), "0.0")}** (target ≥ {target}) |");
        }
    }

    /// <summary>Fills a fresh table, then drains it with <see cref="RawDrain"/> (connections opened and prepared before the clock
    /// starts).</summary>
    private static async Task<(double Rate, double Seconds, double Fill)> RawAsync(
        BenchEnvironment env, int rows, int partitions, int limit, RowDispatch? dispatch, CancellationToken cancellationToken)
    {
        var table = await OutboxTestTable.CreateAsync(
            env.DataSource, env.NextTableName(dispatch is null ? "raw" : "naive"), cancellationToken: cancellationToken);
        try
        {
            var drain = new RawDrain(env.DataSource, table.QuotedName, partitions, limit, dispatch);
            await using var connections = await drain.PrepareAsync(cancellationToken);
            var fill = Stopwatch.StartNew();
            await table.InsertAsync(BenchEnvironment.PublishRows(rows, partitions), cancellationToken);
            fill.Stop();
            var cpu = CpuMeter.Start(env);
            var clock = Stopwatch.StartNew();
            var drained = await drain.RunAsync(cancellationToken);
            clock.Stop();
            Console.WriteLine($"  {(dispatch is null ? "raw drain" : "naive")} limit {limit}: {cpu.Stop()}");
            if (drained != rows)
            {
                throw new InvalidOperationException($"raw drain deleted {drained} rows, expected {rows}");
            }

            return (rows / clock.Elapsed.TotalSeconds, clock.Elapsed.TotalSeconds, fill.Elapsed.TotalSeconds);
        }
        finally
        {
            await env.DropTableAsync(table, CancellationToken.None);
        }
    }

    /// <summary>
    /// Starts a node on an empty table, waits for its partitions, makes the whole backlog visible in one
    /// committed COPY that also notifies every partition, and times from that commit until the stand-in accepted
    /// every row (then checks the table is empty).
    /// </summary>
    private static async Task<(double Rate, double Seconds, double Fill)> EndToEndAsync(
        BenchEnvironment env, CentrifugoStandIn standIn, int rows, int partitions, int limit, int maxBatchSize,
        CancellationToken cancellationToken)
    {
        var table = await OutboxTestTable.CreateAsync(env.DataSource, env.NextTableName("e2e"), cancellationToken: cancellationToken);
        try
        {
            // The backlog's transaction notifies its partitions, as Centrifugo's documented trigger does, so the node
            // starts at the commit like the raw drain starts at its clock. Without it the first read would wait for
            // the next census (up to the 300 ms poll interval), which is start-up latency, not throughput.
            var channel = "bench_" + table.Name;
            await using var node = await BenchEnvironment.StartNodeAsync(standIn.Url, standIn.ApiKey,
                env.Consumer(table.Name, partitions, limit, channel: channel), cancellationToken, maxBatchSize);
            var before = standIn.ReceivedCount;
            var rejectedBefore = standIn.RejectedCount;
            var fill = Stopwatch.StartNew();
            await table.InsertAndNotifyAsync(BenchEnvironment.PublishRows(rows, partitions), channel, partitions, cancellationToken);
            fill.Stop();
            var cpu = CpuMeter.Start(env);
            var clock = Stopwatch.StartNew();
            await standIn.WaitForReceivedAsync(checked((int)(before + rows)), TimeSpan.FromMinutes(10));
            clock.Stop();
            Console.WriteLine($"  end-to-end limit {limit}: {cpu.Stop()}");
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (await table.CountAsync(cancellationToken: cancellationToken) > 0)
            {
                if (DateTime.UtcNow > deadline)
                {
                    throw new TimeoutException("the outbox was not empty 30 s after the stand-in accepted every row");
                }

                await Task.Delay(50, cancellationToken);
            }

            if (standIn.RejectedCount != rejectedBefore || standIn.ReceivedCount != before + rows)
            {
                Console.WriteLine($"  note: stand-in accepted {standIn.ReceivedCount - before} (duplicates: at-least-once), " +
                    $"rejected {standIn.RejectedCount - rejectedBefore}");
            }

            return (rows / clock.Elapsed.TotalSeconds, clock.Elapsed.TotalSeconds, fill.Elapsed.TotalSeconds);
        }
        finally
        {
            await env.DropTableAsync(table, CancellationToken.None);
        }
    }
}

/// <summary>CPU used by this process and by the PostgreSQL server over a timed section, in % of one core.</summary>
internal sealed class CpuMeter
{
    private readonly BenchEnvironment _env;
    private readonly TimeSpan _process;
    private readonly TimeSpan _postgres;
    private readonly long _start = Stopwatch.GetTimestamp();

    private CpuMeter(BenchEnvironment env)
    {
        _env = env;
        _process = ProcessCpu();
        _postgres = PostgresCpu(env.Postgres.DataDirectory);
    }

    public static CpuMeter Start(BenchEnvironment env) => new(env);

    public string Stop()
    {
        var seconds = Stopwatch.GetElapsedTime(_start).TotalSeconds;
        var process = (ProcessCpu() - _process).TotalSeconds / seconds * 100;
        var postgres = (PostgresCpu(_env.Postgres.DataDirectory) - _postgres).TotalSeconds / seconds * 100;
        return $"CPU % of one core: bench process (node + stand-in) {F(process)}, PostgreSQL {F(postgres)}";
    }
}
