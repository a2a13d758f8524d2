using Centrifugo.Actors.Benchmarks;

if (args is [LatencySink.Verb, ..])
{
    return await LatencySink.RunAsync(args); // the Centrifugo process of latency-deployed
}

BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    Console.Error.WriteLine(BenchOptions.Usage);
    return 2;
}

using var cts = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cts.Cancel();
};

// One mode = one entry; `all` runs the PostgreSQL modes in this order. `kafka` (~4.5 min) and `cluster` are left out of `all`.
var modes = new Dictionary<string, Func<BenchEnvironment, BenchOptions, CancellationToken, Task>>(StringComparer.Ordinal)
{
    ["outbox"] = OutboxThroughputBench.RunAsync,
    ["latency"] = LatencyBench.RunAsync,
    ["memory"] = MemoryBench.RunAsync,
    ["idle"] = IdleBench.RunAsync,
    ["profile"] = ProfileBench.RunAsync,
    ["kafka"] = KafkaEndToEndBench.RunAsync,
    ["errorrate"] = ErrorRateBench.RunAsync,
    ["cluster"] = ClusterBench.RunAsync,
    ["latency-deployed"] = LatencyDeployedBench.RunAsync,
};

IReadOnlyList<string> selected = options.Mode == "all" ? ["outbox", "latency", "memory", "idle"] : [options.Mode];
if (selected.Any(m => !modes.ContainsKey(m)))
{
    Console.Error.WriteLine($"unknown mode {options.Mode}");
    Console.Error.WriteLine(BenchOptions.Usage);
    return 2;
}

await using var environment = await BenchEnvironment.StartAsync(cts.Token,
    options.DeployedStatements ? ["shared_preload_libraries = 'pg_stat_statements'", "pg_stat_statements.track = 'all'"] : null);
Console.WriteLine($"arguments: {string.Join(' ', args)}");
Console.WriteLine(await environment.DescribeMachineAsync(cts.Token));
foreach (var mode in selected)
{
    await modes[mode](environment, options, cts.Token);
}

return 0;
