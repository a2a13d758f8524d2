using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.Processes;
using Centrifugo.Actors.Testing.StandIn;
using Npgsql;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.Processes;

/// <summary>
/// The outbox's transaction fence against a frozen owner (SIGSTOP, a stalled VM), with a real node process: the
/// database ends the frozen node's transaction after the fence, another owner takes the partition, and the node, once
/// it runs again, must not send what it read before it froze.
/// </summary>
[Collection(NodeProcessCollection.Name)]
public sealed class FrozenOwnerTests(PostgresFixture pg, ITestOutputHelper output) : IClassFixture<PostgresFixture>, IAsyncLifetime
{
    private const string Channel = "frozen:0";
    private CentrifugoStandIn _standIn = null!;

    public async Task InitializeAsync() => _standIn = await CentrifugoStandIn.StartNewAsync();

    public async Task DisposeAsync() => await _standIn.DisposeAsync();

    [Fact]
    public async Task A_node_frozen_while_the_database_answered_its_read_does_not_send_those_rows_after_another_owner_took_them()
    {
        // The read that takes the lock waits in PostgreSQL (this test holds the lock); the node freezes; the lock is
        // released, so the database grants it to the frozen node and sends it the rows, which sit unread in its socket.
        // The fence (api.timeout 1 s, one request per batch: idle 5 s) then ends the frozen node's session, another
        // owner delivers those rows and newer ones, and the node thaws with the old rows in hand. The send window must
        // count from before that read was sent, not from when the thawed node got round to reading the answer.
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, PostgresFixture.UniqueName("outbox"));
        const string consumer = "pg_frozen";
        var config = new NodeConfig
        {
            ApiUrl = _standIn.Url,
            ApiKey = _standIn.ApiKey,
            ApiTimeout = "1s",
            Consumers = [new PgConsumerConfig(consumer, pg.Instance.UrlDsn, table.Name, Partitions: 1, PollInterval: "20ms")],
        };
        var lockKey = (long)(uint)await table.LockKeyAsync();
        await using var node = config.Run("frozen");
        await node.WaitUntilReadyAsync(TimeSpan.FromSeconds(60));

        await using var other = await pg.DataSource.OpenConnectionAsync();
        await ExecuteAsync(other, "BEGIN");
        await ExecuteAsync(other, $"SELECT pg_advisory_xact_lock({(int)(uint)lockKey}, 0)");
        await table.InsertAsync(Enumerable.Range(0, 5).Select(i => OutboxRows.Publish(Channel, i, 0)));

        var nodeSession = 0;
        await Poll.UntilAsync(async () => (nodeSession = await LockSessionAsync(lockKey, granted: false)) != 0,
            "the node's read waiting for the partition lock", TimeSpan.FromSeconds(30));
        node.Stop();
        try
        {
            await ExecuteAsync(other, "COMMIT");
            await Poll.UntilAsync(async () => await LockSessionAsync(lockKey, granted: true) == nodeSession,
                "the frozen node's session granted the lock (its rows answered into its socket)", TimeSpan.FromSeconds(10));
            await Poll.UntilAsync(async () => !await SessionExistsAsync(nodeSession),
                "the database ending the frozen node's session after the fence", TimeSpan.FromSeconds(30));

            // The next owner (a second deployment, or the node that took the partition over) delivers them and newer rows.
            await table.InsertAsync(Enumerable.Range(5, 5).Select(i => OutboxRows.Publish(Channel, i, 0)));
            var delivered = await DeliverAsOtherOwnerAsync(other, table.QuotedName, lockKey);
            Assert.Equal(Enumerable.Range(0, 10).Select(i => (long)i), delivered);
        }
        finally
        {
            node.Continue();
        }

        await table.InsertAsync(Enumerable.Range(10, 5).Select(i => OutboxRows.Publish(Channel, i, 0)));
        await Poll.UntilAsync(async () => await table.CountAsync() == 0,
            "the thawed node delivering the newer rows", TimeSpan.FromSeconds(30));

        var received = _standIn.ReceivedFor(Channel).Select(OutboxRows.Seq).ToArray();
        output.WriteLine("received: " + string.Join(",", received));
        OutboxRows.AssertDeliveredInOrder(_standIn, Channel, 15);
        Assert.Equal(Enumerable.Range(0, 15).Select(i => (long)i), received); // nothing from before the freeze was sent again
    }

    private async Task<IReadOnlyList<long>> DeliverAsOtherOwnerAsync(NpgsqlConnection connection, string table, long lockKey)
    {
        await ExecuteAsync(connection, "BEGIN");
        await ExecuteAsync(connection, $"SELECT pg_advisory_xact_lock({(int)(uint)lockKey}, 0)");
        var rows = new List<(long Id, string Payload)>();
        await using (var select = new NpgsqlCommand(
            $"SELECT id, convert_from(payload, 'UTF8') FROM {table} WHERE partition = 0 ORDER BY id", connection))
        await using (var reader = await select.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                rows.Add((reader.GetInt64(0), reader.GetString(1)));
            }
        }

        using var http = new HttpClient();
        http.DefaultRequestHeaders.Add("X-API-Key", _standIn.ApiKey);
        var seqs = new List<long>();
        foreach (var (_, payload) in rows)
        {
            using var content = new StringContent(payload, System.Text.Encoding.UTF8, "application/json");
            using var response = await http.PostAsync(_standIn.Url + "/publish", content);
            response.EnsureSuccessStatusCode();
            seqs.Add(System.Text.Json.JsonDocument.Parse(payload).RootElement.GetProperty("data").GetProperty("seq").GetInt64());
        }

        await using (var delete = new NpgsqlCommand($"DELETE FROM {table} WHERE id = ANY($1)", connection))
        {
            delete.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = rows.Select(r => r.Id).ToArray() });
            await delete.ExecuteNonQueryAsync();
        }

        await ExecuteAsync(connection, "COMMIT");
        return seqs;
    }

    private async Task<int> LockSessionAsync(long lockKey, bool granted)
    {
        await using var command = pg.DataSource.CreateCommand(
            "SELECT coalesce(min(pid), 0) " +
            "FROM pg_locks WHERE locktype = 'advisory' AND classid::bigint = $1 AND objid = 0 AND objsubid = 2 AND granted = $2");
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = lockKey });
        command.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = granted });
        return (int)(await command.ExecuteScalarAsync())!;
    }

    private async Task<bool> SessionExistsAsync(int pid)
    {
        await using var command = pg.DataSource.CreateCommand("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)");
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = pid });
        return (bool)(await command.ExecuteScalarAsync())!;
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }
}
