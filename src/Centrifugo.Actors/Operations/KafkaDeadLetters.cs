using System.Globalization;
using System.Text;
using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Kafka;
using Confluent.Kafka;

namespace Centrifugo.Actors.Operations;

/// <summary>One record of a kafka consumer's dead-letter topic, with where it came from (its headers).</summary>
internal sealed record KafkaDeadLetterItem(
    string Consumer, string DeadLetterTopic, int DeadLetterPartition, long DeadLetterOffset,
    string? SourceTopic, int? SourcePartition, long? SourceOffset, string? Reason, bool Replayed);

/// <summary>What a Kafka replay produced: per dead-letter topic-partition, the offsets moved past.</summary>
internal sealed record KafkaReplayResult(string Consumer, int Replayed, int Skipped, IReadOnlyList<string> Committed);

/// <summary>
/// The operator's side of a kafka consumer's dead-letter topic(s). Replay reads each dead-letter topic-partition from
/// the committed offset of a dedicated consumer group (<c>&lt;consumer_group&gt;.dead-letter-replay</c>) to its end,
/// produces every record of this consumer back to the topic and partition its headers name (original key, value and
/// headers; the x-centrifugo-actors-* headers dropped), one at a time and acknowledged (acks=all, idempotent producer)
/// so each source partition gets them in dead-letter offset order (= their original offset order), then commits the
/// end offset. A record before the committed offset is never replayed again; a crash between the produce and the
/// commit replays the uncommitted tail once more (at-least-once, like every delivery here).
/// </summary>
internal static class KafkaDeadLetters
{
    public const string ReplayGroupSuffix = ".dead-letter-replay";

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    public static string ReplayGroup(KafkaConsumerOptions options) => options.ConsumerGroup + ReplayGroupSuffix;

    public static IReadOnlyList<string> Topics(KafkaConsumerOptions options) =>
        options.Topics.Select(t => KafkaDeadLetterProducer.TopicFor(options, t)).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();

    public static Task<(long Total, IReadOnlyList<KafkaDeadLetterItem> Items)> ListAsync(string consumer, KafkaConsumerOptions options, int limit, CancellationToken cancellationToken) =>
        Task.Run(() =>
        {
            var items = new List<KafkaDeadLetterItem>();
            long total = 0;
            using var reader = BuildConsumer(options);
            foreach (var (tp, low, high, committed) in Partitions(reader, options))
            {
                var pending = high - Math.Max(low, committed ?? low);
                total += Math.Max(0, pending);
                if (items.Count >= limit || high <= low)
                {
                    continue;
                }
                foreach (var record in Read(reader, tp, low, high, limit - items.Count, cancellationToken))
                {
                    if (Header(record, KafkaDeadLetterProducer.ConsumerHeader) is { } owner && owner != consumer)
                    {
                        continue;
                    }
                    items.Add(Item(consumer, record, committed is { } c && record.Offset.Value < c));
                }
            }
            return (total, (IReadOnlyList<KafkaDeadLetterItem>)items);
        }, cancellationToken);

    public static Task<KafkaReplayResult> ReplayAsync(string consumer, KafkaConsumerOptions options, CancellationToken cancellationToken) =>
        Task.Run(async () =>
        {
            using var reader = BuildConsumer(options);
            using var producer = new ProducerBuilder<byte[]?, byte[]?>(KafkaClientConfigBuilder.DeadLetterProducer(options)).Build();
            var replayed = 0;
            var skipped = 0;
            var committedNow = new List<string>();
            foreach (var (tp, low, high, committed) in Partitions(reader, options))
            {
                var start = Math.Max(low, committed ?? low);
                if (high <= start)
                {
                    continue;
                }
                long? last = null;
                foreach (var record in Read(reader, tp, start, high, int.MaxValue, cancellationToken))
                {
                    last = record.Offset.Value;
                    var item = Item(consumer, record, replayed: false);
                    if ((Header(record, KafkaDeadLetterProducer.ConsumerHeader) is { } owner && owner != consumer)
                        || item.SourceTopic is null || item.SourcePartition is null)
                    {
                        skipped++;
                        continue;
                    }
                    var headers = new Headers();
                    foreach (var h in record.Message.Headers ?? new Headers())
                    {
                        if (!h.Key.StartsWith("x-centrifugo-actors-", StringComparison.Ordinal))
                        {
                            headers.Add(h.Key, h.GetValueBytes());
                        }
                    }
                    await producer.ProduceAsync(new TopicPartition(item.SourceTopic, item.SourcePartition.Value),
                        new Message<byte[]?, byte[]?> { Key = record.Message.Key, Value = record.Message.Value, Headers = headers }, cancellationToken);
                    replayed++;
                }
                if (last is { } done)
                {
                    reader.Commit([new TopicPartitionOffset(tp, done + 1)]);
                    committedNow.Add(string.Create(CultureInfo.InvariantCulture, $"{tp.Topic}/{tp.Partition.Value}@{done + 1}"));
                }
            }
            return new KafkaReplayResult(consumer, replayed, skipped, committedNow);
        }, cancellationToken);

    private static IConsumer<byte[]?, byte[]?> BuildConsumer(KafkaConsumerOptions options)
    {
        var config = KafkaClientConfigBuilder.Consumer(options);
        config.GroupId = ReplayGroup(options);
        config.IsolationLevel = IsolationLevel.ReadUncommitted;
        return new ConsumerBuilder<byte[]?, byte[]?>(config).Build();
    }

    private static IEnumerable<(TopicPartition Tp, long Low, long High, long? Committed)> Partitions(IConsumer<byte[]?, byte[]?> reader, KafkaConsumerOptions options)
    {
        using var admin = new DependentAdminClientBuilder(reader.Handle).Build();
        foreach (var topic in Topics(options))
        {
            var metadata = admin.GetMetadata(topic, Timeout).Topics.FirstOrDefault(t => t.Topic == topic);
            if (metadata is null || metadata.Error.IsError)
            {
                continue; // no dead letters yet (the topic appears with the first one)
            }
            var partitions = metadata.Partitions.Select(p => new TopicPartition(topic, p.PartitionId)).OrderBy(p => p.Partition.Value).ToArray();
            var committed = reader.Committed(partitions, Timeout).ToDictionary(c => c.Partition.Value, c => c.Offset.Value >= 0 ? c.Offset.Value : (long?)null);
            foreach (var tp in partitions)
            {
                var marks = reader.QueryWatermarkOffsets(tp, Timeout);
                yield return (tp, marks.Low.Value, marks.High.Value, committed.GetValueOrDefault(tp.Partition.Value));
            }
        }
    }

    private static IEnumerable<ConsumeResult<byte[]?, byte[]?>> Read(
        IConsumer<byte[]?, byte[]?> reader, TopicPartition tp, long from, long to, int max, CancellationToken cancellationToken)
    {
        reader.Assign(new TopicPartitionOffset(tp, from));
        try
        {
            var count = 0;
            while (count < max)
            {
                var result = reader.Consume(Timeout);
                if (result is null)
                {
                    yield break; // nothing more within the timeout (or only gaps up to the end): the caller commits what it read
                }
                cancellationToken.ThrowIfCancellationRequested();
                if (result.Offset.Value >= to)
                {
                    yield break;
                }
                count++;
                yield return result;
                if (result.Offset.Value + 1 >= to)
                {
                    yield break;
                }
            }
        }
        finally
        {
            reader.Unassign();
        }
    }

    private static KafkaDeadLetterItem Item(string consumer, ConsumeResult<byte[]?, byte[]?> record, bool replayed) => new(
        consumer, record.Topic, record.Partition.Value, record.Offset.Value,
        Header(record, KafkaDeadLetterProducer.SourceTopicHeader),
        int.TryParse(Header(record, KafkaDeadLetterProducer.SourcePartitionHeader), NumberStyles.None, CultureInfo.InvariantCulture, out var p) ? p : null,
        long.TryParse(Header(record, KafkaDeadLetterProducer.SourceOffsetHeader), NumberStyles.None, CultureInfo.InvariantCulture, out var o) ? o : null,
        Header(record, KafkaDeadLetterProducer.ReasonHeader), replayed);

    private static string? Header(ConsumeResult<byte[]?, byte[]?> record, string key) =>
        record.Message.Headers is { } headers && headers.TryGetLastBytes(key, out var value) ? Encoding.UTF8.GetString(value) : null;
}
