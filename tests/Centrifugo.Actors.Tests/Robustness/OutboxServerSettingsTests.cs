using System.Text.Json;
using Centrifugo.Actors.Outbox;
using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.StandIn;
using Centrifugo.Actors.Tests.Node;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.Robustness;

/// <summary>Real-database settings: a short idle-in-transaction timeout, Centrifugo's documented table without the (partition, id)
/// index.</summary>
public sealed class OutboxServerSettingsTests(PostgresFixture pg, ITestOutputHelper output) : IClassFixture<PostgresFixture>, IAsyncLifetime
{
    private CentrifugoStandIn _standIn = null!;

    public async Task InitializeAsync() => _standIn = await CentrifugoStandIn.StartNewAsync();

    public async Task DisposeAsync() => await _standIn.DisposeAsync();

    [Fact]
    public async Task A_server_idle_in_transaction_timeout_shorter_than_a_pass_is_detected_and_survived()
    {
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name);
        await table.InsertAsync(Enumerable.Range(0, 40).Select(i =>
            new OutboxInsert("publish", JsonSerializer.Serialize(new { channel = "idle:a", data = new { seq = i } }), 0)));
        _standIn.Latency = TimeSpan.FromMilliseconds(400);
        // As if set for the role on a managed server: every session of this consumer gets 300 ms.
        var dsn = pg.Instance.UrlDsn + "&options=" + Uri.EscapeDataString("-c idle_in_transaction_session_timeout=300");
        var options = TestNode.Options(
            _standIn.Url, _standIn.ApiKey, TestNode.Postgres("pg_idle", dsn, name, partitions: 1, selectLimit: 20));
        options = options with { Api = options.Api with { MaxBatchSize = 5 } };

        await using var node = await TestNode.StartAsync(options, output);

        // Each pass sits idle in its transaction for 4 requests x 400 ms, far beyond 300 ms.
        await Poll.UntilAsync(async () => await table.CountAsync() == 0, "outbox drained", TimeSpan.FromSeconds(60));
        Assert.Equal(Enumerable.Range(0, 40).Select(i => (long)i),
            _standIn.ReceivedFor("idle:a")
                .Select(c => JsonDocument.Parse(c.RequestJson).RootElement.GetProperty("data").GetProperty("seq").GetInt64()));
        Assert.Contains(node.Logs.Lines, l =>
            l.Contains("[3104]", StringComparison.Ordinal) && l.Contains("TimeoutMs=300", StringComparison.Ordinal));
        Assert.DoesNotContain(node.Logs.Lines, l => l.Contains("[2004]", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_table_without_a_partition_index_is_reported_at_start_up_with_the_exact_create_index()
    {
        var name = PostgresFixture.UniqueName("outbox");
        await using (var create = pg.DataSource.CreateCommand(
            $"CREATE TABLE {name} (id BIGSERIAL PRIMARY KEY, method text NOT NULL, payload BYTEA NOT NULL, partition INTEGER NOT NULL)"))
        {
            await create.ExecuteNonQueryAsync();
        }

        await using (var node = await TestNode.StartAsync(TestNode.Options(_standIn.Url, _standIn.ApiKey,
            TestNode.Postgres("pg_noindex", pg.Instance.UrlDsn, name, partitions: 1)), output))
        {
            var line = Assert.Single(node.Logs.Lines, l => l.Contains("[3103]", StringComparison.Ordinal));
            Assert.Contains($"CREATE INDEX CONCURRENTLY IF NOT EXISTS \"{name}_partition_id_idx\" ON \"{name}\" (partition, id)", line,
                StringComparison.Ordinal);
        }

        // The printed statement works and silences the warning.
        await using (var index = pg.DataSource.CreateCommand(new OutboxSql(name, name + "_dl").CreatePartitionIndex))
        {
            await index.ExecuteNonQueryAsync();
        }
        await using var again = await TestNode.StartAsync(TestNode.Options(_standIn.Url, _standIn.ApiKey,
            TestNode.Postgres("pg_noindex", pg.Instance.UrlDsn, name, partitions: 1)), output);
        Assert.DoesNotContain(again.Logs.Lines, l => l.Contains("[3103]", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_pool_that_two_nodes_could_grow_past_max_connections_is_reported_at_start_up()
    {
        var name = PostgresFixture.UniqueName("outbox");
        await OutboxTestTable.CreateAsync(pg.DataSource, name);

        // The test server allows 200 connections; Npgsql's default pool is 100 per node and consumer.
        await using (var node = await TestNode.StartAsync(TestNode.Options(_standIn.Url, _standIn.ApiKey,
            TestNode.Postgres("pg_pool", pg.Instance.UrlDsn, name, partitions: 1)), output))
        {
            Assert.Contains(node.Logs.Lines, l => l.Contains("[3105]", StringComparison.Ordinal)
                && l.Contains("Pool=100", StringComparison.Ordinal) && l.Contains("MaxConnections=200", StringComparison.Ordinal));
        }

        await using var small = await TestNode.StartAsync(TestNode.Options(_standIn.Url, _standIn.ApiKey,
            TestNode.Postgres("pg_pool", pg.Instance.UrlDsn + "&pool_max_conns=10", name, partitions: 1)), output);
        Assert.DoesNotContain(small.Logs.Lines, l => l.Contains("[3105]", StringComparison.Ordinal));
    }
}
