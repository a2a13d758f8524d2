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
            CheckLockKeysAreDistinct(enabled);
            StartupHints.Log(loggerFactory.CreateLogger("Centrifugo.Actors.Hosting"), options);
            foreach (var consumer in enabled.OfType<PostgresConsumer>())
            {
                var pg = consumer.Postgresql;
                var store = new OutboxStore(consumer.Name, pg, loggerFactory,
                    TransactionFence.For(options.Api.Timeout, options.Api.MaxBatchSize, pg.PartitionSelectLimit));
                outbox[consumer.Name] = new OutboxConsumerRuntime(
                    consumer.Name, pg, store,
                    new OutboxBatchProcessor(store, new MeteredCentrifugoClient(client, consumer.Name), loggerFactory.CreateLogger("Centrifugo.Actors.Outbox")),
                    DrainTimeout);
                ConsumerMetrics.Initialise(consumer.Name);
                MeteredCentrifugoClient.Initialise(consumer.Name);
                try
                {
                    await store.InitializeAsync(cancellationToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    throw new StartupException($"in consumer {consumer.Name} (postgresql): {ex.Message}", ex);
                }
            }
            foreach (var consumer in enabled.OfType<KafkaConsumer>())
            {
                MeteredCentrifugoClient.Initialise(consumer.Name);
                kafka[consumer.Name] = await StartKafkaAsync(consumer.Name, consumer.Kafka, new MeteredCentrifugoClient(client, consumer.Name), options.Cluster.PodName, loggerFactory, cancellationToken);
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

    /// <summary>
    /// One hub and one dead-letter producer per kafka consumer, after a bounded metadata request: like Centrifugo's
    /// start-up ping (dial_timeout × brokers × 2), no answer from any broker refuses to start.
    /// </summary>
    private static async Task<KafkaConsumerRuntime> StartKafkaAsync(
        string name, KafkaConsumerOptions options, ICentrifugoClient client, string podName, ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        var hub = new KafkaConsumerHub(name, options, loggerFactory, podName);
        KafkaDeadLetterProducer? deadLetters = null;
        try
        {
            var timeout = PingTimeout(options);
            try
            {
                await hub.PingAsync(timeout, cancellationToken);
            }
            catch (Confluent.Kafka.KafkaException ex)
            {
                // Broker addresses and librdkafka's reason only: never SASL credentials.
                throw new StartupException(
                    $"in consumer {name} (kafka): no broker of {string.Join(",", options.Brokers)} answered within {timeout.TotalSeconds:0.#} s: {ex.Error.Reason}", ex);
            }
            deadLetters = new KafkaDeadLetterProducer(name, options, loggerFactory);
            ConsumerMetrics.Initialise(name);
            var processor = new KafkaRecordProcessor(name, options, client, deadLetters, loggerFactory.CreateLogger("Centrifugo.Actors.Kafka"));
            return new KafkaConsumerRuntime(name, options, hub, deadLetters, processor, DrainTimeout);
        }
        catch
        {
            await hub.DisposeAsync();
            deadLetters?.Dispose();
            throw;
        }
    }

    internal static TimeSpan PingTimeout(KafkaConsumerOptions options)
    {
        var dial = options.DialTimeout > TimeSpan.Zero ? options.DialTimeout : KafkaConsumerOptions.Defaults.DialTimeout;
        return dial * Math.Max(1, options.Brokers.Count) * 2;
    }

    /// <summary>
    /// Besides the table's lock, a partition pass takes (hash of consumer name, partition) (<see cref="OutboxSql.Lock"/>);
    /// two configured consumers whose 32-bit hashes collide would wait for each other's partitions on different
    /// tables, so that is refused at start-up instead of discovered as a slowdown.
    /// </summary>
    private static void CheckLockKeysAreDistinct(IEnumerable<ConsumerOptions> consumers)
    {
        var collision = consumers
            .OfType<PostgresConsumer>()
            .GroupBy(c => OutboxLockKey.For(c.Name))
            .FirstOrDefault(g => g.Count() > 1);
        if (collision is not null)
        {
            var names = string.Join(" and ", collision.Select(c => c.Name));
            throw new ConfigException($"consumers {names} have the same advisory-lock key; rename one of them");
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
