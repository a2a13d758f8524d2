using Akka.Actor;
using Akka.Hosting;
using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Delivery;
using Centrifugo.Actors.Partitions;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Kafka;

/// <summary>
/// The Kafka source's part of a node: the runtime of each kafka consumer (built before the actor system starts), its
/// actors (the placement of the entities where the group assigned them, leaving the groups on shutdown) and its
/// partition entities. Kafka partitions have no keeper: the consumer group assigns them. Hosting composes it
/// (<c>WithCentrifugoActors</c>).
/// </summary>
internal static class KafkaHosting
{
    /// <summary>
    /// One hub and one dead-letter producer per kafka consumer, after a bounded metadata request: like Centrifugo's
    /// start-up ping (dial_timeout × brokers × 2), no answer from any broker refuses to start.
    /// </summary>
    public static async Task<KafkaConsumerRuntime> StartConsumerAsync(
        string name, KafkaConsumerOptions options, ICentrifugoClient client, string podName, TimeSpan drainTimeout,
        ILoggerFactory loggerFactory, CancellationToken cancellationToken)
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
                    $"in consumer {name} (kafka): no broker of {string.Join(",", options.Brokers)} answered within " +
                    $"{timeout.TotalSeconds:0.#} s: {ex.Error.Reason}", ex);
            }
            deadLetters = new KafkaDeadLetterProducer(name, options, loggerFactory);
            var processor = new KafkaRecordProcessor(
                name, options, client, deadLetters, loggerFactory.CreateLogger("Centrifugo.Actors.Kafka"));
            return new KafkaConsumerRuntime(name, options, hub, deadLetters, processor, drainTimeout);
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
    /// With kafka consumers: the <see cref="KafkaPlacement"/> of their entities in the shard region registered as
    /// <typeparamref name="TRegion"/> (started as <paramref name="regionName"/>), and leaving the consumer groups when
    /// the node shuts down. Nothing without kafka consumers.
    /// </summary>
    public static AkkaConfigurationBuilder WithKafkaConsumers<TRegion>(
        this AkkaConfigurationBuilder builder, IReadOnlyList<KafkaConsumerRuntime> consumers, string regionName,
        ILoggerFactory loggerFactory)
    {
        if (consumers.Count == 0)
        {
            return builder;
        }
        return builder.WithActors((system, registry) =>
        {
            system.ActorOf(KafkaPlacement.Props(registry.Get<TRegion>(), consumers, regionName,
                loggerFactory.CreateLogger("Centrifugo.Actors.Kafka")), KafkaPlacement.Name);
            // Leave the consumer groups before the region hands its shards off: the other members get the
            // partitions at their next heartbeat instead of after this node's session timeout.
            CoordinatedShutdown.Get(system).AddTask(CoordinatedShutdown.PhaseBeforeServiceUnbind, "kafka-leave-groups", async () =>
            {
                await Task.WhenAll(consumers.Select(c => c.Hub.LeaveAsync()));
                return Akka.Done.Instance;
            });
        });
    }

    /// <summary>
    /// The entity of a Kafka partition of this configuration (<see cref="PartitionEntityId.Kafka"/>): a topic of its
    /// consumer; null when <paramref name="entityId"/> is not one.
    /// </summary>
    public static Props? EntityProps(
        string entityId, IReadOnlyDictionary<string, KafkaConsumerRuntime> consumers, string node, PartitionStatusBoard board,
        PausedPartitions paused, ILoggerFactory loggerFactory)
    {
        if (!PartitionEntityId.TryParseKafka(entityId, out var consumer, out var topic, out var partition)
            || !consumers.TryGetValue(consumer, out var kafka)
            || partition < 0 || !kafka.Options.Topics.Contains(topic, StringComparer.Ordinal))
        {
            return null;
        }
        var logger = loggerFactory.CreateLogger("Centrifugo.Actors.Kafka");
        var progress = new PartitionProgress(entityId, kafka.Consumer, PartitionSource.Kafka,
            string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{topic}/{partition}"), node, board);
        return PartitionEntity.Props(entityId, () => new KafkaPartitionSource(kafka, topic, partition, logger), progress,
            paused, logger);
    }
}
