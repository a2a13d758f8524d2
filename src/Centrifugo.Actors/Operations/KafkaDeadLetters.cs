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
/// The operator's side of a kafka consumer's dead-letter topic(s). Replay joins a consumer group of its own per
/// consumer (<c>&lt;consumer_group&gt;.dead-letter-replay.&lt;consumer name&gt;</c>) on the dead-letter topics, reads each
/// dead-letter partition the broker assigns it from the group's committed offset to the end it had when the replay
/// started, produces every record of this consumer back to the topic and partition its headers name (original key,
/// value and headers; the x-centrifugo-actors-* headers dropped), one at a time and acknowledged (acks=all, idempotent
/// producer) so each source partition gets them in dead-letter offset order (= their original offset order), and
/// commits past each record once it is acknowledged. The group makes replays of one consumer exclusive per partition:
/// the broker gives each dead-letter partition to one member; a replay that started later gets the partitions nobody
/// holds, or none, and ends. A record before the committed offset is never replayed again; a crash (or a partition
/// taken over) between a produce and its commit replays that record once more (at-least-once, like every delivery).
/// </summary>
internal static class KafkaDeadLetters
{
    public const string ReplayGroupInfix = ".dead-letter-replay.";

    /// <summary>
    /// The group all consumers of one <c>consumer_group</c> shared before the replay group was per consumer; its
    /// offsets are adopted for a dead-letter partition the consumer's own group has none for yet.
    /// </summary>
    public const string LegacyReplayGroupSuffix = ".dead-letter-replay";

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    public static string ReplayGroup(string consumer, KafkaConsumerOptions options) => options.ConsumerGroup + ReplayGroupInfix + consumer;

    public static IReadOnlyList<string> Topics(KafkaConsumerOptions options) =>
        options.Topics.Select(t => KafkaDeadLetterProducer.TopicFor(options, t)).Distinct(StringComparer.Ordinal)
            .Order(StringComparer.Ordinal).ToArray();

    public static Task<(long Total, IReadOnlyList<KafkaDeadLetterItem> Items)> ListAsync(
        string consumer, KafkaConsumerOptions options, int limit, CancellationToken cancellationToken) =>
        Task.Run(() =>
        {
            var items = new List<KafkaDeadLetterItem>();
            long total = 0;
            using var reader = BuildConsumer(consumer, options);
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
            // The broker answered this member's latest join (possibly with no partition); false while it rebalances.
            var assigned = false;
            using var reader = BuildConsumer(consumer, options, onAssignment: now => assigned = now);
            using var producer = new ProducerBuilder<byte[]?, byte[]?>(KafkaClientConfigBuilder.DeadLetterProducer(options)).Build();
            var replayed = 0;
            var skipped = 0;
            var committedNow = new SortedDictionary<string, long>(StringComparer.Ordinal);
            var targets = new Dictionary<TopicPartition, long>();
            var adopt = new List<TopicPartitionOffset>();
            foreach (var (tp, low, high, committed) in Partitions(reader, options, adopt))
            {
                targets[tp] = high;
            }
            if (targets.Count == 0)
            {
                return new KafkaReplayResult(consumer, 0, 0, []);
            }
            if (adopt.Count > 0)
            {
                reader.Commit(adopt); // before joining: a commit outside the group is refused once it has members
            }

            // Where this member stands in each partition the broker gave it (the committed offset when it got it).
            var position = new Dictionary<TopicPartition, long>();
            // Offsets produced past but not committed (the group was rebalancing): committed if the partition comes back.
            var pending = new Dictionary<TopicPartition, long>();
            reader.Subscribe(targets.Keys.Select(tp => tp.Topic).Distinct(StringComparer.Ordinal));
            try
            {
                while (true)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var result = reader.Consume(TimeSpan.FromMilliseconds(200));
                    var assignment = reader.Assignment;
                    foreach (var gone in position.Keys.Where(tp => !assignment.Contains(tp)).ToArray())
                    {
                        position.Remove(gone); // taken over by another replay: it goes on from the committed offset
                    }
                    var fresh = assignment.Where(tp => !position.ContainsKey(tp)).ToArray();
                    if (fresh.Length > 0)
                    {
                        foreach (var c in reader.Committed(fresh, Timeout))
                        {
                            var tp = c.TopicPartition;
                            position[tp] = pending.Remove(tp, out var produced) && c.Offset.Value == produced - 1
                                && TryCommit(reader, tp, produced)
                                ? produced
                                : Math.Max(c.Offset.Value, 0);
                        }
                    }
                    if (assigned && assignment.All(tp => !targets.TryGetValue(tp, out var end) || position.GetValueOrDefault(tp) >= end))
                    {
                        break; // every partition it holds is at the end it had at the start (or it holds none)
                    }
                    if (result is null)
                    {
                        continue;
                    }
                    var at = result.TopicPartition;
                    if (result.IsPartitionEOF)
                    {
                        // only gaps (e.g. transaction markers) left
                        position[at] = Math.Max(position.GetValueOrDefault(at), result.Offset.Value);
                        continue;
                    }
                    if (!targets.TryGetValue(at, out var target) || result.Offset.Value >= target
                        || !position.TryGetValue(at, out var from) || result.Offset.Value < from)
                    {
                        continue;
                    }
                    // A commit of the offset it stands at proves the partition is still this member's (a replay that
                    // joined later may have taken it; this one learns so only after the records it has fetched already).
                    if (!TryCommit(reader, at, result.Offset.Value))
                    {
                        position.Remove(at);
                        continue;
                    }
                    var item = Item(consumer, result, replayed: false);
                    if ((Header(result, KafkaDeadLetterProducer.ConsumerHeader) is { } owner && owner != consumer)
                        || item.SourceTopic is null || item.SourcePartition is null)
                    {
                        skipped++;
                    }
                    else
                    {
                        var headers = new Headers();
                        foreach (var h in result.Message.Headers ?? new Headers())
                        {
                            if (!h.Key.StartsWith("x-centrifugo-actors-", StringComparison.Ordinal))
                            {
                                headers.Add(h.Key, h.GetValueBytes());
                            }
                        }
                        await producer.ProduceAsync(new TopicPartition(item.SourceTopic, item.SourcePartition.Value),
                            new Message<byte[]?, byte[]?> { Key = result.Message.Key, Value = result.Message.Value, Headers = headers },
                            cancellationToken);
                        replayed++;
                    }
                    var next = result.Offset.Value + 1;
                    if (TryCommit(reader, at, next))
                    {
                        committedNow[string.Create(CultureInfo.InvariantCulture, $"{at.Topic}/{at.Partition.Value}")] = next;
                        position[at] = next;
                    }
                    else
                    {
                        // Rebalancing: if the partition comes back, the commit is made then; if another replay takes it
                        // over, it replays this record once more.
                        position.Remove(at);
                        pending[at] = next;
                    }
                }
            }
            finally
            {
                reader.Close(); // leave the group now, so a later replay does not wait for this member's session to end
            }
            return new KafkaReplayResult(consumer, replayed, skipped,
                committedNow.Select(c => string.Create(CultureInfo.InvariantCulture, $"{c.Key}@{c.Value}")).ToArray());
        }, cancellationToken);

    private static bool TryCommit(IConsumer<byte[]?, byte[]?> reader, TopicPartition tp, long offset)
    {
        try
        {
            reader.Commit([new TopicPartitionOffset(tp, offset)]);
            return true;
        }
        catch (KafkaException)
        {
            return false; // the group rebalanced or gave the partition to another member
        }
    }

    /// <param name="onAssignment">Given: the consumer will join the group (subscribe); called with true on every
    /// assignment, false when its partitions are revoked or lost.</param>
    private static IConsumer<byte[]?, byte[]?> BuildConsumer(
        string consumer, KafkaConsumerOptions options, Action<bool>? onAssignment = null)
    {
        var config = KafkaClientConfigBuilder.Consumer(options);
        config.GroupId = ReplayGroup(consumer, options);
        config.IsolationLevel = IsolationLevel.ReadUncommitted;
        if (onAssignment is null)
        {
            return new ConsumerBuilder<byte[]?, byte[]?>(config).Build();
        }
        config.EnablePartitionEof = true;
        // A replay that died without leaving holds its partitions until its session ends: keep that short.
        config.SessionTimeoutMs = 10_000;
        config.HeartbeatIntervalMs = 1_000;
        return new ConsumerBuilder<byte[]?, byte[]?>(config)
            .SetPartitionsAssignedHandler((_, _) => onAssignment(true))
            .SetPartitionsRevokedHandler((_, _) => onAssignment(false))
            .Build();
    }

    /// <summary>
    /// Every dead-letter partition with its watermarks and the replay group's committed offset; where the group has none,
    /// the legacy shared group's (collected in <paramref name="adopt"/> when given).
    /// </summary>
    private static IEnumerable<(TopicPartition Tp, long Low, long High, long? Committed)> Partitions(
        IConsumer<byte[]?, byte[]?> reader, KafkaConsumerOptions options, List<TopicPartitionOffset>? adopt = null)
    {
        using var admin = new DependentAdminClientBuilder(reader.Handle).Build();
        foreach (var topic in Topics(options))
        {
            var metadata = admin.GetMetadata(topic, Timeout).Topics.FirstOrDefault(t => t.Topic == topic);
            if (metadata is null || metadata.Error.IsError)
            {
                continue; // no dead letters yet (the topic appears with the first one)
            }
            var partitions = metadata.Partitions.Select(p => new TopicPartition(topic, p.PartitionId)).OrderBy(p => p.Partition.Value)
                .ToArray();
            var committed = Committed(reader, partitions);
            var missing = partitions.Where(p => committed[p] is null).ToArray();
            if (missing.Length > 0)
            {
                var legacyConfig = KafkaClientConfigBuilder.Consumer(options);
                legacyConfig.GroupId = options.ConsumerGroup + LegacyReplayGroupSuffix;
                using var legacy = new ConsumerBuilder<byte[]?, byte[]?>(legacyConfig).Build();
                foreach (var (tp, offset) in Committed(legacy, missing).Where(c => c.Value is not null))
                {
                    committed[tp] = offset;
                    adopt?.Add(new TopicPartitionOffset(tp, offset!.Value));
                }
            }
            foreach (var tp in partitions)
            {
                var marks = reader.QueryWatermarkOffsets(tp, Timeout);
                yield return (tp, marks.Low.Value, marks.High.Value, committed[tp]);
            }
        }
    }

    private static Dictionary<TopicPartition, long?> Committed(
        IConsumer<byte[]?, byte[]?> reader, IEnumerable<TopicPartition> partitions) =>
        reader.Committed(partitions, Timeout).ToDictionary(c => c.TopicPartition, c => c.Offset.Value >= 0 ? c.Offset.Value : (long?)null);

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
        int.TryParse(Header(record, KafkaDeadLetterProducer.SourcePartitionHeader), NumberStyles.None, CultureInfo.InvariantCulture,
            out var p) ? p : null,
        long.TryParse(Header(record, KafkaDeadLetterProducer.SourceOffsetHeader), NumberStyles.None, CultureInfo.InvariantCulture,
            out var o) ? o : null,
        Header(record, KafkaDeadLetterProducer.ReasonHeader), replayed);

    private static string? Header(ConsumeResult<byte[]?, byte[]?> record, string key) =>
        record.Message.Headers is { } headers && headers.TryGetLastBytes(key, out var value) ? Encoding.UTF8.GetString(value) : null;
}
