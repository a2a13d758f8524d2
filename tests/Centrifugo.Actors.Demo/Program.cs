using System.Diagnostics;
using System.Text.Json;
using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Demo;
using Centrifugo.Actors.Hosting;
using Centrifugo.Actors.Host;
using Centrifugo.Actors.Testing.Kafka;
using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.StandIn;
using Microsoft.Extensions.Logging;
using Npgsql;

// The README's first command. Everything runs on loopback in this process except PostgreSQL (a private
// server in a temp dir): the outbox table + NOTIFY trigger, librdkafka's mock Kafka cluster, a Centrifugo stand-in,
// one Centrifugo.Actors node, producers inserting sample commands across 8 outbox partitions and a producer writing
// envelope-mode commands to a 4-partition Kafka topic (a few poison messages among both).
var seconds = args.Length >= 2 && args[0] == "--seconds" ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 0;
using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Cancel(); };
using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(
    System.Runtime.InteropServices.PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; stop.Cancel(); });
const int partitions = 8;
Console.WriteLine("Starting a private PostgreSQL server …");
await using var pg = await PostgresInstance.StartAsync();
var dsn = pg.GetUrlDsn("postgres");
await using (var conn = new NpgsqlConnection(pg.GetConnectionString("postgres")))
{
    await conn.OpenAsync();
    await using var cmd = new NpgsqlCommand(DemoSql.Schema, conn);
    await cmd.ExecuteNonQueryAsync();
}

Console.WriteLine("Starting an in-process mock Kafka cluster …");
const int kafkaPartitions = 4;
const string kafkaTopic = "demo-commands";
using var kafka = KafkaMockCluster.Create(brokers: 3);
kafka.CreateTopic(kafkaTopic, kafkaPartitions);
kafka.CreateTopic(kafkaTopic + ".dead_letter", 1);

Console.WriteLine("Starting the Centrifugo stand-in …");
await using var standIn = await CentrifugoStandIn.StartNewAsync(new StandInOptions());

var configPath = Path.Combine(Path.GetTempPath(), $"centrifugo-actors-demo-{Environment.ProcessId}.json");
await File.WriteAllTextAsync(configPath, JsonSerializer.Serialize(new
{
    api = new { url = standIn.Url, key = standIn.ApiKey, timeout = "5s", max_batch_size = 100 },
    consumers = new object[]
    {
        new
        {
            name = "pg_main",
            type = "postgresql",
            enabled = true,
            postgresql = new
            {
                dsn,
                outbox_table_name = "centrifugo_outbox",
                num_partitions = partitions,
                partition_select_limit = 100,
                partition_poll_interval = "300ms",
                partition_notification_channel = "centrifugo_partition_change",
            },
        },
        new
        {
            name = "kafka_main",
            type = "kafka",
            enabled = true,
            kafka = new
            {
                brokers = new[] { kafka.Bootstrap },
                topics = new[] { kafkaTopic },
                consumer_group = "centrifugo-actors-demo",
                max_poll_records = 100,
                fetch_max_wait = "100ms",
            },
        },
    },
    cluster = new { hostname = "127.0.0.1", port = 0, seed_nodes = Array.Empty<string>() },
    admin = new { address = "127.0.0.1:9110" },
}, new JsonSerializerOptions { WriteIndented = true }));

var options = ConfigLoader.Load(configPath, new Dictionary<string, string>());
Console.WriteLine("Effective configuration (secrets redacted):");
Console.WriteLine(ConfigLoader.ToRedactedJson(options));

using var loggerFactory = LoggerFactory.Create(b => b
    .SetMinimumLevel(LogLevel.Warning)
    .AddFilter("Centrifugo.Actors", LogLevel.Information)
    .AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; }));
NodeRuntime? started = null;
Microsoft.AspNetCore.Builder.WebApplication node;
try
{
    started = await NodeRuntime.StartAsync(options, loggerFactory, stop.Token);
    node = NodeHost.Build(started, loggerFactory);
    await node.StartAsync(stop.Token);
}
catch (OperationCanceledException) when (stop.IsCancellationRequested)
{
    // Ctrl-C or SIGTERM during the set-up: leave quietly (the private PostgreSQL and broker are disposed below).
    Console.WriteLine("Stopped before the node was up.");
    if (started is not null)
    {
        await started.DisposeAsync();
    }
    return 1;
}
var runtime = started;
await using var runtimeScope = runtime;
// --seconds counts from here: the set-up above (initdb, the broker, the node) takes longer on a busy machine.
if (seconds > 0)
{
    stop.CancelAfter(TimeSpan.FromSeconds(seconds));
}
Console.WriteLine($"Node up. Admin: http://{options.Admin.Address}/status/partitions  /metrics  /health/ready");
Console.WriteLine("Producing commands (every 499th row and every 251st Kafka message is poison: an unsupported method). Ctrl-C to stop.\n");

var producer = new DemoProducer(pg.GetConnectionString("postgres"), partitions);
var produce = producer.RunAsync(ratePerSecond: 400, stop.Token);
var kafkaProducer = new DemoKafkaProducer(kafka.Bootstrap, kafkaTopic, kafkaPartitions);
var produceKafka = kafkaProducer.RunAsync(ratePerSecond: 200, stop.Token);
var watch = Stopwatch.StartNew();
try
{
    while (!stop.IsCancellationRequested)
    {
        await Task.Delay(TimeSpan.FromSeconds(1), stop.Token);
        await PrintProgressAsync();
    }
}
catch (OperationCanceledException)
{
}

await produce;
await produceKafka;
Console.WriteLine("\nStopping: waiting for the outbox to drain (10 s at most) …");
using (var drain = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
{
    while (!drain.IsCancellationRequested
        && (await producer.PendingAsync(CancellationToken.None) > 0
            || kafkaProducer.Delivered(standIn) < kafkaProducer.Produced - kafkaProducer.Poison))
    {
        await Task.Delay(200, CancellationToken.None);
    }
}
await PrintProgressAsync();
await node.StopAsync(CancellationToken.None);
await node.DisposeAsync();
File.Delete(configPath);
var violations = producer.OrderViolations(standIn) + kafkaProducer.OrderViolations(standIn);
Console.WriteLine(violations == 0 ? "Order per channel: OK" : $"Order violations: {violations}");
return violations == 0 && standIn.ReceivedCount > 0 ? 0 : 1;

async Task PrintProgressAsync()
{
    var pending = await producer.PendingAsync(CancellationToken.None);
    var dead = await producer.DeadLettersAsync(CancellationToken.None);
    var pgCounts = Enumerable.Range(0, partitions).Select(p => standIn.ReceivedFor($"demo:p{p}").Count).ToArray();
    var perPartition = string.Join(" ", pgCounts.Select((c, p) => $"p{p}={c}"));
    var kafkaPerPartition = string.Join(" ",
        Enumerable.Range(0, kafkaPartitions).Select(p => $"k{p}={standIn.ReceivedFor($"kdemo:p{p}").Count}"));
    Console.WriteLine($"[{watch.Elapsed:mm\\:ss}] postgresql produced={producer.Produced} delivered={pgCounts.Sum()} pending={pending} " +
        $"dead_letters={dead} | {perPartition}");
    Console.WriteLine($"[{watch.Elapsed:mm\\:ss}] kafka produced={kafkaProducer.Produced} delivered={kafkaProducer.Delivered(standIn)} " +
        $"poison={kafkaProducer.Poison} | {kafkaPerPartition}");
}
