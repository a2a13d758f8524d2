using System.Diagnostics;
using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Kafka;
using Centrifugo.Actors.Testing.Kafka;
using Confluent.Kafka;
using Microsoft.Extensions.Logging;
using static Centrifugo.Actors.Tests.Kafka.KafkaTestSupport;

namespace Centrifugo.Actors.Tests.Kafka;

public sealed class KafkaConsumerHubTests : IDisposable
{
    private static readonly KafkaSettings FastCommits = new()
    {
        CommitInterval = TimeSpan.FromMilliseconds(200),
        CommittedLookupTimeout = TimeSpan.FromSeconds(2),
        MetadataTimeout = TimeSpan.FromSeconds(2),
    };

    private readonly KafkaMockCluster _cluster = KafkaMockCluster.Create();
    private readonly CapturingLoggerProvider _logs = new();
    private readonly ILoggerFactory _loggerFactory;

    public KafkaConsumerHubTests() => _loggerFactory = _logs.CreateFactory();

    public void Dispose()
    {
        _loggerFactory.Dispose();
        _cluster.Dispose();
    }

    private KafkaConsumerOptions Options(string group, params string[] topics) => new()
    {
        Brokers = [_cluster.Bootstrap],
        Topics = topics,
        ConsumerGroup = group,
        FetchMaxWait = TimeSpan.FromMilliseconds(50),
    };

    private string Topic(int partitions)
    {
        var topic = Unique("hub");
        _cluster.CreateTopic(topic, partitions);
        return topic;
    }

    private async Task ProduceAsync(string topic, int partition, int count, int startAt = 0)
    {
        using var producer = Producer(_cluster.Bootstrap);
        await KafkaTestSupport.ProduceAsync(producer, topic, partition, count, startAt);
    }

    private static async Task<List<KafkaRecord>> ReadAsync(KafkaPartitionLease lease, int count, TimeSpan? timeout = null)
    {
        using var deadline = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        var records = new List<KafkaRecord>();
        while (records.Count < count)
        {
            using var batch = await lease.ReadBatchAsync(Math.Min(100, count - records.Count), deadline.Token);
            Assert.True(batch.Count > 0);
            records.AddRange(batch.ToRecords());
        }

        return records;
    }

    private long? CommittedByGroup(string group, string topic, int partition)
    {
        using var consumer = Consumer(_cluster.Bootstrap, group);
        var offset = consumer.Committed([new TopicPartition(topic, partition)], TimeSpan.FromSeconds(10)).Single().Offset;
        return offset.Value >= 0 ? offset.Value : null;
    }

    [Fact]
    public async Task A_lease_reads_in_offset_order_from_earliest_when_the_group_has_no_commits()
    {
        var topic = Topic(2);
        await ProduceAsync(topic, 1, 50);
        await using var hub = new KafkaConsumerHub("c1", Options(Unique("g"), topic), _loggerFactory, FastCommits);

        await using var lease = await hub.AcquireAsync(topic, 1, CancellationToken.None);
        var records = await ReadAsync(lease, 50);

        Assert.Null(lease.CommittedOffset);
        Assert.Equal(Enumerable.Range(0, 50).Select(i => (long)i), records.Select(r => r.Offset));
        Assert.Equal(Enumerable.Range(0, 50).Select(i => $"v{i}"), records.Select(r => Text(r.Value)));
        Assert.All(records, r => Assert.Equal((topic, 1), (r.Topic, r.Partition)));
        Assert.Equal("k7", Text(records[7].Key));
        await WaitUntilAsync(() => lease.HighWatermark == 50, "the high watermark to be known");
        Assert.Equal(50, lease.Lag);
    }

    [Fact]
    public async Task Records_read_in_batches_from_librdkafka_keep_keys_values_and_headers_byte_for_byte()
    {
        var topic = Topic(1);
        using (var producer = Producer(_cluster.Bootstrap))
        {
            var headers = new Headers { { "method", Bytes("publish") }, { "empty", [] }, { "none", null }, { "method", Bytes("second") } };
            await producer.ProduceAsync(new TopicPartition(topic, 0),
                new Message<byte[]?, byte[]?> { Key = Bytes("k0"), Value = Bytes("{\"a\":1}"), Headers = headers });
            await producer.ProduceAsync(new TopicPartition(topic, 0), new Message<byte[]?, byte[]?> { Key = null, Value = null });
            await producer.ProduceAsync(new TopicPartition(topic, 0), new Message<byte[]?, byte[]?> { Key = [], Value = [] });
        }

        await using var hub = new KafkaConsumerHub("c1", Options(Unique("g"), topic), _loggerFactory, FastCommits);
        await using var lease = await hub.AcquireAsync(topic, 0, CancellationToken.None);
        var records = await ReadAsync(lease, 3);

        Assert.Equal([0L, 1L, 2L], records.Select(r => r.Offset));
        Assert.Equal(("k0", "{\"a\":1}"), (Text(records[0].Key), Text(records[0].Value)));
        Assert.Equal(
            [("method", "publish"), ("empty", ""), ("none", ""), ("method", "second")],
            records[0].Headers.Select(h => (h.Key, Text(h.Value))));
        Assert.Null(records[1].Key);
        Assert.Null(records[1].Value);
        Assert.Empty(records[1].Headers);
        Assert.Equal((0, 0), (records[2].Key!.Length, records[2].Value!.Length));
        Assert.All(records, r => Assert.Equal((topic, 0), (r.Topic, r.Partition)));
    }

    [Fact]
    public async Task Marked_offsets_are_committed_in_the_background_and_on_dispose()
    {
        var topic = Topic(1);
        var group = Unique("g");
        await ProduceAsync(topic, 0, 50);
        await using var hub = new KafkaConsumerHub("c1", Options(group, topic), _loggerFactory, FastCommits);
        var lease = await hub.AcquireAsync(topic, 0, CancellationToken.None);
        await ReadAsync(lease, 50);

        lease.MarkProcessed(19);
        await WaitUntilAsync(() => CommittedByGroup(group, topic, 0) == 20, "offset 20 committed by the commit timer");
        Assert.Equal(20, lease.CommittedOffset);

        lease.MarkProcessed(29);
        await lease.DisposeAsync();
        Assert.Equal(30, CommittedByGroup(group, topic, 0));
        Assert.True(lease.IsClosed);
        Assert.Equal(0, (await lease.ReadBatchAsync(10, CancellationToken.None)).Count);
    }

    [Fact]
    public async Task A_new_lease_after_dispose_resumes_at_the_committed_offset_even_on_another_hub()
    {
        var topic = Topic(1);
        var group = Unique("g");
        await ProduceAsync(topic, 0, 30);
        await using (var first = new KafkaConsumerHub("c1", Options(group, topic), _loggerFactory, FastCommits))
        {
            await using var lease = await first.AcquireAsync(topic, 0, CancellationToken.None);
            await ReadAsync(lease, 30);
            lease.MarkProcessed(9);
        }

        await using var second = new KafkaConsumerHub("c1", Options(group, topic), _loggerFactory, FastCommits);
        await using var next = await second.AcquireAsync(topic, 0, CancellationToken.None);
        var records = await ReadAsync(next, 20);

        Assert.Equal(10, next.CommittedOffset);
        Assert.Equal(Enumerable.Range(10, 20).Select(i => (long)i), records.Select(r => r.Offset));

        // Same hub, same partition: one lease at a time; the next starts where the closed one's mark left it, not
        // after what that one had taken out of the queue.
        next.MarkProcessed(14);
        Assert.Null(await second.AttachAsync(topic, 0, CancellationToken.None));
        await next.DisposeAsync();
        await using var again = await second.AcquireAsync(topic, 0, CancellationToken.None);
        Assert.Equal(15, (await ReadAsync(again, 1))[0].Offset);
    }

    /// <summary>Each record its own producer batch, so one fetch (one record batch per partition on the mock) adds one record.</summary>
    private async Task ProduceOneByOneAsync(string topic, int partition, int count, int valueBytes = 0)
    {
        using var producer = Producer(_cluster.Bootstrap);
        for (var i = 0; i < count; i++)
        {
            var value = valueBytes > 0 ? new byte[valueBytes] : Bytes($"v{i}");
            await producer.ProduceAsync(
                new TopicPartition(topic, partition), new Message<byte[]?, byte[]?> { Key = Bytes($"k{i}"), Value = value });
        }
    }

    /// <summary>The most records <paramref name="lease"/> holds over a short window (librdkafka backs off 20 ms per check).</summary>
    private static async Task<int> MostQueuedAsync(KafkaPartitionLease lease, TimeSpan window)
    {
        var most = 0;
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < window)
        {
            most = Math.Max(most, lease.QueuedCount);
            await Task.Delay(10);
        }
        return most;
    }

    [Fact]
    public async Task A_full_partition_stops_fetching_while_another_partition_keeps_flowing()
    {
        var topic = Topic(2);
        await ProduceOneByOneAsync(topic, 0, 100);
        await ProduceAsync(topic, 1, 300);
        var options = Options(Unique("g"), topic) with { PartitionQueueMaxSize = 10 };
        await using var hub = new KafkaConsumerHub("c1", options, _loggerFactory, FastCommits);
        await using var stuck = await hub.AcquireAsync(topic, 0, CancellationToken.None);
        await using var flowing = await hub.AcquireAsync(topic, 1, CancellationToken.None);

        var other = await ReadAsync(flowing, 300);

        Assert.Equal(Enumerable.Range(0, 300).Select(i => (long)i), other.Select(r => r.Offset));
        await WaitUntilAsync(() => stuck.QueuedCount >= 10, "the unread partition to fill its queue");
        // librdkafka stops fetching it at the limit (plus the one record batch of the fetch that reached it), instead
        // of taking all 100; nothing is paused, so nothing prefetched is discarded.
        Assert.InRange(await MostQueuedAsync(stuck, TimeSpan.FromMilliseconds(500)), 10, 12);

        var late = await ReadAsync(stuck, 100);
        Assert.Equal(Enumerable.Range(0, 100).Select(i => (long)i), late.Select(r => r.Offset));
    }

    [Fact]
    public async Task A_partition_stops_fetching_at_its_byte_budget_before_its_record_limit()
    {
        var topic = Topic(1);
        await ProduceOneByOneAsync(topic, 0, 200, valueBytes: 1024);
        // 10,000 records allowed, but only 16 KiB: about 16 of these 1 KiB records.
        var options = Options(Unique("g"), topic) with { PartitionQueueMaxSize = 10_000, PartitionQueueMaxBytes = 16 * 1024 };
        await using var hub = new KafkaConsumerHub("c1", options, _loggerFactory, FastCommits);
        await using var lease = await hub.AcquireAsync(topic, 0, CancellationToken.None);

        await WaitUntilAsync(() => lease.QueuedCount >= 15, "the partition to fill its byte budget");
        Assert.InRange(await MostQueuedAsync(lease, TimeSpan.FromMilliseconds(500)), 15, 18);

        var all = await ReadAsync(lease, 200);
        Assert.Equal(Enumerable.Range(0, 200).Select(i => (long)i), all.Select(r => r.Offset));
    }

    [Fact]
    public async Task A_small_queue_limit_never_stalls_a_one_at_a_time_reader()
    {
        var topic = Topic(1);
        await ProduceOneByOneAsync(topic, 0, 200);
        var options = Options(Unique("g"), topic) with { PartitionQueueMaxSize = 10 };
        await using var hub = new KafkaConsumerHub("c1", options, _loggerFactory, FastCommits);
        await using var lease = await hub.AcquireAsync(topic, 0, CancellationToken.None);

        // One-at-a-time reads drain the queue below the limit over and over: fetching must restart every time, and a
        // lost wake-up would leave the reader waiting on an empty queue.
        var records = new List<KafkaRecord>();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        while (records.Count < 200)
        {
            using var batch = await lease.ReadBatchAsync(1, deadline.Token);
            Assert.Equal(1, batch.Count);
            Assert.InRange(lease.QueuedCount, 0, 10 + 2);
            records.AddRange(batch.ToRecords());
        }

        Assert.Equal(Enumerable.Range(0, 200).Select(i => (long)i), records.Select(r => r.Offset));
        Assert.Equal(Enumerable.Range(0, 200).Select(i => $"v{i}"), records.Select(r => Text(r.Value)));
    }

    [Fact]
    public async Task Queue_limit_minus_one_fetches_while_nothing_is_queued_and_keeps_the_whole_fetch()
    {
        var topic = Topic(1);
        await ProduceAsync(topic, 0, 50); // concurrent sends: a few record batches, not 50
        // -1 (Centrifugo: pause whenever anything is queued) reaches the hub as 0.
        var options = Options(Unique("g"), topic) with { PartitionQueueMaxSize = 0 };
        await using var hub = new KafkaConsumerHub("c1", options, _loggerFactory, FastCommits);
        Assert.Equal(1, hub.QueueMaxRecords);
        await using var lease = await hub.AcquireAsync(topic, 0, CancellationToken.None);

        // The first read gets the first fetch's whole record batch (a pause at one record used to purge the rest, so
        // every read got one record); then the next fetch starts only once the queue is empty.
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var firstBatch = await lease.ReadBatchAsync(1000, deadline.Token);
        var first = firstBatch.ToRecords();
        Assert.True(first.Count > 1, $"the first read got {first.Count} record(s)");
        var all = first.Concat(await ReadAsync(lease, 50 - first.Count)).ToList();
        Assert.Equal(Enumerable.Range(0, 50).Select(i => (long)i), all.Select(r => r.Offset));
    }

    [Fact]
    public async Task A_waiting_reader_returns_empty_when_its_lease_is_disposed()
    {
        var topic = Topic(1);
        await using var hub = new KafkaConsumerHub("c1", Options(Unique("g"), topic), _loggerFactory, FastCommits);
        var lease = await hub.AcquireAsync(topic, 0, CancellationToken.None);
        var read = lease.ReadBatchAsync(10, CancellationToken.None).AsTask();
        Assert.False(read.IsCompleted); // nothing produced: it waits

        await lease.DisposeAsync();

        Assert.Equal(0, (await read.WaitAsync(TimeSpan.FromSeconds(10))).Count);
        Assert.Equal(0, lease.QueuedCount);
    }

    [Fact]
    public async Task Records_written_while_the_partition_leader_is_down_for_five_seconds_arrive_without_loss()
    {
        // The group coordinator stays up: down as long as this, it would drop the member (session timeout).
        var topic = Topic(2);
        var group = Unique("g");
        _cluster.SetPartitionLeader(topic, 0, 2);
        _cluster.SetPartitionLeader(topic, 1, 3);
        _cluster.SetGroupCoordinator(group, 1);
        await ProduceAsync(topic, 0, 100);
        await using var hub = new KafkaConsumerHub("c1", Options(group, topic), _loggerFactory, FastCommits);
        var lease = await hub.AcquireAsync(topic, 0, CancellationToken.None);
        await using var healthy = await hub.AcquireAsync(topic, 1, CancellationToken.None);
        var before = await ReadAsync(lease, 100);
        lease.MarkProcessed(before[^1].Offset);

        using var producer = Producer(_cluster.Bootstrap);
        _cluster.SetBrokerDown(2);
        var whileDown = KafkaTestSupport.ProduceAsync(producer, topic, 0, 100, startAt: 100);
        await KafkaTestSupport.ProduceAsync(producer, topic, 1, 20);
        Assert.Equal(20, (await ReadAsync(healthy, 20)).Count); // the other broker's partition keeps flowing
        var outage = Stopwatch.StartNew();
        // The scenario is a 5 s outage; this wait is its duration, not a synchronisation.
        await Task.Delay(TimeSpan.FromSeconds(5) - outage.Elapsed is { Ticks: > 0 } rest ? rest : TimeSpan.Zero);
        _cluster.SetBrokerUp(2);
        await whileDown.WaitAsync(TimeSpan.FromSeconds(30));

        var after = await ReadAsync(lease, 100);
        Assert.Equal(Enumerable.Range(100, 100).Select(i => (long)i), after.Select(r => r.Offset));
        Assert.Equal(Enumerable.Range(100, 100).Select(i => $"v{i}"), after.Select(r => Text(r.Value)));
        lease.MarkProcessed(199);
        await lease.DisposeAsync();
        Assert.Equal(200, CommittedByGroup(group, topic, 0));
    }

    [Fact]
    public async Task Topics_created_after_start_are_assigned_by_the_group_at_its_next_metadata_refresh()
    {
        var existing = Topic(2);
        var later = Unique("later");
        await using var hub = new KafkaConsumerHub("c1", Options(Unique("g"), existing, later), _loggerFactory,
            FastCommits with { MetadataRefresh = TimeSpan.FromSeconds(1) });
        hub.Join();

        await WaitUntilAsync(() => hub.Assignment().Count == 2, "the existing topic's partitions");
        Assert.Equal([(existing, 0), (existing, 1)], hub.Assignment());

        _cluster.CreateTopic(later, 3);
        await WaitUntilAsync(() => hub.Assignment().Count == 5, "the new topic's partitions");
        Assert.Equal(
            new[] { (existing, 0), (existing, 1), (later, 0), (later, 1), (later, 2) }
                .OrderBy(p => p.Item1, StringComparer.Ordinal).ThenBy(p => p.Item2),
            hub.Assignment());
    }

    [Fact]
    public async Task The_sasl_password_never_appears_in_logs_or_exceptions()
    {
        const string password = "Hunter2-Very-Secret";
        var topic = Topic(1);
        var options = Options(Unique("g"), topic) with { SaslMechanism = "plain", SaslUser = "alice", SaslPassword = password };
        var failures = new List<Exception>();
        await using (var hub = new KafkaConsumerHub("c1", options, _loggerFactory, FastCommits))
        {
            using var giveUp = new CancellationTokenSource(TimeSpan.FromSeconds(3));
            failures.Add(await Assert.ThrowsAnyAsync<OperationCanceledException>(() => hub.AcquireAsync(topic, 0, giveUp.Token)));
            Assert.Empty(hub.Assignment());
            await WaitUntilAsync(() => _logs.Lines.Any(l => l.Contains("SASL", StringComparison.OrdinalIgnoreCase)),
                "the SASL failure to be logged");
        }

        Assert.Contains(_logs.Lines, l => l.Contains("c1", StringComparison.Ordinal));
        Assert.DoesNotContain(_logs.Lines, l => l.Contains(password, StringComparison.Ordinal));
        Assert.All(failures, e => Assert.DoesNotContain(password, e.ToString(), StringComparison.Ordinal));
    }
}
