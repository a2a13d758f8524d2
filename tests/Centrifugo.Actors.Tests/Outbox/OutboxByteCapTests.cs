using System.Text.Json;
using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.StandIn;
using Centrifugo.Actors.Tests.Node;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.Outbox;

/// <summary>
/// Byte caps on outbox reads, on a whole node against the stand-in: a read stops at partition_select_max_bytes (so a
/// backlog of large rows goes out in smaller requests), and a row over payload_max_bytes is dead-lettered by its size,
/// in its place, while the rows around it are delivered in order.
/// </summary>
public sealed class OutboxByteCapTests(PostgresFixture pg, ITestOutputHelper output) : IClassFixture<PostgresFixture>, IAsyncLifetime
{
    private CentrifugoStandIn _standIn = null!;

    public async Task InitializeAsync() => _standIn = await CentrifugoStandIn.StartNewAsync();

    public async Task DisposeAsync() => await _standIn.DisposeAsync();

    private static string Publish(int seq, int pad) =>
        JsonSerializer.Serialize(new { channel = "caps:good", data = new { seq, pad = new string('x', pad) } });

    private static long Seq(ReceivedCommand c)
    {
        using var doc = JsonDocument.Parse(c.RequestJson);
        return doc.RootElement.GetProperty("data").GetProperty("seq").GetInt64();
    }

    [Fact]
    public async Task A_backlog_of_large_rows_goes_out_in_reads_cut_by_the_byte_budget()
    {
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, PostgresFixture.UniqueName("outbox"));
        await table.InsertAsync(Enumerable.Range(0, 7).Select(i => new OutboxInsert("publish", Publish(i, 3_950), 0)));
        var consumer = TestNode.Postgres("pg_caps", pg.Instance.UrlDsn, table.Name, partitions: 1);
        consumer = consumer with { Postgresql = consumer.Postgresql with { PartitionSelectMaxBytes = 10_000 } };

        await using var node = await TestNode.StartAsync(TestNode.Options(_standIn.Url, _standIn.ApiKey, consumer), output);

        await _standIn.WaitForReceivedAsync(7, TimeSpan.FromSeconds(30));
        Assert.Equal(Enumerable.Range(0, 7).Select(i => (long)i), _standIn.ReceivedFor("caps:good").Select(Seq));
        // Each row is about 4 KB: three fit below 10,000 bytes, so the reads (and their /batch requests) hold 3, 3, 1.
        Assert.Equal([3, 3, 1], _standIn.RequestSizes);
    }

    [Theory]
    [InlineData("Bytea")]
    [InlineData("Jsonb")]
    public async Task A_row_over_the_payload_maximum_is_dead_lettered_by_its_size_and_the_rows_around_it_are_delivered_in_order(
        string payloadType)
    {
        var table = await OutboxTestTable.CreateAsync(
            pg.DataSource, PostgresFixture.UniqueName("outbox"), Enum.Parse<OutboxPayloadType>(payloadType));
        await table.InsertAsync([new OutboxInsert("publish", Publish(0, 10), 0)]);
        await table.InsertAsync([new OutboxInsert("publish", Publish(-1, 6_000), 0)]);
        await table.InsertAsync([new OutboxInsert("publish", Publish(1, 10), 0), new OutboxInsert("publish", Publish(2, 10), 0)]);
        var consumer = TestNode.Postgres("pg_caps", pg.Instance.UrlDsn, table.Name, partitions: 1);
        consumer = consumer with { Postgresql = consumer.Postgresql with { PayloadMaxBytes = 4_000 } };

        await using var node = await TestNode.StartAsync(TestNode.Options(_standIn.Url, _standIn.ApiKey, consumer), output);

        await Poll.UntilAsync(async () => await table.CountAsync() == 0, "outbox drained", TimeSpan.FromSeconds(30));
        Assert.Equal([0L, 1L, 2L], _standIn.ReceivedFor("caps:good").Select(Seq));
        var dead = Assert.Single(await table.ReadDeadLettersAsync());
        Assert.Matches(@"^payload of 60\d\d bytes is over payload_max_bytes \(4000\): not read, not delivered$", dead.Reason);
        Assert.Contains("\"seq\"", dead.Payload, StringComparison.Ordinal); // the copy is whole: made in the database
        await node.Logs.WaitForAsync(
            l => l.Contains("[2001]", StringComparison.Ordinal) && l.Contains("payload_max_bytes", StringComparison.Ordinal),
            "dead letter logged");
    }
}
