using System.Diagnostics;
using Centrifugo.Actors.Delivery;
using Centrifugo.Actors.Outbox;
using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.StandIn;
using Microsoft.Extensions.Logging.Abstractions;
using static Centrifugo.Actors.Benchmarks.Measure;

namespace Centrifugo.Actors.Benchmarks;

/// <summary>
/// `profile`: where an end-to-end batch spends its time. The product's <see cref="OutboxBatchProcessor"/> runs
/// in a plain loop per partition (no actor, no stream), with stopwatches around the read (lock + SELECT), the
/// delivery (HTTP /batch) and the rest of the pass (decode + DELETE + COMMIT). Comparing its rows/s with the
/// end-to-end figure isolates the cost of the actor and stream around it.
/// </summary>
internal static class ProfileBench
{
    public static async Task RunAsync(BenchEnvironment env, BenchOptions options, CancellationToken cancellationToken)
    {
        Console.WriteLine();
        Console.WriteLine($"## profile: OutboxBatchProcessor in a plain loop, {options.Rows} rows, {options.Partitions} partitions");
        await using var standIn = await CentrifugoStandIn.StartNewAsync(new StandInOptions { RecordCommands = false }, cancellationToken);
        await StandInCostAsync(standIn, cancellationToken);
        Console.WriteLine("| limit | rows/s | batches | read ms/batch | deliver ms/batch | decode+delete+commit ms/batch " +
            "| bench process CPU % | PostgreSQL CPU % |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        foreach (var limit in options.Limits)
        {
            var table = await OutboxTestTable.CreateAsync(
                env.DataSource, env.NextTableName("profile"), cancellationToken: cancellationToken);
            try
            {
                var consumer = env.Consumer(table.Name, options.Partitions, limit);
                await using var store = new OutboxStore(consumer.Name, consumer.Postgresql, NullLoggerFactory.Instance);
                await store.InitializeAsync(cancellationToken);
                using var inner = new CentrifugoClient(new Configuration.ApiOptions { Url = standIn.Url, Key = standIn.ApiKey },
                    NullLogger<CentrifugoClient>.Instance);
                var client = new TimedClient(inner);
                var processor = new OutboxBatchProcessor(store, client, NullLogger.Instance);
                await table.InsertAsync(BenchEnvironment.PublishRows(options.Rows, options.Partitions), cancellationToken);

                // A marker for an external profiler (perf record -p PID) to start sampling the drain only.
                Console.Error.WriteLine($"profile: draining limit {limit}");
                long readTicks = 0, finishTicks = 0, batches = 0;
                var cpu0 = ProcessCpu();
                var pg0 = PostgresCpu(env.Postgres.DataDirectory);
                var clock = Stopwatch.StartNew();
                await Task.WhenAll(Enumerable.Range(0, options.Partitions).Select(p => Task.Run(async () =>
                {
                    OutboxRead? readAhead = null;
                    while (true)
                    {
                        var t0 = Stopwatch.GetTimestamp();
                        // A batch read ahead during the previous delivery already holds the lock: take it, as the actor does.
                        var read = readAhead ?? await processor.ReadAsync(p, cancellationToken);
                        var t1 = Stopwatch.GetTimestamp();
                        var report = await processor.FinishAsync(read, cancellationToken);
                        var t2 = Stopwatch.GetTimestamp();
                        Interlocked.Add(ref readTicks, t1 - t0);
                        Interlocked.Add(ref finishTicks, t2 - t1);
                        Interlocked.Increment(ref batches);
                        readAhead = report.Next;
                        if (report.Failed)
                        {
                            throw new InvalidOperationException(report.Failure?.Message ?? report.DatabaseError);
                        }

                        if (report.Read == 0)
                        {
                            return;
                        }
                    }
                }, cancellationToken)));
                var elapsed = clock.Elapsed.TotalSeconds;
                var cpu = (ProcessCpu() - cpu0).TotalSeconds / elapsed * 100;
                var pg = (PostgresCpu(env.Postgres.DataDirectory) - pg0).TotalSeconds / elapsed * 100;
                var deliverMs = Milliseconds(client.Ticks) / client.Calls;
                Console.WriteLine(
                    $"| {limit} | {F(options.Rows / elapsed)} | {batches} | {F(Milliseconds(readTicks) / batches, "0.00")} | " +
                    $"{F(deliverMs, "0.00")} | {F((Milliseconds(finishTicks) - Milliseconds(client.Ticks)) / batches, "0.00")} | " +
                    $"{F(cpu)} | {F(pg)} |");
            }
            finally
            {
                await env.DropTableAsync(table, CancellationToken.None);
            }
        }
    }

    /// <summary>
    /// CPU the stand-in (and the client's HTTP stack) costs per command in this process: the same /batch of 100
    /// publishes posted over 4 connections with the product's client, no database involved.
    /// </summary>
    private static async Task StandInCostAsync(CentrifugoStandIn standIn, CancellationToken cancellationToken)
    {
        using var client = new CentrifugoClient(
            new Configuration.ApiOptions { Url = standIn.Url, Key = standIn.ApiKey }, NullLogger<CentrifugoClient>.Instance);
        var commands = BenchEnvironment.PublishRows(100, 1)
            .Select(r => CommandDecoder.Decode(r.Method, System.Text.Encoding.UTF8.GetBytes(r.Payload)).Command!.Value)
            .ToArray();
        const int BatchesPerConnection = 1000;
        var cpu0 = ProcessCpu();
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            for (var i = 0; i < BatchesPerConnection; i++)
            {
                var result = await client.DeliverAsync(commands, cancellationToken);
                if (result.Failure is not null)
                {
                    throw new InvalidOperationException(result.Failure.Message);
                }
            }
        }, cancellationToken)));
        var elapsed = clock.Elapsed.TotalSeconds;
        var rows = 4.0 * BatchesPerConnection * commands.Length;
        var cpuMicros = (ProcessCpu() - cpu0).TotalMicroseconds / rows;
        Console.WriteLine("client + stand-in alone (/batch of 100, 4 connections, no database): " +
            $"{F(rows / elapsed)} commands/s, {F(cpuMicros, "0.0")} µs CPU per command");
        Console.WriteLine();
    }

    private sealed class TimedClient(ICentrifugoClient inner) : ICentrifugoClient
    {
        private long _ticks;
        private long _calls;

        public long Ticks => Interlocked.Read(ref _ticks);
        public long Calls => Math.Max(1, Interlocked.Read(ref _calls));

        public async Task<DeliveryResult> DeliverAsync(
            IReadOnlyList<ApiCommand> commands, CancellationToken cancellationToken, Func<bool>? mayStart = null,
            DeliveryWindow? window = null)
        {
            var start = Stopwatch.GetTimestamp();
            var result = await inner.DeliverAsync(commands, cancellationToken, mayStart, window);
            Interlocked.Add(ref _ticks, Stopwatch.GetTimestamp() - start);
            Interlocked.Increment(ref _calls);
            return result;
        }
    }
}
