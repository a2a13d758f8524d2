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
/// An idempotent producer that raised a fatal error (librdkafka can no longer guarantee its ordering, e.g. the broker
/// lost its sequence state) fails every later produce; it is replaced by a new producer at the next call, so the
/// caller's retry goes through instead of stalling the partition until a restart. Thread-safe.
/// </summary>
internal sealed class KafkaDeadLetterProducer : IDisposable
{
    public const string ReasonHeader = "x-centrifugo-actors-reason";
    public const string SourceTopicHeader = "x-centrifugo-actors-source-topic";
    public const string SourcePartitionHeader = "x-centrifugo-actors-source-partition";
    public const string SourceOffsetHeader = "x-centrifugo-actors-source-offset";
    public const string ConsumerHeader = "x-centrifugo-actors-consumer";
    /// <summary>On a reference written instead of a copy too large for the dead-letter topic: the source record's size in bytes (key, value
    /// and headers).</summary>
    public const string OmittedHeader = "x-centrifugo-actors-omitted-bytes";

    private readonly string _consumerName;
    private readonly KafkaConsumerOptions _options;
    private readonly ILogger _logger;
    private readonly Lock _replace = new();
    private volatile IProducer<byte[]?, byte[]?> _producer;
    // The producer that raised a fatal error (set from librdkafka's error callback), replaced at the next produce.
    private volatile IProducer<byte[]?, byte[]?>? _failed;
    private int _replacements;

    public KafkaDeadLetterProducer(string consumerName, KafkaConsumerOptions options, ILoggerFactory loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        _consumerName = consumerName;
        _options = options;
        _logger = loggerFactory.CreateLogger<KafkaDeadLetterProducer>();
        _producer = Build();
    }

    /// <summary>How many times a producer was replaced after a fatal error.</summary>
    public int Replacements => Volatile.Read(ref _replacements);

    /// <summary>librdkafka reported a fatal error of the current producer; the next copy replaces it.</summary>
    internal bool FatalPending => _failed is not null;

    /// <summary>The librdkafka handle of the current producer (tests inject a fatal error through it).</summary>
    internal Handle CurrentHandle => _producer.Handle;

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
        try
        {
            await SendAsync(
                topic, new Message<byte[]?, byte[]?> { Key = original.Key, Value = original.Value, Headers = headers }, cancellationToken);
        }
        catch (KafkaException e) when (e.Error.Code is ErrorCode.MsgSizeTooLarge or ErrorCode.RecordListTooLarge)
        {
            // The dead-letter topic holds less than the source topic (its max.message.bytes, or our headers on a record
            // at the source's limit): write a reference to the record instead, which stays at its source offset until
            // the source topic's retention removes it. Never a stall on a copy that can never be written.
            var size = (original.Key?.Length ?? 0) + (original.Value?.Length ?? 0)
                + original.Headers.Sum(h => Encoding.UTF8.GetByteCount(h.Key) + (h.Value?.Length ?? 0));
            var sizeText = size.ToString(CultureInfo.InvariantCulture);
            var referenceReason = $"{reason}; the record ({sizeText} bytes) is too large for the dead-letter topic " +
                $"({e.Error.Reason}): only this reference is written, the record stays at its source offset";
            var reference = new Headers
            {
                { ReasonHeader, Encoding.UTF8.GetBytes(referenceReason) },
                { SourceTopicHeader, Encoding.UTF8.GetBytes(original.Topic) },
                { SourcePartitionHeader, Encoding.UTF8.GetBytes(original.Partition.ToString(CultureInfo.InvariantCulture)) },
                { SourceOffsetHeader, Encoding.UTF8.GetBytes(original.Offset.ToString(CultureInfo.InvariantCulture)) },
                { ConsumerHeader, Encoding.UTF8.GetBytes(_consumerName) },
                { OmittedHeader, Encoding.UTF8.GetBytes(sizeText) },
            };
            // An empty value, not null: a null value is a tombstone on a compacted topic.
            await SendAsync(
                topic, new Message<byte[]?, byte[]?> { Key = original.Key, Value = [], Headers = reference }, cancellationToken);
            reason = referenceReason;
        }

        KafkaLog.DeadLettered(_logger, _consumerName, original.Topic, original.Partition, original.Offset, topic, reason);
    }

    private async Task SendAsync(string topic, Message<byte[]?, byte[]?> message, CancellationToken cancellationToken)
    {
        if (_failed is { } failed)
        {
            Replace(failed);
        }

        var producer = _producer;
        try
        {
            await producer.ProduceAsync(topic, message, cancellationToken);
        }
        catch (KafkaException e) when (e.Error.IsFatal || e.Error.Code == ErrorCode.Local_Fatal)
        {
            // Produce results usually carry the underlying broker error instead; the error callback is the reliable
            // signal (it marks the producer within librdkafka's poll interval). Either way this copy is not written
            // and the caller retries it, with backoff, on the replacement.
            Replace(producer);
            throw;
        }
    }

    public void Dispose()
    {
        lock (_replace)
        {
            _producer.Flush(TimeSpan.FromSeconds(5));
            _producer.Dispose();
        }
    }

    private IProducer<byte[]?, byte[]?> Build()
    {
        IProducer<byte[]?, byte[]?>? built = null;
        built = new ProducerBuilder<byte[]?, byte[]?>(KafkaClientConfigBuilder.DeadLetterProducer(_options))
            .SetKeySerializer(Serializers.ByteArray)
            .SetValueSerializer(Serializers.ByteArray)
            .SetErrorHandler((_, e) =>
            {
                KafkaLog.DeadLetterProducerError(_logger, _consumerName, e.Code, e.Reason);
                if (e.IsFatal)
                {
                    // Replacing here would destroy the client from its own callback thread: leave it to the next produce.
                    _failed = built;
                }
            })
            .SetLogHandler((_, m) => KafkaLog.Librdkafka(_logger, KafkaLog.FromSyslog(m.Level), _consumerName, m.Facility, m.Message))
            .Build();
        return built;
    }

    /// <summary>Swaps <paramref name="failed"/> for a new producer once (concurrent callers find it done).</summary>
    private void Replace(IProducer<byte[]?, byte[]?> failed)
    {
        lock (_replace)
        {
            if (!ReferenceEquals(_producer, failed))
            {
                return;
            }

            _producer = Build();
            _failed = null;
            Interlocked.Increment(ref _replacements);
        }

        KafkaLog.DeadLetterProducerReplaced(_logger, _consumerName);
        // A fatal producer delivers nothing more; its destruction may wait for in-flight requests, so not on this path.
        _ = Task.Run(() =>
        {
            try
            {
                failed.Dispose();
            }
            catch (Exception e) when (e is KafkaException or ObjectDisposedException or InvalidOperationException)
            {
                // already unusable; nothing to keep
            }
        });
    }
}
