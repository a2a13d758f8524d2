using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Hosting;
using Centrifugo.Actors.Host;
using Centrifugo.Actors.Partitions;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.Node;

/// <summary>A whole node (runtime + actor system + admin endpoint) in this process, on ephemeral loopback ports.</summary>
internal sealed class TestNode : IAsyncDisposable
{
    private readonly NodeRuntime _runtime;
    private readonly WebApplication _app;

    private TestNode(NodeRuntime runtime, WebApplication app, CapturingLoggerProvider logs)
    {
        _runtime = runtime;
        _app = app;
        Logs = logs;
    }

    public CapturingLoggerProvider Logs { get; }
    public NodeRuntime Runtime => _runtime;
    public PartitionStatusBoard Board => _runtime.Board;
    public IServiceProvider Services => _app.Services;
    public string AdminUrl => _app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>()
        .Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()!.Addresses.First();

    /// <summary>Starts with every node log line also written to the test's output (shown when the test fails).</summary>
    public static Task<TestNode> StartAsync(NodeOptions options, ITestOutputHelper output, CancellationToken cancellationToken = default) =>
        StartAsync(options, new CapturingLoggerProvider(output.WriteLine), cancellationToken);

    /// <summary>Starts with the caller's log capture (to inspect the logs of a node that refused to start).</summary>
    public static async Task<TestNode> StartAsync(
        NodeOptions options, CapturingLoggerProvider logs, CancellationToken cancellationToken = default)
    {
        var loggerFactory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(logs));
        NodeRuntime runtime;
        try
        {
            runtime = await NodeRuntime.StartAsync(options, loggerFactory, cancellationToken);
        }
        catch
        {
            loggerFactory.Dispose();
            throw;
        }
        var app = NodeHost.Build(runtime, loggerFactory);
        await app.StartAsync(cancellationToken);
        return new TestNode(runtime, app, logs);
    }

    public static NodeOptions Options(string apiUrl, string apiKey, params ConsumerOptions[] consumers) => new()
    {
        Api = new ApiOptions { Url = apiUrl, Key = apiKey, Timeout = TimeSpan.FromSeconds(2), MaxBatchSize = 100 },
        Consumers = consumers,
        Cluster = new ClusterOptions { Hostname = "127.0.0.1", Port = 0, NumberOfShards = 20 },
        Admin = new AdminOptions { Address = "127.0.0.1:0" },
    };

    public static PostgresConsumer Postgres(string name, string dsn, string table, int partitions = 4, TimeSpan? poll = null,
        string channel = "", int selectLimit = 100) => new()
    {
        Name = name,
        Postgresql = new PostgresConsumerOptions
        {
            Dsn = dsn,
            OutboxTableName = table,
            DeadLetterTableName = table + "_dead_letter",
            NumPartitions = partitions,
            PartitionSelectLimit = selectLimit,
            PartitionPollInterval = poll ?? TimeSpan.FromMilliseconds(50),
            PartitionNotificationChannel = channel,
        },
    };

    public static KafkaConsumer Kafka(string name, string bootstrap, string group, params string[] topics) => new()
    {
        Name = name,
        Kafka = new KafkaConsumerOptions
        {
            Brokers = [bootstrap],
            Topics = topics,
            ConsumerGroup = group,
            FetchMaxWait = TimeSpan.FromMilliseconds(50),
        },
    };

    /// <summary>Waits until every expected partition entity runs here and finished its first pass.</summary>
    public Task WaitForPartitionsAsync(int count, TimeSpan? timeout = null) =>
        Poll.UntilAsync(
            () => Board.Snapshot().Count(s => s.State is PartitionState.Idle or PartitionState.Delivering) >= count,
            $"{count} partitions running", timeout ?? TimeSpan.FromSeconds(30));

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync(CancellationToken.None);
        await _app.DisposeAsync();
        await _runtime.DisposeAsync();
        _runtime.LoggerFactory.Dispose();
    }
}
