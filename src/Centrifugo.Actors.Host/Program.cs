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

var checkConfig = new Command("check-config", "Validate the configuration and print the effective one with every secret redacted.") { configOption };
checkConfig.SetAction(parseResult =>
    CheckConfigCommand.Run(parseResult.GetValue(configOption)!.FullName, Console.Out, Console.Error));

var adminOption = new Option<string>("--admin", "-a")
{
    Description = "Admin endpoint of any node (http://host:port).",
    DefaultValueFactory = _ => "http://127.0.0.1:9110",
};
var status = new Command("status", "Show the cluster and every partition in it: node, state, delivered, dead letters, errors, lag.") { adminOption };
status.SetAction((parseResult, cancellationToken) =>
    StatusCommand.RunAsync(parseResult.GetValue(adminOption)!, Console.Out, Console.Error, cancellationToken));

var root = new RootCommand("Centrifugo.Actors: delivers Centrifugo server-API commands from PostgreSQL outbox tables and Kafka topics.")
{
    run,
    checkConfig,
    status,
};

// The generic host handles SIGTERM/SIGINT itself (graceful drain through CoordinatedShutdown), so
// System.CommandLine must not race it with its own termination timeout.
return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });
