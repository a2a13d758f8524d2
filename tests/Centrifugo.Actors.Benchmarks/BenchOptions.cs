using System.Globalization;

namespace Centrifugo.Actors.Benchmarks;

/// <summary>Command line of the benchmark: <c>&lt;mode&gt; [--name value]…</c>; every value has a default.</summary>
internal sealed record BenchOptions
{
    public required string Mode { get; init; }
    public int Rows { get; init; } = 1_000_000;
    public IReadOnlyList<int> Limits { get; init; } = [100, 1000];
    public int Rounds { get; init; } = 3;
    /// <summary>Rows of the unmeasured warm-up pass (end-to-end and raw drain, per limit) before the rounds; 0 = none.</summary>
    public int WarmupRows { get; init; } = 500_000;
    public int Partitions { get; init; } = 8;
    /// <summary>Rows per naive-worker run (one HTTP POST per row is slow; a smaller backlog keeps the run short).</summary>
    public int NaiveRows { get; init; } = 100_000;
    /// <summary>api.max_batch_size of the end-to-end node; null = the select limit (one /batch per read).</summary>
    public int? MaxBatchSize { get; init; }

    /// <summary>The api.max_batch_size used at <paramref name="limit"/> (the product caps it at 1000).</summary>
    public int MaxBatchSizeFor(int limit) => MaxBatchSize ?? Math.Min(limit, 1000);
    /// <summary>Backlog of the errorrate mode (one partition).</summary>
    public int ErrorRateRows { get; init; } = 30_000;
    /// <summary>errorrate: the rates measured, error 100 on 1 command in N (the 0 % baseline always runs too).</summary>
    public IReadOnlyList<int> ErrorRateEvery { get; init; } = [100, 60, 50];
    public int LatencyRate { get; init; } = 1000;
    public int LatencySeconds { get; init; } = 20;
    /// <summary>latency-deployed: measured seconds per run (after the warm-up), warm-up seconds, runs.</summary>
    public int DeployedSeconds { get; init; } = 30;
    public int DeployedWarmupSeconds { get; init; } = 15;
    public int DeployedRuns { get; init; } = 3;
    /// <summary>latency-deployed: partition_poll_interval of the node (Centrifugo's default).</summary>
    public string DeployedPoll { get; init; } = "300ms";
    /// <summary>latency-deployed: the producer's sessions keep synchronous_commit on (a WAL flush per commit).</summary>
    public bool DeployedSyncCommit { get; init; }
    /// <summary>latency-deployed: a second trigger + listener in the harness times NOTIFY itself (adds a NOTIFY per row).</summary>
    public bool DeployedProbe { get; init; }
    /// <summary>latency-deployed: print latency buckets and the slowest rows of each run (stderr).</summary>
    public bool DeployedDetail { get; init; }
    /// <summary>latency-deployed: load pg_stat_statements and print statements/s per statement and PostgreSQL CPU per session
    /// kind.</summary>
    public bool DeployedStatements { get; init; }
    /// <summary>latency-deployed: run a node (off = the producer and the NOTIFY probe only: the floor without the node's load).</summary>
    public bool DeployedNode { get; init; } = true;
    /// <summary>latency-deployed: the producer keeps Npgsql's pool defaults (DISCARD ALL per transaction, INSERT not prepared).</summary>
    public bool DeployedProducerReset { get; init; }
    /// <summary>latency-deployed: environment variables of the node process (experiments: DOTNET_* runtime knobs).</summary>
    public IReadOnlyDictionary<string, string?> DeployedNodeEnvironment { get; init; } = new Dictionary<string, string?>();
    public int MemorySeconds { get; init; } = 30;
    public int IdlePartitions { get; init; } = 1000;
    public int IdleSeconds { get; init; } = 60;
    /// <summary>cluster mode: kills and SIGTERMs per source.</summary>
    public int ClusterRounds { get; init; } = 5;
    /// <summary>cluster mode: what to run (failover = PostgreSQL, kafka, big = 1,000 partitions, throughput).</summary>
    public IReadOnlyList<string> ClusterSections { get; init; } = ["failover", "kafka", "big", "throughput"];
    /// <summary>cluster mode: commands/s per partition written during the fail-over runs (the issue's load).</summary>
    public int ClusterRate { get; init; } = 25;
    /// <summary>cluster mode: the stand-in fails every Nth command with error 100 during the fail-over runs; 0 = never.</summary>
    public int ClusterFailEvery { get; init; } = 60;
    /// <summary>cluster mode, kafka section: the group protocol of the nodes (consumer = KIP-848, or classic).</summary>
    public string ClusterKafkaProtocol { get; init; } = "consumer";
    public int ClusterBacklog { get; init; } = 200_000;
    public int ClusterIdleSeconds { get; init; } = 20;
    public int ClusterBigSpreadSeconds { get; init; } = 120;
    /// <summary>Node configurations of the kafka mode: max_poll_records, api max_batch_size, partition_queue_max_size, fetch_max_wait
    /// (ms).</summary>
    public IReadOnlyList<KafkaVariant> KafkaVariants { get; init; } = [new(100, 100), new(1000, 1000), new(100, 100, 1000)];

    public const string Usage =
        """
        usage: Centrifugo.Actors.Benchmarks <mode> [options]
          modes: outbox | latency | memory | idle | all (= these four) | kafka | profile | errorrate | cluster | latency-deployed
          --rows N             outbox backlog per run (default 1000000)
          --limits A,B         partition_select_limit values (default 100,1000)
          --rounds N           interleaved rounds, medians reported (default 3)
          --warmup-rows N      unmeasured end-to-end + raw pass per limit before the rounds, so the JIT has
                               compiled the node's hot code (default 500000; 0 = none)
          --partitions N       outbox partitions (default 8)
          --naive-rows N       backlog of the naive one-POST-per-row worker (default 100000)
          --max-batch-size N   api.max_batch_size of the end-to-end node (default: the select limit, i.e. one /batch per read)
          --errorrate-rows N   errorrate: backlog of the one partition (default 30000; uses the first --limits value)
          --errorrate-every N,… errorrate: error 100 on 1 command in N, per rate measured (default 100,60,50; plus the 0 % baseline)
          --latency-rate N     inserts/s for the NOTIFY latency run (default 1000)
          --latency-seconds N  duration of the latency run (default 20)
          --deployed-seconds N          latency-deployed: measured seconds per run (default 30; rate = --latency-rate)
          --deployed-warmup-seconds N   latency-deployed: uncounted seconds at the start of each run (default 15: tiered JIT of the fresh node)
          --deployed-runs N             latency-deployed: runs, each with a fresh node, sink and table (default 3)
          --deployed-poll D             latency-deployed: the node's partition_poll_interval (default 300ms)
          --deployed-sync-commit on|off latency-deployed: producer sessions keep synchronous_commit on (default off)
          --deployed-probe on|off       latency-deployed: also time NOTIFY itself with a second trigger + listener (default off)
          --deployed-detail on|off      latency-deployed: latency buckets and the slowest rows per run, on stderr (default off)
          --deployed-statements on|off  latency-deployed: load pg_stat_statements; statements/s and PostgreSQL CPU per session kind (default off)
          --deployed-node on|off        latency-deployed: off = no node, producer + NOTIFY probe only (the floor; implies the probe)
          --deployed-producer-reset on|off  latency-deployed: producer sessions reset per transaction, INSERT unprepared (Npgsql defaults; default off)
          --deployed-node-env K=V,…     latency-deployed: environment of the node process (e.g. DOTNET_TieredPGO=0)
          --memory-seconds N   how long RSS is sampled with Centrifugo stalled (default 30)
          --idle-partitions N  partitions of the idle-cost run (default 1000)
          --idle-seconds N     measuring window of each idle configuration (default 60)
          --kafka-variants L   kafka node configurations PxB[xQ[xW]]: max_poll_records, max_batch_size, partition_queue_max_size
                               (default 10000), fetch_max_wait ms (default 500) (default 100x100,1000x1000,100x100x1000)
          --cluster-sections L   cluster mode parts (default failover,kafka,big,throughput)
          --cluster-rounds N     kills and SIGTERMs per source in the cluster mode (default 5)
          --cluster-rate N       commands/s per partition during the fail-over runs (default 25)
          --cluster-fail-every N error 100 on every Nth command during the fail-over runs (default 60; 0 = none)
          --cluster-kafka-protocol P  group protocol of the kafka section: consumer (KIP-848, default) or classic
          --cluster-backlog N    rows of the 1-vs-3-nodes throughput backlog (default 200000)
          --cluster-idle-seconds N        CPU window of the 1,000-partition cluster (default 20)
          --cluster-big-spread-seconds N  how long to wait for its even spread (default 120)
        """;

    /// <exception cref="ArgumentException">Unknown option or bad value (message says which).</exception>
    public static BenchOptions Parse(string[] args)
    {
        if (args.Length == 0 || args[0].StartsWith('-'))
        {
            throw new ArgumentException("missing mode");
        }

        var options = new BenchOptions { Mode = args[0] };
        for (var i = 1; i < args.Length; i += 2)
        {
            var name = args[i];
            var value = i + 1 < args.Length ? args[i + 1] : throw new ArgumentException($"{name} needs a value");
            options = name switch
            {
                "--rows" => options with { Rows = Int(name, value) },
                "--limits" => options with { Limits = value.Split(',').Select(v => Int(name, v)).ToArray() },
                "--rounds" => options with { Rounds = Int(name, value) },
                "--warmup-rows" => options with { WarmupRows = Int(name, value, allowZero: true) },
                "--partitions" => options with { Partitions = Int(name, value) },
                "--naive-rows" => options with { NaiveRows = Int(name, value) },
                "--max-batch-size" => options with { MaxBatchSize = Int(name, value) },
                "--errorrate-rows" => options with { ErrorRateRows = Int(name, value) },
                "--errorrate-every" => options with { ErrorRateEvery = value.Split(',').Select(v => Int(name, v)).ToArray() },
                "--latency-rate" => options with { LatencyRate = Int(name, value) },
                "--latency-seconds" => options with { LatencySeconds = Int(name, value) },
                "--deployed-seconds" => options with { DeployedSeconds = Int(name, value) },
                "--deployed-warmup-seconds" => options with { DeployedWarmupSeconds = Int(name, value, allowZero: true) },
                "--deployed-runs" => options with { DeployedRuns = Int(name, value) },
                "--deployed-poll" => options with { DeployedPoll = value },
                "--deployed-sync-commit" => options with { DeployedSyncCommit = OnOff(name, value) },
                "--deployed-probe" => options with { DeployedProbe = OnOff(name, value) },
                "--deployed-detail" => options with { DeployedDetail = OnOff(name, value) },
                "--deployed-statements" => options with { DeployedStatements = OnOff(name, value) },
                "--deployed-node" => options with { DeployedNode = OnOff(name, value) },
                "--deployed-producer-reset" => options with { DeployedProducerReset = OnOff(name, value) },
                "--deployed-node-env" => options with
                {
                    DeployedNodeEnvironment = value.Split(',').Select(kv => kv.Split('=', 2)).ToDictionary(
                        kv => kv[0],
                        kv => kv.Length == 2 ? kv[1] : throw new ArgumentException($"{name}: '{string.Join('=', kv)}' is not KEY=VALUE"),
                        StringComparer.Ordinal)!,
                },
                "--memory-seconds" => options with { MemorySeconds = Int(name, value) },
                "--idle-partitions" => options with { IdlePartitions = Int(name, value) },
                "--idle-seconds" => options with { IdleSeconds = Int(name, value) },
                "--cluster-sections" => options with { ClusterSections = value.Split(',') },
                "--cluster-rounds" => options with { ClusterRounds = Int(name, value) },
                "--cluster-rate" => options with { ClusterRate = Int(name, value) },
                "--cluster-fail-every" => options with { ClusterFailEvery = Int(name, value, allowZero: true) },
                "--cluster-kafka-protocol" => options with { ClusterKafkaProtocol = value },
                "--cluster-backlog" => options with { ClusterBacklog = Int(name, value) },
                "--cluster-idle-seconds" => options with { ClusterIdleSeconds = Int(name, value) },
                "--cluster-big-spread-seconds" => options with { ClusterBigSpreadSeconds = Int(name, value) },
                "--kafka-variants" => options with { KafkaVariants = value.Split(',').Select(v => Variant(name, v)).ToArray() },
                _ => throw new ArgumentException($"unknown option {name}"),
            };
        }

        return options;
    }

    private static KafkaVariant Variant(string name, string value) => value.Split('x') switch
    {
        [var poll, var batch] => new(Int(name, poll), Int(name, batch)),
        [var poll, var batch, var queue] => new(Int(name, poll), Int(name, batch), Int(name, queue)),
        [var poll, var batch, var queue, var wait] => new(Int(name, poll), Int(name, batch), Int(name, queue), Int(name, wait)),
        _ => throw new ArgumentException(
            $"{name}: '{value}' is not <max_poll_records>x<max_batch_size>[x<partition_queue_max_size>[x<fetch_max_wait_ms>]]"),
    };

    private static bool OnOff(string name, string value) => value switch
    {
        "on" => true,
        "off" => false,
        _ => throw new ArgumentException($"{name}: '{value}' is not on or off"),
    };

    private static int Int(string name, string value, bool allowZero = false) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && (n > 0 || (allowZero && n == 0))
            ? n
            : throw new ArgumentException($"{name}: '{value}' is not a {(allowZero ? "non-negative" : "positive")} integer");
}

/// <summary>One node configuration of the kafka mode (the defaults are Centrifugo's).</summary>
internal sealed record KafkaVariant(int MaxPollRecords, int MaxBatchSize, int QueueMaxSize = 10_000, int FetchMaxWaitMs = 500)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"poll {MaxPollRecords} / batch {MaxBatchSize}{(QueueMaxSize == 10_000 ? "" : $" / queue {QueueMaxSize}")}" +
        $"{(FetchMaxWaitMs == 500 ? "" : $" / wait {FetchMaxWaitMs} ms")}");
}
