using System.Text.Json;
using Centrifugo.Actors.Testing.Kafka;
using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.StandIn;
using Xunit.Abstractions;
using static Centrifugo.Actors.Tests.Kafka.KafkaTestSupport;
using static Centrifugo.Actors.Tests.KafkaNode.KafkaNodeSupport;

namespace Centrifugo.Actors.Tests.Node;

/// <summary>
/// derive_idempotency_key and the shrinking delivery window on whole nodes: Centrifugo (the stand-in, which honours
/// idempotency keys) answers error 100 to a steady share of the commands; every command must reach subscribers once,
/// in order, although the node re-sends the tails of failed batches.
/// </summary>
public sealed class IdempotentRedeliveryTests(PostgresFixture pg, ITestOutputHelper output) : IClassFixture<PostgresFixture>, IAsyncLifetime
{
    private CentrifugoStandIn _standIn = null!;

    public async Task InitializeAsync() => _standIn = await CentrifugoStandIn.StartNewAsync();

    public async Task DisposeAsync() => await _standIn.DisposeAsync();

    private static string PublishJson(string channel, long seq, string? key = null) => key is null
        ? JsonSerializer.Serialize(new { channel, data = new { seq } })
        : JsonSerializer.Serialize(new { channel, data = new { seq }, idempotency_key = key });

    /// <summary>Sequence numbers in the order they reached subscribers (suppressed repeats left out).</summary>
    private IReadOnlyList<long> Published(string channel) =>
        _standIn.ReceivedFor(channel).Where(c => c.Published > 0).Select(Seq).ToList();

    /// <summary>
    /// Every command published exactly once. Order: Centrifugo runs a /batch to its end, so the commands behind one that
    /// failed with error 100 are published before its retry, and their re-sends are dropped by their keys: the failed
    /// command reaches subscribers after at most the rest of its request (max_batch_size - 1 commands), never later.
    /// </summary>
    private static void AssertEachOnceDisplacedAtMostOneRequest(IReadOnlyList<long> published, int count, int maxBatchSize)
    {
        Assert.Equal(Enumerable.Range(0, count).Select(i => (long)i), published.Order());
        for (var position = 0; position < published.Count; position++)
        {
            // Everything published before seq n that is larger than n came from n's own request.
            var later = published.Take(position).Count(s => s > published[position]);
            Assert.True(later < maxBatchSize, $"seq {published[position]} published after {later} later commands");
        }
    }

    [Fact]
    public async Task Outbox_with_derived_keys_publishes_every_command_once_under_a_steady_error_rate()
    {
        const int rows = 600;
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name);
        await table.InsertAsync(Enumerable.Range(0, rows).Select(i => new OutboxInsert("publish", PublishJson("idem:pg", i), 0)));
        _standIn.FailOneIn(30, seed: 7);
        var consumer = TestNode.Postgres("pg_idem", pg.Instance.UrlDsn, name, partitions: 1);
        consumer = consumer with { Postgresql = consumer.Postgresql with { DeriveIdempotencyKey = true } };
        await using (var node = await TestNode.StartAsync(TestNode.Options(_standIn.Url, _standIn.ApiKey, consumer), output))
        {
            await Poll.UntilAsync(async () => await table.CountAsync() == 0, "outbox drained", TimeSpan.FromSeconds(60));
        }

        _standIn.FailOneIn(0);
        var received = _standIn.ReceivedFor("idem:pg");
        Assert.True(received.Count > rows, $"the error rate made the node re-send applied commands ({received.Count} accepted)");
        AssertEachOnceDisplacedAtMostOneRequest(Published("idem:pg"), rows, maxBatchSize: 100);
        Assert.All(received, c => Assert.StartsWith("ca:pg_idem:0:", c.IdempotencyKey, StringComparison.Ordinal));
        Assert.Empty(await table.ReadDeadLettersAsync());

        // The window: after failures, requests carry far fewer commands than max_batch_size (100), then grow back.
        var sizes = _standIn.RequestSizes;
        var smallest = sizes.Select((size, index) => (size, index)).MinBy(x => x.size);
        Assert.True(smallest.size <= 25, $"request sizes: {string.Join(",", sizes)}");
        Assert.Contains(sizes.Skip(smallest.index + 1), s => s == 100);
    }

    [Fact]
    public async Task Without_the_option_the_redelivered_tails_reach_subscribers_again()
    {
        const int rows = 300;
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name);
        await table.InsertAsync(Enumerable.Range(0, rows).Select(i => new OutboxInsert("publish", PublishJson("plain:pg", i), 0)));
        _standIn.FailNext(1, errorCode: 100, skip: 10);
        await using (var node = await TestNode.StartAsync(TestNode.Options(_standIn.Url, _standIn.ApiKey,
            TestNode.Postgres("pg_plain", pg.Instance.UrlDsn, name, partitions: 1)), output))
        {
            await Poll.UntilAsync(async () => await table.CountAsync() == 0, "outbox drained", TimeSpan.FromSeconds(60));
        }

        var received = _standIn.ReceivedFor("plain:pg");
        Assert.All(received, c => Assert.Null(c.IdempotencyKey));
        Assert.True(Published("plain:pg").Count > rows, "seq 11..99 were applied by the failed batch and published again");
        AssertNoLossAndLastOccurrencesInOrder(received.Select(Seq).ToList(), rows);
    }

    [Fact]
    public async Task A_whole_batch_applied_but_answered_too_late_is_not_published_again()
    {
        // Centrifugo applies the batch but its reply comes after api.timeout (2 s): the node re-sends the whole batch.
        const int rows = 50;
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name);
        await table.InsertAsync(Enumerable.Range(0, rows).Select(i => new OutboxInsert("publish", PublishJson("late:pg", i), 0)));
        _standIn.ResponseDelay = TimeSpan.FromSeconds(3);
        var consumer = TestNode.Postgres("pg_late_reply", pg.Instance.UrlDsn, name, partitions: 1);
        consumer = consumer with { Postgresql = consumer.Postgresql with { DeriveIdempotencyKey = true } };
        await using var node = await TestNode.StartAsync(TestNode.Options(_standIn.Url, _standIn.ApiKey, consumer), output);
        await Poll.UntilAsync(() => node.Board.Snapshot().Any(s => s.Errors >= 1),
            "the late reply counted as a timeout", TimeSpan.FromSeconds(30));
        _standIn.ResponseDelay = TimeSpan.Zero;
        await Poll.UntilAsync(async () => await table.CountAsync() == 0, "outbox drained", TimeSpan.FromSeconds(30));

        Assert.True(_standIn.ReceivedFor("late:pg").Count >= 2 * rows, "the batch was sent again");
        Assert.Equal(Enumerable.Range(0, rows).Select(i => (long)i), Published("late:pg"));
    }

    [Fact]
    public async Task Commands_with_their_own_key_keep_it()
    {
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name);
        await table.InsertAsync(
        [
            new OutboxInsert("publish", PublishJson("own:pg", 0, key: "app-key-0"), 0),
            new OutboxInsert("publish", PublishJson("own:pg", 1), 0),
            new OutboxInsert("",
                """{"method":"broadcast","payload":{"channels":["own:pg","own:b"],"data":{"seq":2},"idempotency_key":"app-key-2"}}""", 0),
            new OutboxInsert("", """{"method":"broadcast","payload":{"channels":["own:pg","own:b"],"data":{"seq":3}}}""", 0),
            new OutboxInsert("subscribe", """{"channel":"own:pg","user":"u"}""", 0),
        ]);
        var ids = await table.IdsAsync();
        var consumer = TestNode.Postgres("pg_own", pg.Instance.UrlDsn, name, partitions: 1);
        consumer = consumer with { Postgresql = consumer.Postgresql with { DeriveIdempotencyKey = true } };
        await using var node = await TestNode.StartAsync(TestNode.Options(_standIn.Url, _standIn.ApiKey, consumer), output);
        await Poll.UntilAsync(async () => await table.CountAsync() == 0, "outbox drained", TimeSpan.FromSeconds(30));

        var received = _standIn.ReceivedFor("own:pg");
        Assert.Equal(new string?[] { "app-key-0", $"ca:pg_own:0:{ids[1]}", "app-key-2", $"ca:pg_own:0:{ids[3]}", null },
            received.Select(c => c.IdempotencyKey));
        Assert.Equal(PublishJson("own:pg", 0, key: "app-key-0"), received[0].RequestJson);
        Assert.Equal("""{"channel":"own:pg","user":"u"}""", received[4].RequestJson);
    }

    [Fact]
    public async Task Kafka_with_derived_keys_publishes_every_record_once_under_a_steady_error_rate()
    {
        const int count = 400;
        using var cluster = KafkaMockCluster.Create(brokers: 1);
        var topic = Unique("idem");
        cluster.CreateTopic(topic, 2);
        _standIn.FailOneIn(30, seed: 11);
        var consumer = TestNode.Kafka("k_idem", cluster.Bootstrap, Unique("g"), topic);
        consumer = consumer with { Kafka = consumer.Kafka with { DeriveIdempotencyKey = true, MaxPollRecords = 200 } };
        await using var node = await TestNode.StartAsync(TestNode.Options(_standIn.Url, _standIn.ApiKey, consumer), output);
        using (var producer = Producer(cluster.Bootstrap))
        {
            await Task.WhenAll(Enumerable.Range(0, 2).Select(p => ProduceEnvelopesAsync(producer, topic, p, "idem:", count)));
        }

        for (var p = 0; p < 2; p++)
        {
            var channel = $"idem:p{p}";
            await Poll.UntilAsync(() => Published(channel).Count >= count, $"{channel} published", TimeSpan.FromSeconds(60));
        }

        _standIn.FailOneIn(0);
        for (var p = 0; p < 2; p++)
        {
            var channel = $"idem:p{p}";
            AssertEachOnceDisplacedAtMostOneRequest(Published(channel), count, maxBatchSize: 100);
            Assert.All(_standIn.ReceivedFor(channel), c => Assert.Equal($"ca:k_idem:{topic}:{p}:{Seq(c)}", c.IdempotencyKey));
        }
    }
}
