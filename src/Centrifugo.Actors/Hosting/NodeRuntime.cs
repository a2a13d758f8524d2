using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Delivery;
using Centrifugo.Actors.Diagnostics;
using Centrifugo.Actors.Kafka;
using Centrifugo.Actors.Outbox;
using Centrifugo.Actors.Partitions;
using Centrifugo.Actors.Sharding;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Hosting;

/// <summary>
/// The non-actor parts of a node, built and checked before the actor system starts (fail loudly at start-up,
/// like Centrifugo: an unreachable database, a missing outbox table or no reachable Kafka broker stops the node with a
/// clear message).
/// </summary>
internal sealed class NodeRuntime : IAsyncDisposable
{
    private NodeRuntime(
        NodeOptions options,
        CentrifugoClient client,
        IReadOnlyDictionary<string, OutboxConsumerRuntime> outbox,
        IReadOnlyDictionary<string, KafkaConsumerRuntime> kafka,
        ILoggerFactory loggerFactory)
    {
        Options = options;
        Client = client;
        Outbox = outbox;
        Kafka = kafka;
        LoggerFactory = loggerFactory;
        Catalogs = outbox.Values.Select(IPartitionCatalog (r) => new OutboxPartitionCatalog(r))
            .Concat(kafka.Values.Select(IPartitionCatalog (r) => new KafkaPartitionCatalog(r)))
            .ToArray();
    }

    public NodeOptions Options { get; }
    public CentrifugoClient Client { get; }
    public IReadOnlyDictionary<string, OutboxConsumerRuntime> Outbox { get; }
    public IReadOnlyDictionary<string, KafkaConsumerRuntime> Kafka { get; }
    public ILoggerFactory LoggerFactory { get; }
    public PartitionStatusBoard Board { get; } = new();

    /// <summary>The cluster-wide set of paused partitions (Distributed Data), as this node sees it.</summary>
    public PausedPartitions Paused { get; } = new();

    /// <summary>Every partition of this configuration (the admin endpoint lists them; keepers run the outbox's).</summary>
    public IReadOnlyList<IPartitionCatalog> Catalogs { get; }

    /// <summary>The session of the PostgreSQL failure detector (<see cref="PostgresLiveness"/>); null when it is off.</summary>
    public Npgsql.NpgsqlDataSource? Liveness { get; private init; }

    /// <summary>How long a partition may finish its in-flight batch on hand-off/shutdown. Default 10 s.</summary>
    public static TimeSpan DrainTimeout { get; } = TimeSpan.FromSeconds(10);

    public static async Task<NodeRuntime> StartAsync(NodeOptions options, ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        var client = new CentrifugoClient(options.Api, loggerFactory.CreateLogger<CentrifugoClient>());
        var outbox = new Dictionary<string, OutboxConsumerRuntime>(StringComparer.Ordinal);
        var kafka = new Dictionary<string, KafkaConsumerRuntime>(StringComparer.Ordinal);
        try
        {
            var enabled = options.Consumers.Where(c => c.Enabled).ToArray();
            OutboxHosting.CheckLockKeysAreDistinct(enabled.OfType<PostgresConsumer>().Select(c => c.Name));
            StartupHints.Log(loggerFactory.CreateLogger("Centrifugo.Actors.Hosting"), options);
            foreach (var consumer in enabled.OfType<PostgresConsumer>())
            {
                ConsumerMetrics.Initialise(consumer.Name);
                MeteredCentrifugoClient.Initialise(consumer.Name);
                outbox[consumer.Name] = await OutboxHosting.StartConsumerAsync(consumer.Name, consumer.Postgresql, options.Api,
                    new MeteredCentrifugoClient(client, consumer.Name), DrainTimeout, loggerFactory, cancellationToken);
            }
            foreach (var consumer in enabled.OfType<KafkaConsumer>())
            {
                ConsumerMetrics.Initialise(consumer.Name);
                MeteredCentrifugoClient.Initialise(consumer.Name);
                kafka[consumer.Name] = await KafkaHosting.StartConsumerAsync(consumer.Name, consumer.Kafka,
                    new MeteredCentrifugoClient(client, consumer.Name), options.Cluster.PodName, DrainTimeout, loggerFactory,
                    cancellationToken);
            }
            return new NodeRuntime(options, client, outbox, kafka, loggerFactory)
            {
                Liveness = PostgresLiveness.DataSourceFor(options, loggerFactory),
            };
        }
        catch
        {
            foreach (var r in outbox.Values)
            {
                await r.Store.DisposeAsync();
            }
            foreach (var r in kafka.Values)
            {
                await r.DisposeAsync();
            }
            client.Dispose();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Liveness is not null)
        {
            await Liveness.DisposeAsync();
        }
        foreach (var r in Outbox.Values)
        {
            await r.Store.DisposeAsync();
        }
        foreach (var r in Kafka.Values)
        {
            await r.DisposeAsync();
        }
        Client.Dispose();
    }
}
