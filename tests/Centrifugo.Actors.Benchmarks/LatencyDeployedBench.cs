using System.Diagnostics;
using System.Globalization;
using Centrifugo.Actors.Testing.Load;
using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.Processes;
using Npgsql;
using static Centrifugo.Actors.Benchmarks.Measure;

namespace Centrifugo.Actors.Benchmarks;

/// <summary>
/// `latency-deployed`: NOTIFY latency as deployed, every party its own process on one machine: the node as the real
/// executable (<c>centrifugo-actors run</c>, stock settings), Centrifugo as a separate stand-in process
/// (<see cref="LatencySink"/>), and this process as the producer, which commits one row per transaction at a fixed
/// rate into a table with Centrifugo's documented schema (JSONB payload) and NOTIFY trigger. Latency = the sink
/// accepting the command − the producer's COMMIT returning, both read from CLOCK_MONOTONIC
/// (<see cref="Stopwatch.GetTimestamp"/>), checked to be one clock at start. The first seconds are warm-up (fresh
/// process: pools, JIT tiers) and not counted. Each run starts a fresh node, sink and table.
/// </summary>
internal static class LatencyDeployedBench
{
    private const int MaxInFlight = 128;
    private const string Channel = "bench_deployed";
    private const string ProbeChannel = "bench_deployed_probe";

    public static async Task RunAsync(BenchEnvironment env, BenchOptions options, CancellationToken cancellationToken)
    {
        if (!options.DeployedNode)
        {
            options = options with { DeployedProbe = true };
        }
        var rate = options.LatencyRate;
        var warmupRows = rate * options.DeployedWarmupSeconds;
        var total = warmupRows + (rate * options.DeployedSeconds);
        Console.WriteLine();
        Console.WriteLine(
            $"## NOTIFY latency as deployed: node, Centrifugo stand-in and producer in separate processes; {rate} commits/s, " +
            $"one row per transaction, {options.DeployedWarmupSeconds} s warm-up + {options.DeployedSeconds} s measured, " +
            $"{options.Partitions} partitions, poll {options.DeployedPoll}, " +
            $"producer synchronous_commit {(options.DeployedSyncCommit ? "on" : "off")}" +
            $"{(options.DeployedProbe ? ", NOTIFY probe listener" : "")}" +
            $"{(options.DeployedNode ? "" : ", NO NODE (floor: producer + probe only)")}" +
            $"{(options.DeployedStatements ? ", pg_stat_statements loaded" : "")}");
        Console.WriteLine();
        Console.WriteLine("| run | load avg before | achieved commits/s | commit → received p50 ms | p90 | p99 | p99.9 | max | > 5 ms " +
            "| NOTIFY probe: commit → notified p50 / p99 ms | node CPU % | sink CPU % | PostgreSQL CPU % | producer (harness) CPU % |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        for (var run = 1; run <= options.DeployedRuns; run++)
        {
            await RunOnceAsync(env, options, run, total, warmupRows, cancellationToken);
        }
    }

    private static async Task RunOnceAsync(
        BenchEnvironment env, BenchOptions options, int run, int total, int warmupRows, CancellationToken cancellationToken)
    {
        var load = File.ReadAllText("/proc/loadavg").Split(' ')[0];
        await using var sink = await SinkProcess.StartAsync(total, cancellationToken);
        var clockSkew = await sink.CheckClockAsync(cancellationToken);

        await using var producer = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(env.ConnectionString)
        {
            // A pool of an application's size: its sessions stay warm (a pool as large as the in-flight bound rotated
            // every transaction through 128 backends, each cold in the CPU caches). Inserts beyond it wait for a session;
            // latency is counted from the COMMIT, so that wait is the producer's, not the node's.
            MaxPoolSize = 16,
            ApplicationName = "bench-producer",
            // Like an application on pgx (Centrifugo's own driver): pooled sessions are not reset between transactions
            // and the INSERT is prepared once per session. Npgsql's defaults (DISCARD ALL on every return to the pool,
            // the INSERT parsed and planned every time) made the producer 73 % of PostgreSQL's CPU on this 2-core
            // machine, CPU the node and the NOTIFY delivery then waited for. `--deployed-producer-reset on` keeps them.
            NoResetOnClose = !options.DeployedProducerReset,
            MaxAutoPrepare = options.DeployedProducerReset ? 0 : 4,
            AutoPrepareMinUsages = 2,
            Options = options.DeployedSyncCommit ? "" : "-c synchronous_commit=off",
        }.ConnectionString);
        var table = await OutboxTestTable.CreateAsync(
            producer, env.NextTableName("deployed"), OutboxPayloadType.Jsonb, notifyChannel: Channel, cancellationToken: cancellationToken);
        var notified = new long[total];
        NpgsqlConnection? probe = null;
        Task? probeLoop = null;
        using var stopProbe = new CancellationTokenSource();
        try
        {
            if (options.DeployedProbe)
            {
                // A second listener in this process, on its own channel fed by a second trigger with the sequence as
                // payload: when PostgreSQL's notification reaches a client, independent of the node.
                await using (var command = producer.CreateCommand(
                    $"CREATE FUNCTION {table.Name}_probe() RETURNS TRIGGER AS $$ " +
                    $"BEGIN PERFORM pg_notify('{ProbeChannel}', NEW.payload->'data'->>'seq'); RETURN NEW; END; $$ LANGUAGE plpgsql;" +
                    $"CREATE TRIGGER {table.Name}_probe AFTER INSERT ON {table.QuotedName} " +
                    $"FOR EACH ROW EXECUTE FUNCTION {table.Name}_probe();"))
                {
                    await command.ExecuteNonQueryAsync(cancellationToken);
                }
                probe = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(env.ConnectionString)
                    { ApplicationName = "bench-probe", Pooling = false }.ConnectionString);
                await probe.OpenAsync(cancellationToken);
                probe.Notification += (_, e) =>
                {
                    var now = Stopwatch.GetTimestamp();
                    if (int.TryParse(e.Payload, NumberStyles.None, CultureInfo.InvariantCulture, out var seq) && seq < total)
                    {
                        notified[seq] = now;
                    }
                };
                await using (var listen = new NpgsqlCommand($"LISTEN {ProbeChannel}", probe))
                {
                    await listen.ExecuteNonQueryAsync(cancellationToken);
                }
                var connection = probe;
                probeLoop = Task.Run(async () =>
                {
                    try
                    {
                        while (true)
                        {
                            await connection.WaitAsync(stopProbe.Token);
                        }
                    }
                    catch (OperationCanceledException)
                    {
                    }
                }, CancellationToken.None);
            }

            var config = new NodeConfig
            {
                ApiUrl = sink.Url,
                ApiKey = sink.ApiKey,
                NumberOfShards = 100, // the product's default
                Consumers = [new PgConsumerConfig(
                    "bench", env.Postgres.GetKeyValueDsn(env.Database), table.Name, options.Partitions, options.DeployedPoll, Channel)],
            };
            await using var node = options.DeployedNode ? config.Run("latency-node", options.DeployedNodeEnvironment) : null;
            if (node is not null)
            {
                await node.WaitUntilReadyAsync(TimeSpan.FromMinutes(1));
                await node.WaitUntilAsync(
                    async () => (await node.PartitionsAsync()).Count(p => p.State is "idle" or "delivering") == options.Partitions,
                    $"{options.Partitions} partitions running", TimeSpan.FromMinutes(2));
                Console.Error.WriteLine($"run {run}: " +
                    $"node pid {node.Pid} (attach a profiler now: the measured rows start in {options.DeployedWarmupSeconds} s)");
            }

            var statements = options.DeployedStatements ? await StatementStats.StartAsync(env, cancellationToken) : null;
            var nodeCpu0 = node is null ? TimeSpan.Zero : ProcessCpu(node.Pid);
            var harnessCpu0 = ProcessCpu();
            var sinkCpu0 = ProcessCpu(sink.Pid);
            var pgCpu0 = PostgresCpu(env.Postgres.DataDirectory);
            var openLoop = await OpenLoopLoad.RunAsync(
                table, total, options.LatencyRate, options.Partitions, MaxInFlight, cancellationToken);
            var (start, committed, produced) = (openLoop.Start, openLoop.Committed, openLoop.Produced);
            var waitedFor = Stopwatch.StartNew();
            while (node is not null && await sink.CountAsync(cancellationToken) < total)
            {
                if (waitedFor.Elapsed > TimeSpan.FromSeconds(60) || node.HasExited)
                {
                    throw new TimeoutException(
                        $"the sink received {await sink.CountAsync(cancellationToken)} of {total} commands.{node.Tail()}");
                }
                await Task.Delay(100, cancellationToken);
            }
            while (node is null && notified.Count(x => x != 0) < total && waitedFor.Elapsed < TimeSpan.FromSeconds(10))
            {
                await Task.Delay(100, cancellationToken);
            }
            var elapsed = Stopwatch.GetElapsedTime(start).TotalSeconds;
            var statementReport = statements is null ? null : await statements.StopAsync(elapsed, cancellationToken);
            var nodeCpu = node is null ? 0 : (ProcessCpu(node.Pid) - nodeCpu0).TotalSeconds / elapsed * 100;
            var harnessCpu = (ProcessCpu() - harnessCpu0).TotalSeconds / elapsed * 100;
            var sinkCpu = (ProcessCpu(sink.Pid) - sinkCpu0).TotalSeconds / elapsed * 100;
            var pgCpu = (PostgresCpu(env.Postgres.DataDirectory) - pgCpu0).TotalSeconds / elapsed * 100;
            var received = node is null ? committed : await sink.DumpAsync(total, cancellationToken);

            var counted = total - warmupRows;
            var latency = new double[counted];
            var toNotify = new List<double>(counted);
            for (var i = warmupRows; i < total; i++)
            {
                latency[i - warmupRows] = Milliseconds(received[i] - committed[i]);
                if (notified[i] != 0)
                {
                    toNotify.Add(Milliseconds(notified[i] - committed[i]));
                }
            }
            Array.Sort(latency);
            var notifySorted = toNotify.Order().ToArray();
            var probeText = options.DeployedProbe
                ? $"{F(Percentile(notifySorted, 50), "0.00")} / {F(Percentile(notifySorted, 99), "0.00")}" : "–";
            var nodeText = node is null ? "no node | – | – | – | – | –" : string.Create(CultureInfo.InvariantCulture,
                $"{F(Percentile(latency, 50), "0.00")} | {F(Percentile(latency, 90), "0.00")} | {F(Percentile(latency, 99), "0.00")} " +
                $"| {F(Percentile(latency, 99.9), "0.00")} | {F(latency[^1], "0.00")} | {latency.Count(x => x > 5)}");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {run} | {load} | {F(total / produced.TotalSeconds)} | {nodeText} | {probeText} | {F(nodeCpu, "0.0")} " +
                $"| {F(sinkCpu, "0.0")} | {F(pgCpu, "0.0")} | {F(harnessCpu, "0.0")} |"));
            if (options.DeployedDetail && node is not null)
            {
                PrintSlowest(latency, committed, received, warmupRows, start);
            }
            if (statementReport is not null)
            {
                Console.Error.WriteLine(statementReport);
            }
            Console.Error.WriteLine(
                $"run {run}: clock check across processes: sink's reading inside the harness's [before, after] window " +
                $"(width {F(Milliseconds(clockSkew), "0.000")} ms); delivered before the commit returned: {latency.Count(x => x < 0)}");

            if (node is not null)
            {
                node.Terminate();
                await node.WaitForExitAsync(TimeSpan.FromSeconds(60));
            }
        }
        finally
        {
            await stopProbe.CancelAsync();
            if (probeLoop is not null)
            {
                await probeLoop;
            }
            if (probe is not null)
            {
                await probe.DisposeAsync();
            }
            await env.DropTableAsync(table, CancellationToken.None);
        }
    }

    /// <summary>Latency buckets, and when (seconds into the run) the slowest rows were committed: clusters in time point at
    /// pauses.</summary>
    private static void PrintSlowest(double[] sorted, long[] committed, long[] received, int warmupRows, long start)
    {
        double[] bounds = [1, 2, 3, 5, 10, 20, 50, 100, 1000, double.MaxValue];
        var lower = double.MinValue;
        var line = new List<string>();
        foreach (var bound in bounds)
        {
            var n = sorted.Count(x => x > lower && x <= bound);
            line.Add(string.Create(
                CultureInfo.InvariantCulture, $"≤{(bound == double.MaxValue ? "∞" : bound.ToString(CultureInfo.InvariantCulture))}: {n}"));
            lower = bound;
        }
        Console.Error.WriteLine("  buckets (ms) " + string.Join(", ", line));
        var slow = Enumerable.Range(warmupRows, committed.Length - warmupRows)
            .Select(i => (i, ms: Milliseconds(received[i] - committed[i])))
            .OrderByDescending(x => x.ms).Take(15)
            .OrderBy(x => x.i)
            .Select(x => string.Create(CultureInfo.InvariantCulture, $"{Milliseconds(committed[x.i] - start) / 1000:0.000}s:{x.ms:0.0}"));
        Console.Error.WriteLine("  slowest (commit time into run: ms) " + string.Join(" ", slow));
    }

    /// <summary>The sink child process (<see cref="LatencySink"/>) and its line protocol.</summary>
    private sealed class SinkProcess : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly SemaphoreSlim _gate = new(1);

        private SinkProcess(Process process, string url, string apiKey)
        {
            _process = process;
            Url = url;
            ApiKey = apiKey;
        }

        public string Url { get; }
        public string ApiKey { get; }
        public int Pid => _process.Id;

        public static async Task<SinkProcess> StartAsync(int total, CancellationToken cancellationToken)
        {
            var start = new ProcessStartInfo(Environment.ProcessPath ?? "dotnet")
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                UseShellExecute = false,
            };
            // Run as `dotnet Benchmarks.dll` or as the apphost: either way the same assembly, in its own process.
            if (Path.GetFileNameWithoutExtension(start.FileName) == "dotnet")
            {
                start.ArgumentList.Add(typeof(LatencySink).Assembly.Location);
            }
            start.ArgumentList.Add(LatencySink.Verb);
            start.ArgumentList.Add(total.ToString(CultureInfo.InvariantCulture));
            var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start the sink process");
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(60));
            var ready = await process.StandardOutput.ReadLineAsync(timeout.Token)
                ?? throw new InvalidOperationException("the sink process exited before it was ready");
            var parts = ready.Split(' ');
            return parts is ["ready", var url, var key]
                ? new SinkProcess(process, url, key)
                : throw new InvalidOperationException($"unexpected first line of the sink: {ready}");
        }

        /// <summary>Verifies the sink's clock is this process's: its reading must fall inside the request's round trip.</summary>
        /// <returns>The narrowest round trip seen (the bound on any offset), in Stopwatch ticks.</returns>
        public async Task<long> CheckClockAsync(CancellationToken cancellationToken)
        {
            var best = long.MaxValue;
            for (var i = 0; i < 5; i++)
            {
                var before = Stopwatch.GetTimestamp();
                var reply = await AskAsync("clock", cancellationToken);
                var after = Stopwatch.GetTimestamp();
                var theirs = long.Parse(reply.Split(' ')[1], CultureInfo.InvariantCulture);
                if (theirs < before || theirs > after)
                {
                    throw new InvalidOperationException("the sink's monotonic clock differs from this process's " +
                        $"({theirs} outside [{before}, {after}]): latencies across processes would be meaningless");
                }
                best = Math.Min(best, after - before);
            }
            return best;
        }

        public async Task<int> CountAsync(CancellationToken cancellationToken) =>
            int.Parse((await AskAsync("count", cancellationToken)).Split(' ')[1], CultureInfo.InvariantCulture);

        public async Task<long[]> DumpAsync(int total, CancellationToken cancellationToken)
        {
            var path = Path.Combine(Path.GetTempPath(), $"latency-sink-{Environment.ProcessId}-{Guid.NewGuid():N}.bin");
            try
            {
                await AskAsync("dump " + path, cancellationToken);
                var bytes = await File.ReadAllBytesAsync(path, cancellationToken);
                var values = new long[total];
                Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
                return values;
            }
            finally
            {
                File.Delete(path);
            }
        }

        private async Task<string> AskAsync(string line, CancellationToken cancellationToken)
        {
            await _gate.WaitAsync(cancellationToken);
            try
            {
                await _process.StandardInput.WriteLineAsync(line.AsMemory(), cancellationToken);
                await _process.StandardInput.FlushAsync(cancellationToken);
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(TimeSpan.FromSeconds(30));
                return await _process.StandardOutput.ReadLineAsync(timeout.Token)
                    ?? throw new InvalidOperationException("the sink process exited");
            }
            finally
            {
                _gate.Release();
            }
        }

        public async ValueTask DisposeAsync()
        {
            try
            {
                if (!_process.HasExited)
                {
                    await _process.StandardInput.WriteLineAsync("exit");
                    await _process.StandardInput.FlushAsync();
                    using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                    await _process.WaitForExitAsync(timeout.Token);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or IOException)
            {
                _process.Kill();
            }
            finally
            {
                _process.Dispose();
                _gate.Dispose();
            }
        }
    }
}
