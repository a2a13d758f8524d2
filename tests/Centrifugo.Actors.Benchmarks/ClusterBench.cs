using System.Diagnostics;
using System.Globalization;
using Centrifugo.Actors.Testing.Kafka;
using Centrifugo.Actors.Testing.Load;
using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.Processes;
using Centrifugo.Actors.Testing.StandIn;
using static Centrifugo.Actors.Benchmarks.Measure;

namespace Centrifugo.Actors.Benchmarks;

/// <summary>
/// `cluster`: three real <c>centrifugo-actors run</c> processes on loopback (tests/…/Testing NodeCluster), the
/// stand-in in this process recording the arrival of every command per partition (DeliveryRecorder).
/// <list type="bullet">
/// <item>failover / kafka: producers write the whole time (24 outbox partitions, or 12 Kafka partitions, at
/// --cluster-rate commands/s each), Centrifugo fails 1 command in --cluster-fail-every (60) with error 100; --cluster-rounds kill -9 of the
/// oldest node (restarted after each), then --cluster-rounds SIGTERMs of the oldest (restarted after each). Per
/// event: the longest silence of the victim's partitions (and of all partitions), and after each rejoin the time to
/// an even spread (±1 partition per node).</item>
/// <item>big: 1,000 empty outbox partitions over 3 nodes: time to an even spread after the join, then CPU per node
/// process over --cluster-idle-seconds.</item>
/// <item>throughput: one --cluster-backlog rows outbox backlog over 24 partitions drained by 1 node, then by 3.</item>
/// </list>
/// </summary>
internal static class ClusterBench
{
    private const int OutboxPartitions = 24;
    private const int KafkaPartitions = 12;
    private static readonly TimeSpan SpreadBound = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan ResumeBound = TimeSpan.FromSeconds(90);

    public static async Task RunAsync(BenchEnvironment env, BenchOptions options, CancellationToken cancellationToken)
    {
        foreach (var section in options.ClusterSections)
        {
            switch (section)
            {
                case "failover":
                    await FailoverOutboxAsync(env, options, cancellationToken);
                    break;
                case "kafka":
                    await FailoverKafkaAsync(options, cancellationToken);
                    break;
                case "big":
                    await BigAsync(env, options, cancellationToken);
                    break;
                case "throughput":
                    await ThroughputAsync(env, options, cancellationToken);
                    break;
                default:
                    throw new ArgumentException($"unknown cluster section {section}");
            }
        }
    }

    private static async Task FailoverOutboxAsync(BenchEnvironment env, BenchOptions options, CancellationToken cancellationToken)
    {
        var table = await OutboxTestTable.CreateAsync(
            env.DataSource, env.NextTableName("cluster"), notifyChannel: "bench_cluster", cancellationToken: cancellationToken);
        try
        {
            var recorder = new DeliveryRecorder();
            await using var standIn = await CentrifugoStandIn.StartNewAsync(
                new StandInOptions { RecordCommands = false, OnAccepted = recorder.OnAccepted }, cancellationToken);
            standIn.FailEvery(options.ClusterFailEvery);
            var template = new NodeConfig
            {
                ApiUrl = standIn.Url,
                ApiKey = standIn.ApiKey,
                Consumers = [new PgConsumerConfig(
                    "pg_bench", env.Postgres.GetKeyValueDsn(env.Database), table.Name, OutboxPartitions, "300ms", "bench_cluster")],
                Customize = ProductDefaults,
            };
            var streams = Enumerable.Range(0, OutboxPartitions)
                .ToDictionary(p => $"pg:pg_bench:{p}", p => $"cb:p{p}", StringComparer.Ordinal);
            await using var load = OutboxLoad.Start(
                table, OutboxPartitions, options.ClusterRate, "cb:", recorder, TimeSpan.FromMinutes(30));
            await FailoverAsync("PostgreSQL outbox", template, streams, recorder, load, options, cancellationToken);
        }
        finally
        {
            await env.DropTableAsync(table, CancellationToken.None);
        }
    }

    private static async Task FailoverKafkaAsync(BenchOptions options, CancellationToken cancellationToken)
    {
        await using var mock = await KafkaMockProcess.StartAsync(brokers: 3, rebalanceDelayMs: 0, cancellationToken: cancellationToken);
        const string topic = "cluster-bench";
        await mock.ControlAsync($"create {topic} {KafkaPartitions}", cancellationToken);
        var recorder = new DeliveryRecorder();
        await using var standIn = await CentrifugoStandIn.StartNewAsync(
            new StandInOptions { RecordCommands = false, OnAccepted = recorder.OnAccepted }, cancellationToken);
        standIn.FailEvery(options.ClusterFailEvery);
        var template = new NodeConfig
        {
            ApiUrl = standIn.Url,
            ApiKey = standIn.ApiKey,
            KafkaConsumers = [
                new KafkaConsumerConfig("k_bench", mock.Bootstrap, "cluster-bench", [topic], GroupProtocol: options.ClusterKafkaProtocol)],
            Customize = ProductDefaults,
        };
        var streams = Enumerable.Range(0, KafkaPartitions)
            .ToDictionary(p => $"kafka:k_bench:{topic}:{p}", p => $"kb:p{p}", StringComparer.Ordinal);
        using var offsets = new CommittedOffsetMonitor(
            mock.Bootstrap, "cluster-bench", topic, KafkaPartitions, TimeSpan.FromMilliseconds(250));
        await using var load = KafkaLoad.Start(
            mock.Bootstrap, topic, KafkaPartitions, options.ClusterRate, "kb:", recorder, TimeSpan.FromMinutes(30));
        await FailoverAsync("Kafka", template, streams, recorder, load, options, cancellationToken);
        Console.WriteLine($"committed offsets: {offsets.Polls} polls, {offsets.Regressions.Count} moves backwards");
    }

    private static async Task FailoverAsync(
        string source, NodeConfig template, IReadOnlyDictionary<string, string> streams, DeliveryRecorder recorder, SteadyLoad load,
        BenchOptions options, CancellationToken cancellationToken)
    {
        Console.WriteLine();
        Console.WriteLine(
            $"## cluster fail-over and hand-off, {source}: 3 node processes, {streams.Count} partitions at {options.ClusterRate}/s each, " +
            $"{(options.ClusterFailEvery > 0 ? $"error 100 on 1 command in {options.ClusterFailEvery}" : "no injected errors")}, " +
            $"{options.ClusterRounds} × kill -9 of the oldest node, then {options.ClusterRounds} × SIGTERM of the oldest, each restarted");
        Console.WriteLine();
        await using var cluster = NodeCluster.Create(3, template);
        var chaos = new ClusterChaos(cluster, recorder, streams, line => Console.WriteLine("- " + line));
        await using var watch = new ClusterWatch(cluster, TimeSpan.FromMilliseconds(500));
        var order = new List<int> { 0, 1, 2 }; // oldest first
        var spreads = new List<SpreadResult> { await chaos.StartAllAsync(SpreadBound) };
        var kills = new List<ClusterEventResult>();
        var terms = new List<ClusterEventResult>();
        for (var round = 0; round < options.ClusterRounds * 2; round++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var victim = order[0];
            if (round < options.ClusterRounds)
            {
                kills.Add(await chaos.KillAsync(victim, ResumeBound));
            }
            else
            {
                terms.Add(await chaos.TerminateAsync(victim, ResumeBound));
            }

            order.RemoveAt(0);
            spreads.Add(await chaos.RestartAsync(victim, SpreadBound));
            order.Add(victim);
        }

        // Producers stop first: "lost" then means produced and never delivered, not the last tick still in flight.
        await load.StopAsync();
        var delivered = Stopwatch.StartNew();
        while (!recorder.AllDelivered(chaos.Streams) && delivered.Elapsed < TimeSpan.FromSeconds(60))
        {
            await Task.Delay(200, cancellationToken);
        }

        Console.WriteLine();
        Console.WriteLine($"| {source} | events | victim's partitions: longest silence, median | max | any partition: max " +
            "| every partition delivering again, median | max | events with two owners of a victim partition |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        Row("kill -9 (fail-over)", kills);
        Row("SIGTERM (hand-off)", terms);
        var reached = spreads.Where(s => s.Elapsed is not null).Select(s => s.Elapsed!.Value.TotalSeconds).ToArray();
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"time to even spread (±1) after a join: " +
            $"{reached.Length} of {spreads.Count} joins reached it within {SpreadBound.TotalSeconds} s, " +
            $"median {F(Median(reached), "0.0")} s, max {F(reached.DefaultIfEmpty(double.NaN).Max(), "0.0")} s; not reached: " +
            $"{string.Join("; ", spreads.Where(s => s.Elapsed is null).Select(s => $"{s.Name} ({s.Last})"))}"));
        Console.WriteLine("deliveries: " + DeliveryRecorder.Summarise(chaos.Streams.Select(recorder.Report).ToArray()));
        Console.WriteLine(watch.Summary());
    }

    private static void Row(string label, IReadOnlyList<ClusterEventResult> events)
    {
        if (events.Count == 0)
        {
            return;
        }

        double[] Victim() => events.Select(e => e.MaxVictimGap?.Gap.TotalSeconds ?? 0).ToArray();
        var victim = Victim();
        var any = events.Select(e => e.MaxGap?.Gap.TotalSeconds ?? 0).ToArray();
        var resumed = events.Select(e => e.AllResumedAfter?.TotalSeconds ?? double.PositiveInfinity).ToArray();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {label} | {events.Count} | {F(Median(victim), "0.0")} s | {F(victim.Max(), "0.0")} s | {F(any.Max(), "0.0")} s " +
            $"| {F(Median(resumed), "0.0")} s | {F(resumed.Max(), "0.0")} s | {events.Count(e => e.AlsoHostedElsewhere.Count > 0)} |"));
    }

    private static async Task BigAsync(BenchEnvironment env, BenchOptions options, CancellationToken cancellationToken)
    {
        const int partitions = 1000;
        Console.WriteLine();
        Console.WriteLine($"## cluster: {partitions} empty outbox partitions over 3 node processes (poll 300 ms, no NOTIFY: the defaults)");
        Console.WriteLine();
        var table = await OutboxTestTable.CreateAsync(env.DataSource, env.NextTableName("big"), cancellationToken: cancellationToken);
        try
        {
            await using var standIn = await CentrifugoStandIn.StartNewAsync(
                new StandInOptions { RecordCommands = false }, cancellationToken);
            var template = new NodeConfig
            {
                ApiUrl = standIn.Url,
                ApiKey = standIn.ApiKey,
                Consumers = [new PgConsumerConfig("pg_big", env.Postgres.GetKeyValueDsn(env.Database), table.Name, partitions, "300ms")],
                Customize = ProductDefaults,
            };
            var entities = Enumerable.Range(0, partitions).Select(p => $"pg:pg_big:{p}").ToHashSet(StringComparer.Ordinal);
            await using var cluster = NodeCluster.Create(3, template);
            await cluster.StartReadyAsync(0, TimeSpan.FromMinutes(2));
            cluster.Start(1);
            cluster.Start(2);
            await cluster[1].WaitUntilReadyAsync(TimeSpan.FromMinutes(2));
            await cluster[2].WaitUntilReadyAsync(TimeSpan.FromMinutes(2));
            var (elapsed, last) = await cluster.WaitForEvenSpreadAsync(entities, TimeSpan.FromSeconds(options.ClusterBigSpreadSeconds));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"even spread (±1) after the 3 nodes were up: " +
                $"{(elapsed is { } t ? $"{t.TotalSeconds:0.0} s" : $"not within {options.ClusterBigSpreadSeconds} s")}; last seen {last}"));

            // Settle: the join wave and the first passes are not idle cost.
            await Task.Delay(TimeSpan.FromSeconds(10), cancellationToken);
            var pids = Enumerable.Range(0, 3).Select(i => cluster[i].Pid).ToArray();
            var cpu0 = pids.Select(ProcessCpu).ToArray();
            var pg0 = PostgresCpu(env.Postgres.DataDirectory);
            var clock = Stopwatch.StartNew();
            await Task.Delay(TimeSpan.FromSeconds(options.ClusterIdleSeconds), cancellationToken);
            var seconds = clock.Elapsed.TotalSeconds;
            var cpu = pids.Select((pid, i) => (ProcessCpu(pid) - cpu0[i]).TotalSeconds / seconds * 100).ToArray();
            var pg = (PostgresCpu(env.Postgres.DataDirectory) - pg0).TotalSeconds / seconds * 100;
            var hosted = await cluster.HostedAsync();
            Console.WriteLine();
            Console.WriteLine("| node | partitions hosted | CPU % of a core (idle window) |");
            Console.WriteLine("|---|---|---|");
            for (var i = 0; i < 3; i++)
            {
                Console.WriteLine($"| node-{i} | {hosted.GetValueOrDefault(i)?.Count ?? 0} | {F(cpu[i], "0.0")} |");
            }

            Console.WriteLine($"PostgreSQL server CPU over the same {F(seconds, "0")} s window: {F(pg, "0.0")} % of a core");
        }
        finally
        {
            await env.DropTableAsync(table, CancellationToken.None);
        }
    }

    private static async Task ThroughputAsync(BenchEnvironment env, BenchOptions options, CancellationToken cancellationToken)
    {
        Console.WriteLine();
        Console.WriteLine("## cluster throughput: " +
            $"one {options.ClusterBacklog}-row outbox backlog over {OutboxPartitions} partitions, 1 node process vs 3");
        Console.WriteLine();
        Console.WriteLine("| nodes | partitions per node when the backlog landed | drain s | rows/s |");
        Console.WriteLine("|---|---|---|---|");
        foreach (var nodes in new[] { 1, 3 })
        {
            var table = await OutboxTestTable.CreateAsync(
                env.DataSource, env.NextTableName("throughput"), cancellationToken: cancellationToken);
            try
            {
                await using var standIn = await CentrifugoStandIn.StartNewAsync(
                    new StandInOptions { RecordCommands = false }, cancellationToken);
                var template = new NodeConfig
                {
                    ApiUrl = standIn.Url,
                    ApiKey = standIn.ApiKey,
                    Consumers = [
                        new PgConsumerConfig("pg_tp", env.Postgres.GetKeyValueDsn(env.Database), table.Name, OutboxPartitions, "300ms")],
                    Customize = ProductDefaults,
                };
                var entities = Enumerable.Range(0, OutboxPartitions).Select(p => $"pg:pg_tp:{p}").ToHashSet(StringComparer.Ordinal);
                await using var cluster = NodeCluster.Create(nodes, template);
                await cluster.StartReadyAsync(0, TimeSpan.FromMinutes(2));
                for (var i = 1; i < nodes; i++)
                {
                    await cluster.StartReadyAsync(i, TimeSpan.FromMinutes(2));
                }

                var (_, spread) = await cluster.WaitForEvenSpreadAsync(entities, SpreadBound);
                var before = standIn.ReceivedCount;
                await table.InsertAsync(BenchEnvironment.PublishRows(options.ClusterBacklog, OutboxPartitions), cancellationToken);
                var clock = Stopwatch.StartNew();
                while (standIn.ReceivedCount - before < options.ClusterBacklog && clock.Elapsed < TimeSpan.FromMinutes(5))
                {
                    await Task.Delay(20, cancellationToken);
                }

                var drain = clock.Elapsed.TotalSeconds;
                Console.WriteLine($"| {nodes} | {spread} | {F(drain, "0.00")} | {F(options.ClusterBacklog / drain)} |");
            }
            finally
            {
                await env.DropTableAsync(table, CancellationToken.None);
            }
        }

        Console.WriteLine("(the clock starts when the COPY of the backlog committed; all processes share this machine's cores)");
    }

    /// <summary>The product's own number_of_shards and cluster defaults.</summary>
    private static void ProductDefaults(System.Text.Json.Nodes.JsonObject json) => json["cluster"]!.AsObject().Remove("number_of_shards");
}
