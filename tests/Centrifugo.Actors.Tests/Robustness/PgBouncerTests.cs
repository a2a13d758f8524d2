using System.Text.Json;
using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.StandIn;
using Centrifugo.Actors.Tests.Node;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.Robustness;

/// <summary>
/// Behind a real PgBouncer 1.18 in transaction pooling mode (it keeps no prepared statements across transactions),
/// with the DSN parameter Centrifugo's PgBouncer users already set for pgx.
/// </summary>
public sealed class PgBouncerTests(PostgresFixture pg, ITestOutputHelper output) : IClassFixture<PostgresFixture>, IAsyncLifetime
{
    private CentrifugoStandIn _standIn = null!;

    public async Task InitializeAsync() => _standIn = await CentrifugoStandIn.StartNewAsync();

    public async Task DisposeAsync() => await _standIn.DisposeAsync();

    [Theory]
    [InlineData("default_query_exec_mode=simple_protocol")]
    [InlineData("default_query_exec_mode=exec")]
    [InlineData("statement_cache_capacity=0")]
    public async Task The_pgx_parameters_for_transaction_pooling_turn_prepared_statements_off(string parameter)
    {
        await using var bouncer = await PgBouncerProcess.StartAsync(pg.Instance);
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name);
        const int perPartition = 60;
        await table.InsertAsync(Enumerable.Range(0, perPartition * 3).Select(i =>
            new OutboxInsert(
                "publish", JsonSerializer.Serialize(new { channel = $"bouncer:{i % 3}", data = new { seq = i / 3 } }), i % 3)));

        // A small select limit: every partition runs the same statements many times, well past Npgsql's auto-prepare threshold.
        await using var node = await TestNode.StartAsync(TestNode.Options(_standIn.Url, _standIn.ApiKey,
            TestNode.Postgres("pg_bouncer", bouncer.UrlDsn() + "&" + parameter, name, partitions: 3, selectLimit: 5)), output);

        await Poll.UntilAsync(async () => await table.CountAsync() == 0, "outbox drained through pgbouncer", TimeSpan.FromSeconds(60));
        for (var p = 0; p < 3; p++)
        {
            Assert.Equal(Enumerable.Range(0, perPartition).Select(i => (long)i),
                _standIn.ReceivedFor($"bouncer:{p}")
                    .Select(c => JsonDocument.Parse(c.RequestJson).RootElement.GetProperty("data").GetProperty("seq").GetInt64()));
        }
        // No statement was prepared behind PgBouncer's back, so none went missing on another server connection.
        Assert.DoesNotContain(node.Logs.Lines, l =>
            l.Contains("prepared statement", StringComparison.OrdinalIgnoreCase) || l.Contains("26000", StringComparison.Ordinal));
    }

    [Fact]
    public void An_unknown_exec_mode_is_refused_with_the_parameter_named()
    {
        var e = Assert.Throws<FormatException>(() => Centrifugo.Actors.Configuration.PostgresDsn.ToNpgsqlConnectionString(
            "postgres://u:secret@h/db?default_query_exec_mode=turbo"));
        Assert.Contains("default_query_exec_mode", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", e.Message, StringComparison.Ordinal);
    }
}
