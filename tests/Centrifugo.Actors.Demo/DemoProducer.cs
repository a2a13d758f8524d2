using System.Text.Json;
using Centrifugo.Actors.Testing.StandIn;
using Npgsql;

namespace Centrifugo.Actors.Demo;

internal static class DemoSql
{
    // Centrifugo's outbox table (spec §2.2) with the index every real deployment needs, and the NOTIFY trigger.
    public const string Schema = """
        CREATE TABLE IF NOT EXISTS centrifugo_outbox (
          id BIGSERIAL PRIMARY KEY, method text NOT NULL, payload BYTEA NOT NULL, partition INTEGER NOT NULL);
        CREATE INDEX IF NOT EXISTS centrifugo_outbox_partition_id_idx ON centrifugo_outbox (partition, id);
        CREATE OR REPLACE FUNCTION centrifugo_notify_partition_change() RETURNS TRIGGER AS $$
        BEGIN PERFORM pg_notify('centrifugo_partition_change', NEW.partition::text); RETURN NEW; END;
        $$ LANGUAGE plpgsql;
        CREATE OR REPLACE TRIGGER centrifugo_notify_partition_trigger AFTER INSERT ON centrifugo_outbox
          FOR EACH ROW EXECUTE FUNCTION centrifugo_notify_partition_change();
        """;
}

/// <summary>Writes sample commands the way an application would: one INSERT per business transaction.</summary>
internal sealed class DemoProducer(string connectionString, int partitions)
{
    private long _produced;

    public long Produced => Interlocked.Read(ref _produced);

    public async Task RunAsync(int ratePerSecond, CancellationToken cancellationToken)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync(CancellationToken.None);
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
        var perTick = Math.Max(1, ratePerSecond / 10);
        long seq = 0;
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                await using var batch = new NpgsqlBatch(conn);
                for (var i = 0; i < perTick; i++)
                {
                    seq++;
                    var partition = (int)(seq % partitions);
                    var poison = seq % 499 == 0;
                    var method = poison ? "presence" : "publish";
                    var payload = JsonSerializer.SerializeToUtf8Bytes(new { channel = $"demo:p{partition}", data = new { seq } });
                    var cmd = new NpgsqlBatchCommand("INSERT INTO centrifugo_outbox (method, payload, partition) VALUES ($1, $2, $3)");
                    cmd.Parameters.Add(new NpgsqlParameter { Value = method });
                    cmd.Parameters.Add(new NpgsqlParameter { Value = payload });
                    cmd.Parameters.Add(new NpgsqlParameter { Value = partition });
                    batch.BatchCommands.Add(cmd);
                }
                await batch.ExecuteNonQueryAsync(CancellationToken.None);
                Interlocked.Add(ref _produced, perTick);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    public async Task<long> PendingAsync(CancellationToken cancellationToken) =>
        await ScalarAsync("SELECT count(*) FROM centrifugo_outbox", cancellationToken);

    public async Task<long> DeadLettersAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await ScalarAsync("SELECT count(*) FROM centrifugo_outbox_dead_letter", cancellationToken);
        }
        catch (PostgresException)
        {
            return 0;
        }
    }

    /// <summary>Counts places where a channel received a lower sequence after a higher one.</summary>
    public int OrderViolations(CentrifugoStandIn standIn) => DemoOrder.Violations(standIn, "demo:p", partitions);

    private async Task<long> ScalarAsync(string sql, CancellationToken cancellationToken)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync(cancellationToken);
        await using var cmd = new NpgsqlCommand(sql, conn);
        return (long)(await cmd.ExecuteScalarAsync(cancellationToken))!;
    }
}
