using System.Globalization;
using System.Text;
using Centrifugo.Actors.Configuration;
using Confluent.Kafka;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Kafka;

/// <summary>
/// Writes records that cannot be delivered to a dead-letter topic (one idempotent acks=all producer per consumer
/// config). The copy keeps the original key, value and headers and adds x-centrifugo-actors-* headers saying why and
/// where from. Await <see cref="ProduceAsync"/> (the broker's acknowledgement) before marking the offset processed.
/// Thread-safe.
/// </summary>
internal sealed class KafkaDeadLetterProducer : IDisposable
{
    public const string ReasonHeader = "x-centrifugo-actors-reason";
    public const string SourceTopicHeader = "x-centrifugo-actors-source-topic";
    public const string SourcePartitionHeader = "x-centrifugo-actors-source-partition";
    public const string SourceOffsetHeader = "x-centrifugo-actors-source-offset";
    public const string ConsumerHeader = "x-centrifugo-actors-consumer";

    private readonly string _consumerName;
    private readonly KafkaConsumerOptions _options;
    private readonly ILogger _logger;
    private readonly IProducer<byte[]?, byte[]?> _producer;

    public KafkaDeadLetterProducer(string consumerName, KafkaConsumerOptions options, ILoggerFactory loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        _consumerName = consumerName;
        _options = options;
        _logger = loggerFactory.CreateLogger<KafkaDeadLetterProducer>();
        _producer = new ProducerBuilder<byte[]?, byte[]?>(KafkaClientConfigBuilder.DeadLetterProducer(options))
            .SetKeySerializer(Serializers.ByteArray)
            .SetValueSerializer(Serializers.ByteArray)
            .SetErrorHandler((_, e) => KafkaLog.DeadLetterProducerError(_logger, _consumerName, e.Code, e.Reason))
            .SetLogHandler((_, m) => KafkaLog.Librdkafka(_logger, KafkaLog.FromSyslog(m.Level), _consumerName, m.Facility, m.Message))
            .Build();
    }

    /// <summary>dead_letter_topic when configured, else "&lt;source topic&gt;.dead_letter".</summary>
    public static string TopicFor(KafkaConsumerOptions options, string sourceTopic)
    {
        ArgumentNullException.ThrowIfNull(options);
        return string.IsNullOrEmpty(options.DeadLetterTopic) ? sourceTopic + ".dead_letter" : options.DeadLetterTopic;
    }

    /// <summary>Completes when the broker acknowledged the copy; throws <see cref="ProduceException{TKey,TValue}"/> otherwise.</summary>
    /// <param name="reason">Why it is dead-lettered; must not contain secrets.</param>
    public async Task ProduceAsync(KafkaRecord original, string reason, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(original);
        var topic = TopicFor(_options, original.Topic);
        var headers = new Headers();
        foreach (var header in original.Headers)
        {
            headers.Add(header.Key, header.Value);
        }

        headers.Add(ReasonHeader, Encoding.UTF8.GetBytes(reason));
        headers.Add(SourceTopicHeader, Encoding.UTF8.GetBytes(original.Topic));
        headers.Add(SourcePartitionHeader, Encoding.UTF8.GetBytes(original.Partition.ToString(CultureInfo.InvariantCulture)));
        headers.Add(SourceOffsetHeader, Encoding.UTF8.GetBytes(original.Offset.ToString(CultureInfo.InvariantCulture)));
        headers.Add(ConsumerHeader, Encoding.UTF8.GetBytes(_consumerName));
        await _producer.ProduceAsync(
            topic,
            new Message<byte[]?, byte[]?> { Key = original.Key, Value = original.Value, Headers = headers },
            cancellationToken);
        KafkaLog.DeadLettered(_logger, _consumerName, original.Topic, original.Partition, original.Offset, topic, reason);
    }

    public void Dispose()
    {
        _producer.Flush(TimeSpan.FromSeconds(5));
        _producer.Dispose();
    }
}
