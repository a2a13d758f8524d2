using System.CommandLine;
using Centrifugo.Actors.Host;

var configOption = new Option<FileInfo>("--config", "-c")
{
    Description = "Path to the JSON configuration (Centrifugo's `consumers` format plus api/cluster/admin).",
    Required = true,
};

var run = new Command("run", "Start a node: join (or form) the cluster and consume the configured sources.") { configOption };
run.SetAction((parseResult, cancellationToken) =>
    NodeHost.RunAsync(parseResult.GetValue(configOption)!.FullName, cancellationToken));

var checkConfig = new Command("check-config", "Validate the configuration and print the effective one with every secret redacted.")
    { configOption };
checkConfig.SetAction(parseResult =>
    CheckConfigCommand.Run(parseResult.GetValue(configOption)!.FullName, Console.Out, Console.Error));

var adminOption = new Option<string>("--admin", "-a")
{
    Description = $"Admin endpoint of any node (http://host:port). Default: ${AdminClient.UrlVariable} or {AdminClient.DefaultUrl}. " +
                  $"Mutating verbs send ${AdminClient.TokenVariable} as a bearer token.",
    DefaultValueFactory = _ => AdminClient.DefaultAdminUrl(),
    Recursive = true,
};
var jsonOption = new Option<bool>("--json") { Description = "Print JSON instead of a table." };
var watchOption = new Option<bool>("--watch", "-w") { Description = "Refresh every 2 s until Ctrl-C." };
var yesOption = new Option<bool>("--yes", "-y") { Description = "Do not ask for confirmation." };
var consumerOption = new Option<string?>("--consumer") { Description = "Only this consumer's partitions." };
var stateOption = new Option<string?>("--state")
    { Description = "Only partitions in this state (idle, delivering, retrying, stalled, paused, unreachable, ...)." };
var addressArgument = new Argument<string>("ADDRESS") { Description = "Member address, akka.tcp://system@host:port." };
var optionalAddressArgument = new Argument<string?>("ADDRESS")
    { Description = "Member address (default: the node behind --admin).", Arity = ArgumentArity.ZeroOrOne };
var idArgument = new Argument<string>("ID")
    { Description = "Partition id: pg:<consumer>:<partition> or kafka:<consumer>:<topic>:<partition>." };

var tokenFileOption = new Option<FileInfo?>("--token-file")
{
    Description = $"Read the bearer token from this file (a mounted Kubernetes Secret) instead of ${AdminClient.TokenVariable}. " +
                  $"Default: ${AdminClient.TokenFileVariable}.",
    Recursive = true,
};
// Every admin verb: a client of --admin with the token, the console, and --watch (every 2 s) where the verb has it.
async Task<int> Verb(ParseResult r, CancellationToken ct, Func<VerbContext, Task<int>> once, bool watch = false)
{
    AdminClient admin;
    try
    {
        admin = new AdminClient(r.GetValue(adminOption)!, AdminClient.Token(r.GetValue(tokenFileOption)?.FullName));
    }
    catch (AdminUsageException ex)
    {
        await Console.Error.WriteLineAsync(ex.Message);
        return AdminCli.Usage;
    }
    using (admin)
    {
        return await AdminCli.RunAsync(VerbContext.Create(admin, Console.Out, Console.Error, Console.In, ct), once,
            watch ? TimeSpan.FromSeconds(2) : null);
    }
}

var status = new Command("status", "Show the cluster and every partition in it (`cluster show` and `partitions list` on one screen).");
status.SetAction((r, ct) => Verb(r, ct, AdminCli.StatusAsync));

var clusterShow = new Command("show", "Members (status, roles, reachability), the leader and this node. Exit 3 if a member is unreachable.")
    { jsonOption, watchOption };
clusterShow.SetAction((r, ct) => Verb(r, ct, v => AdminCli.ClusterShowAsync(v, r.GetValue(jsonOption)), r.GetValue(watchOption)));
var clusterLeave = new Command("leave", "Make a member leave the cluster gracefully (its partitions are handed off).")
    { optionalAddressArgument, yesOption };
clusterLeave.SetAction((r, ct) =>
    Verb(r, ct, v => AdminCli.ClusterActionAsync(v, "leave", r.GetValue(optionalAddressArgument), r.GetValue(yesOption))));
var clusterDown = new Command("down", "Mark a member down (removes an unreachable/zombie member; it must not come back).")
    { addressArgument, yesOption };
clusterDown.SetAction((r, ct) =>
    Verb(r, ct, v => AdminCli.ClusterActionAsync(v, "down", r.GetValue(addressArgument), r.GetValue(yesOption))));
var clusterDownUnreachable = new Command("down-unreachable", "Mark every member this node sees as unreachable down (pbm's verb).")
    { yesOption };
clusterDownUnreachable.SetAction((r, ct) => Verb(r, ct, v => AdminCli.DownUnreachableAsync(v, r.GetValue(yesOption))));
// pbm's names for the shard statistics, beside our own `shards`.
Command ShardsAlias(string name) => new(name, "The same as `shards` (pbm's name).") { jsonOption };
var shardingRegions = ShardsAlias("regions");
var shardStats = ShardsAlias("shard-stats");
var clusterSharding = new Command("sharding", "Cluster sharding (pbm's names).") { shardingRegions, shardStats };
var cluster = new Command("cluster", "Cluster membership.")
    { clusterShow, clusterLeave, clusterDown, clusterDownUnreachable, clusterSharding };

var shards = new Command("shards", "Shards and partitions hosted per node (Akka's GetClusterShardingStats).") { jsonOption };
foreach (var command in new[] { shards, shardingRegions, shardStats })
{
    command.SetAction((r, ct) => Verb(r, ct, v => AdminCli.ShardsAsync(v, r.GetValue(jsonOption))));
}

var partitionsList = new Command("list",
    "Every partition in the cluster: owner node, state, counters, lag, last error. Exit 3 if one is stalled or unreachable.")
    { consumerOption, stateOption, jsonOption, watchOption };
partitionsList.SetAction((r, ct) =>
{
    var rates = new DeliveryRates();
    return Verb(r, ct,
        v => AdminCli.PartitionsListAsync(v, r.GetValue(consumerOption), r.GetValue(stateOption), r.GetValue(jsonOption), rates),
        r.GetValue(watchOption));
});
var partitionsShow = new Command("show", "One partition in detail.") { idArgument, jsonOption };
partitionsShow.SetAction((r, ct) => Verb(r, ct, v => AdminCli.PartitionsShowAsync(v, r.GetValue(idArgument)!, r.GetValue(jsonOption))));
var partitionsPause = new Command("pause",
    "Pause a partition cluster-wide: its in-flight batch finishes, nothing new starts; it stays paused across hand-off and " +
    "restart of its node. Returns when the owning entity confirmed (exit 0), exit 3 if it did not in time.")
    { idArgument, jsonOption };
partitionsPause.SetAction((r, ct) =>
    Verb(r, ct, v => AdminCli.PartitionPauseAsync(v, r.GetValue(idArgument)!, pause: true, r.GetValue(jsonOption))));
var partitionsResume = new Command("resume", "Resume a paused partition; returns when the owning entity confirmed.")
    { idArgument, jsonOption };
partitionsResume.SetAction((r, ct) =>
    Verb(r, ct, v => AdminCli.PartitionPauseAsync(v, r.GetValue(idArgument)!, pause: false, r.GetValue(jsonOption))));
var partitions = new Command("partitions", "Partition entities.") { partitionsList, partitionsShow, partitionsPause, partitionsResume };

var dlConsumerOption = new Option<string?>("--consumer") { Description = "Only this consumer." };
var limitOption = new Option<int>("--limit")
{
    Description = "At most this many dead letters per consumer (oldest first).",
    DefaultValueFactory = _ => DeadLettersRequest.DefaultLimit
};
var deadLettersList = new Command("list",
    "Dead letters, oldest first: outbox rows (id, partition, method, reason, payload) and kafka dead-letter records " +
    "(source topic/partition/offset, reason).")
    { dlConsumerOption, limitOption, jsonOption };
deadLettersList.SetAction((r, ct) =>
    Verb(r, ct, v => AdminCli.DeadLettersListAsync(v, r.GetValue(dlConsumerOption), r.GetValue(limitOption), r.GetValue(jsonOption))));
var replayConsumerOption = new Option<string>("--consumer")
    { Description = "The consumer whose dead letters are replayed.", Required = true };
var idsOption = new Option<long[]>("--ids")
{
    Description = "Dead-letter ids to replay (space or comma separated).",
    AllowMultipleArgumentsPerToken = true,
    CustomParser = r =>
        r.Tokens.SelectMany(t => t.Value.Split(',', StringSplitOptions.RemoveEmptyEntries))
            .Select(v => long.Parse(v, System.Globalization.CultureInfo.InvariantCulture)).ToArray()
};
var allOption = new Option<bool>("--all") { Description = "Replay every dead letter of the consumer." };
var deadLettersReplay = new Command("replay",
    "Put dead letters back: outbox rows into the outbox (same partition, id order); " +
    "kafka records to their source topic-partition (offset order, --all only). Each at most once.")
    { replayConsumerOption, idsOption, allOption, jsonOption };
deadLettersReplay.SetAction((r, ct) => Verb(r, ct, v => AdminCli.DeadLettersReplayAsync(
    v, r.GetValue(replayConsumerOption)!, r.GetValue(idsOption) ?? [], r.GetValue(allOption), r.GetValue(jsonOption))));
var deadLetters = new Command("dead-letters", "Dead letters of the outbox and kafka consumers.") { deadLettersList, deadLettersReplay };

var levelArgument = new Argument<string>("LEVEL") { Description = "none, trace, debug, info, warn or error (Centrifugo's names)." };
var logLevel = new Command("log-level",
    "Set the minimum log level of the node behind --admin until the next change or restart (POST, token, logged).") { levelArgument };
logLevel.SetAction((r, ct) => Verb(r, ct, v => AdminCli.LogLevelAsync(v, r.GetValue(levelArgument)!)));

var root = new RootCommand("Centrifugo.Actors: delivers Centrifugo server-API commands from PostgreSQL outbox tables and Kafka topics.")
{
    run,
    checkConfig,
    status,
    cluster,
    shards,
    partitions,
    deadLetters,
    logLevel,
    adminOption,
    tokenFileOption,
};

// The generic host handles SIGTERM/SIGINT itself (graceful drain through CoordinatedShutdown), so
// System.CommandLine must not race it with its own termination timeout.
return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });
