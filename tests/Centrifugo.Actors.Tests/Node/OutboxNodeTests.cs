using System.Net;
using System.Text.Json;
using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.StandIn;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.Node;

/// <summary>A whole node against a real PostgreSQL and the Centrifugo stand-in over real HTTP.</summary>
public sealed class OutboxNodeTests(PostgresFixture pg, ITestOutputHelper output) : IClassFixture<PostgresFixture>, IAsyncLifetime
{
    private CentrifugoStandIn _standIn = null!;

    public async Task InitializeAsync() => _standIn = await CentrifugoStandIn.StartNewAsync();

    public async Task DisposeAsync() => await _standIn.DisposeAsync();

    private static string Publish(string channel, long seq) =>
        JsonSerializer.Serialize(new { channel, data = new { seq } });

    private static long Seq(ReceivedCommand c)
    {
        using var doc = JsonDocument.Parse(c.RequestJson);
        return doc.RootElement.GetProperty("data").GetProperty("seq").GetInt64();
    }

    [Fact]
    public async Task Delivers_every_row_in_order_per_partition_under_concurrent_producers()
    {
        const int partitions = 8, producers = 4, perProducer = 300;
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name);
        await using var node = await TestNode.StartAsync(TestNode.Options(_standIn.Url, _standIn.ApiKey,
            TestNode.Postgres("pg_order", pg.Instance.UrlDsn, name, partitions)), output);

        // Each producer commits its rows one transaction at a time, so within a (producer, partition) channel the
        // ids grow with the sequence: that order must be the delivery order.
        await Task.WhenAll(Enumerable.Range(0, producers).Select(p => Task.Run(async () =>
        {
            for (var i = 0; i < perProducer; i++)
            {
                var partition = i % partitions;
                await table.InsertOneAsync(new OutboxInsert("publish", Publish($"p{partition}:producer{p}", i), partition));
            }
        })));

        await _standIn.WaitForReceivedAsync(producers * perProducer, TimeSpan.FromSeconds(60));
        await Poll.UntilAsync(async () => await table.CountAsync() == 0, "outbox drained");
        for (var p = 0; p < producers; p++)
        {
            for (var partition = 0; partition < partitions; partition++)
            {
                var seqs = _standIn.ReceivedFor($"p{partition}:producer{p}").Select(Seq).ToArray();
                var expected = Enumerable.Range(0, perProducer).Where(i => i % partitions == partition).Select(i => (long)i).ToArray();
                Assert.Equal(expected, seqs);
            }
        }
    }

    [Fact]
    public async Task A_row_whose_lower_id_commits_late_is_still_delivered_while_batches_are_read_ahead()
    {
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name);
        // A producer takes an id and commits it only after 300 higher ids were committed (and mostly consumed).
        await using var late = await pg.DataSource.OpenConnectionAsync();
        await using var tx = await late.BeginTransactionAsync();
        await using (var insert = new Npgsql.NpgsqlCommand(
            $"INSERT INTO {table.QuotedName} (method, payload, partition) VALUES ('publish', $1, 0)", late, tx))
        {
            insert.Parameters.Add(
                new Npgsql.NpgsqlParameter<byte[]> { TypedValue = System.Text.Encoding.UTF8.GetBytes(Publish("late:x", -1)) });
            await insert.ExecuteNonQueryAsync();
        }
        await table.InsertAsync(Enumerable.Range(0, 300).Select(i => new OutboxInsert("publish", Publish("late:a", i), 0)));

        await using var node = await TestNode.StartAsync(TestNode.Options(_standIn.Url, _standIn.ApiKey,
            TestNode.Postgres("pg_late", pg.Instance.UrlDsn, name, partitions: 1, selectLimit: 10)), output);
        await Poll.UntilAsync(() => _standIn.ReceivedFor("late:a").Count >= 150, "half of the backlog delivered", TimeSpan.FromSeconds(30));
        await tx.CommitAsync();

        await Poll.UntilAsync(async () => await table.CountAsync() == 0, "outbox drained", TimeSpan.FromSeconds(30));
        Assert.Equal(Enumerable.Range(0, 300).Select(i => (long)i), _standIn.ReceivedFor("late:a").Select(Seq));
        Assert.Single(_standIn.ReceivedFor("late:x"));
        // The backlog was really read ahead (the row above was skipped by those reads and found by a head read).
        Assert.Contains(node.Logs.Lines, l =>
            l.Contains("Npgsql.Command [2000]", StringComparison.Ordinal) && l.Contains("AND id > $2", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_notification_alone_wakes_the_named_partition()
    {
        var name = PostgresFixture.UniqueName("outbox");
        var channel = PostgresFixture.UniqueName("chan");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name, notifyChannel: channel);
        await using var node = await TestNode.StartAsync(TestNode.Options(_standIn.Url, _standIn.ApiKey,
            TestNode.Postgres("pg_notify", pg.Instance.UrlDsn, name, partitions: 4, poll: TimeSpan.FromHours(1), channel: channel)),
            output);
        // Every partition made its first (empty) pass and now waits an hour unless notified.
        await node.WaitForPartitionsAsync(4);

        await table.InsertOneAsync(new OutboxInsert("publish", Publish("notify:x", 1), 3));

        await _standIn.WaitForReceivedAsync(1, TimeSpan.FromSeconds(10));
        Assert.Equal("notify:x", Assert.Single(_standIn.Received).Channels.Single());
        await Poll.UntilAsync(async () => await table.CountAsync() == 0, "row deleted");
    }

    [Fact]
    public async Task Poison_rows_move_to_the_dead_letter_table_and_the_rest_flows_in_order()
    {
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name);
        await table.InsertAsync(
        [
            new OutboxInsert("publish", Publish("ok:a", 1), 0),
            new OutboxInsert("", "{not json", 0),                                             // malformed envelope
            new OutboxInsert("presence", """{"channel":"ok:a"}""", 0),                        // read-only method
            new OutboxInsert("explode", """{"channel":"ok:a"}""", 0),                         // unknown method
            new OutboxInsert("publish", Publish("unknown:ns", 2), 0),                         // Centrifugo 102
            new OutboxInsert("publish", """{"channel": 5}""", 0),                            // does not decode: 400
            new OutboxInsert("", """{"method":"publish","payload":"{\"channel\":\"ok:a\",\"data\":{\"seq\":3}}"}""", 0),
            new OutboxInsert("publish", Publish("ok:a", 4), 0),
        ]);
        var ids = await table.IdsAsync();

        await using var node = await TestNode.StartAsync(TestNode.Options(_standIn.Url, _standIn.ApiKey,
            TestNode.Postgres("pg_poison", pg.Instance.UrlDsn, name, partitions: 1)), output);

        await Poll.UntilAsync(async () => await table.CountAsync() == 0, "outbox drained", TimeSpan.FromSeconds(30));
        Assert.Equal([1L, 3L, 4L], _standIn.ReceivedFor("ok:a").Select(Seq).ToArray());

        var dead = await table.ReadDeadLettersAsync();
        Assert.Equal([ids[1], ids[2], ids[3], ids[4], ids[5]], dead.Select(d => d.Id).Order().ToArray());
        Assert.All(dead, d => Assert.Equal("pg_poison", d.Consumer));
        Assert.Contains("malformed", dead.Single(d => d.Id == ids[1]).Reason, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("presence", dead.Single(d => d.Id == ids[2]).Reason, StringComparison.Ordinal);
        Assert.Contains("explode", dead.Single(d => d.Id == ids[3]).Reason, StringComparison.Ordinal);
        Assert.Contains("102", dead.Single(d => d.Id == ids[4]).Reason, StringComparison.Ordinal);
        Assert.Contains("400", dead.Single(d => d.Id == ids[5]).Reason, StringComparison.Ordinal);
        // Logged with consumer, partition and id.
        await node.Logs.WaitForAsync(
            l => l.Contains("Consumer=pg_poison", StringComparison.Ordinal)
                && l.Contains("Partition=0", StringComparison.Ordinal) && l.Contains($"RowId={ids[2]}", StringComparison.Ordinal),
            "dead letter with consumer, partition and id");
    }

    [Theory]
    [InlineData(100)]
    [InlineData(1)]
    public async Task Temporary_errors_are_retried_until_every_command_is_delivered_in_order(int maxBatchSize)
    {
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name);
        await table.InsertAsync(Enumerable.Range(0, 50).Select(i => new OutboxInsert("publish", Publish("retry:a", i), 0)));
        _standIn.FailNext(3, errorCode: 100, skip: 10);   // seq 10, 11, 12 get error 100 on their first attempt
        _standIn.FailNextRequests(2, 503);

        var options = TestNode.Options(
            _standIn.Url, _standIn.ApiKey, TestNode.Postgres("pg_retry", pg.Instance.UrlDsn, name, partitions: 1));
        options = options with { Api = options.Api with { MaxBatchSize = maxBatchSize } };
        await using var node = await TestNode.StartAsync(options, output);

        await Poll.UntilAsync(async () => await table.CountAsync() == 0, "outbox drained", TimeSpan.FromSeconds(30));
        var received = _standIn.ReceivedFor("retry:a").Select(Seq).ToArray();
        Assert.Empty(await table.ReadDeadLettersAsync());
        if (maxBatchSize == 1)
        {
            // One command per request: nothing after a failed command is sent before it is accepted.
            Assert.Equal(Enumerable.Range(0, 50).Select(i => (long)i), received);
        }
        else
        {
            // Centrifugo runs a /batch to its end even after an error, so 13..49 were applied in the first batch;
            // the retry re-sends 10..49 in order. Every command's LAST application is in order (final state
            // converges) and nothing is lost; the suffix is delivered twice (at-least-once).
            var lastOccurrence = received.Select((seq, index) => (seq, index)).GroupBy(x => x.seq)
                .Select(g => (seq: g.Key, last: g.Max(x => x.index))).OrderBy(x => x.last).Select(x => x.seq);
            Assert.Equal(Enumerable.Range(0, 50).Select(i => (long)i), lastOccurrence);
        }
    }

    [Fact]
    public async Task A_30_second_Centrifugo_outage_loses_nothing()
    {
        const int partitions = 4;
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name);
        await using var node = await TestNode.StartAsync(TestNode.Options(_standIn.Url, _standIn.ApiKey,
            TestNode.Postgres("pg_outage", pg.Instance.UrlDsn, name, partitions)), output);
        await node.WaitForPartitionsAsync(partitions);

        var outage = _standIn.SimulateOutageAsync(TimeSpan.FromSeconds(30));
        for (var i = 0; i < 400; i++)
        {
            await table.InsertOneAsync(new OutboxInsert("publish", Publish($"outage:{i % partitions}", i), i % partitions));
        }
        Assert.Equal(0, _standIn.ReceivedCount);
        await outage;

        await Poll.UntilAsync(async () => await table.CountAsync() == 0, "outbox drained after the outage", TimeSpan.FromSeconds(30));
        for (var p = 0; p < partitions; p++)
        {
            Assert.Equal(Enumerable.Range(0, 400).Where(i => i % partitions == p).Select(i => (long)i),
                _standIn.ReceivedFor($"outage:{p}").Select(Seq));
        }
        Assert.Empty(await table.ReadDeadLettersAsync());
    }

    [Fact]
    public async Task A_wrong_api_key_stalls_the_partition_deletes_nothing_and_turns_readiness_red()
    {
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name);
        await table.InsertAsync([new OutboxInsert("publish", Publish("auth:a", 1), 0)]);
        const string wrongKey = "wrong-key-c0ffee-0123456789";

        await using var node = await TestNode.StartAsync(TestNode.Options(_standIn.Url, wrongKey,
            TestNode.Postgres("pg_auth", pg.Instance.UrlDsn, name, partitions: 1)), output);

        await Poll.UntilAsync(() => node.Board.Stalled().Count == 1, "partition stalled", TimeSpan.FromSeconds(30));
        using var http = new HttpClient();
        var ready = await http.GetAsync(new Uri(node.AdminUrl + "/health/ready"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        Assert.Contains("401", await ready.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(1, await table.CountAsync());
        Assert.Empty(await table.ReadDeadLettersAsync());
        Assert.DoesNotContain(wrongKey, node.Logs.All, StringComparison.Ordinal);
        Assert.DoesNotContain(pg.Instance.Password, node.Logs.All, StringComparison.Ordinal);
    }
}
