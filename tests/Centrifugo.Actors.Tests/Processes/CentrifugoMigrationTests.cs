using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.Processes;
using Centrifugo.Actors.Testing.StandIn;
using Npgsql;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.Processes;

/// <summary>
/// Migrating from Centrifugo's built-in postgresql consumer: while Centrifugo's consumer (emulated here by its own loop
/// and statements, internal/consuming/postgresql.go) and a node of ours with centrifugo_compatible_lock both read one
/// outbox table, every row is delivered once, in order.
/// </summary>
[Collection(NodeProcessCollection.Name)]
public sealed class CentrifugoMigrationTests(PostgresFixture pg, ITestOutputHelper output) : IClassFixture<PostgresFixture>, IAsyncLifetime
{
    private const int Partitions = 2;
    private const string Consumer = "pg_migrating";
    private CentrifugoStandIn _standIn = null!;

    public async Task InitializeAsync() => _standIn = await CentrifugoStandIn.StartNewAsync();

    public async Task DisposeAsync() => await _standIn.DisposeAsync();

    [Fact]
    public async Task Centrifugo_consumer_and_ours_with_the_compatible_lock_deliver_every_row_once_in_order()
    {
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, PostgresFixture.UniqueName("outbox"));
        var config = new NodeConfig
        {
            ApiUrl = _standIn.Url,
            ApiKey = _standIn.ApiKey,
            Consumers = [new PgConsumerConfig(Consumer, pg.Instance.UrlDsn, table.Name, Partitions, PollInterval: "20ms")],
        };
        await using var node = config.Run("ours", new Dictionary<string, string?>
        {
            ["CENTRIFUGO_CONSUMERS_PG_MIGRATING_POSTGRESQL_CENTRIFUGO_COMPATIBLE_LOCK"] = "true",
        });
        await node.WaitUntilReadyAsync(TimeSpan.FromSeconds(60));

        using var stop = new CancellationTokenSource();
        using var http = new HttpClient();
        http.DefaultRequestHeaders.Add("X-API-Key", _standIn.ApiKey);
        var centrifugoDelivered = new long[1];
        var centrifugo = Enumerable.Range(0, Partitions)
            .Select(p => Task.Run(() => CentrifugoWorkerAsync(table.QuotedName, p, http, centrifugoDelivered, stop.Token)))
            .ToArray();

        // Bursts that fill several select-limit batches, so both consumers contend for every partition.
        var produced = new long[Partitions];
        for (var burst = 0; burst < 20; burst++)
        {
            var rows = new List<OutboxInsert>();
            for (var p = 0; p < Partitions; p++)
            {
                for (var i = 0; i < 150; i++)
                {
                    rows.Add(OutboxRows.Publish($"mig:{p}", produced[p]++, p));
                }
            }
            await table.InsertAsync(rows);
        }

        await Poll.UntilAsync(async () => await table.CountAsync() == 0, "outbox drained by both consumers", TimeSpan.FromSeconds(120));
        await stop.CancelAsync();
        await Task.WhenAll(centrifugo);

        var ours = _standIn.ReceivedCount - Interlocked.Read(ref centrifugoDelivered[0]);
        output.WriteLine(
            $"produced {produced.Sum()}, received {_standIn.ReceivedCount}: Centrifugo's loop {centrifugoDelivered[0]}, ours {ours}");
        Assert.True(centrifugoDelivered[0] > 0 && ours > 0, "both consumers must have delivered, or nothing was contended");
        for (var p = 0; p < Partitions; p++)
        {
            OutboxRows.AssertDeliveredInOrder(_standIn, $"mig:{p}", produced[p]);
        }
        Assert.Equal(produced.Sum(), _standIn.ReceivedCount); // nothing failed, so nothing is delivered twice
    }

    /// <summary>
    /// Centrifugo's per-partition worker: a READ COMMITTED transaction, its advisory lock, the SELECT, the rows
    /// dispatched one by one, the DELETE and COMMIT; the poll interval when the batch was short.
    /// </summary>
    private async Task CentrifugoWorkerAsync(string table, int partition, HttpClient http, long[] delivered, CancellationToken stop)
    {
        const int limit = 100;
        await using var connection = await pg.DataSource.OpenConnectionAsync(CancellationToken.None);
        while (!stop.IsCancellationRequested)
        {
            await ExecuteAsync(connection, "BEGIN ISOLATION LEVEL READ COMMITTED");
            await using (var lockCommand = new NpgsqlCommand("SELECT pg_advisory_xact_lock(hashtext($1))", connection))
            {
                lockCommand.Parameters.Add(
                    new NpgsqlParameter<string> { TypedValue = "centrifugo_partition_lock_" + Consumer + partition });
                await lockCommand.ExecuteNonQueryAsync(CancellationToken.None);
            }

            var rows = new List<(long Id, string Method, string Payload)>();
            await using (var select = new NpgsqlCommand(
                $"SELECT id, method, convert_from(payload, 'UTF8'), partition FROM {table} WHERE partition = $1 ORDER BY id ASC LIMIT $2",
                connection))
            {
                select.Parameters.Add(new NpgsqlParameter<int> { TypedValue = partition });
                select.Parameters.Add(new NpgsqlParameter<int> { TypedValue = limit });
                await using var reader = await select.ExecuteReaderAsync(CancellationToken.None);
                while (await reader.ReadAsync(CancellationToken.None))
                {
                    rows.Add((reader.GetInt64(0), reader.GetString(1), reader.GetString(2)));
                }
            }

            foreach (var (_, method, payload) in rows)
            {
                using var content = new StringContent(payload, System.Text.Encoding.UTF8, "application/json");
                using var response = await http.PostAsync($"{_standIn.Url}/{method}", content, CancellationToken.None);
                response.EnsureSuccessStatusCode();
                Interlocked.Increment(ref delivered[0]);
            }

            if (rows.Count > 0)
            {
                await using var delete = new NpgsqlCommand($"DELETE FROM {table} WHERE id = ANY($1)", connection);
                delete.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = rows.Select(r => r.Id).ToArray() });
                await delete.ExecuteNonQueryAsync(CancellationToken.None);
            }
            await ExecuteAsync(connection, "COMMIT");

            if (rows.Count < limit)
            {
                try
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(20), stop); // Centrifugo's partition_poll_interval
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(CancellationToken.None);
    }
}
