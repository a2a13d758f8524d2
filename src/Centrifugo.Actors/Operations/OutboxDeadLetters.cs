using Centrifugo.Actors.Outbox;
using Npgsql;

namespace Centrifugo.Actors.Operations;

/// <summary>One row of a consumer's dead-letter table, as <c>dead-letters list</c> shows it.</summary>
internal sealed record DeadLetterItem(
    string Consumer, long Id, int Partition, string Method, string? Reason, DateTimeOffset FailedAt, string Payload);

/// <summary>What a replay moved: how many rows, the dead-letter ids, and per partition the new outbox ids in order.</summary>
internal sealed record ReplayResult(
    string Consumer, int Replayed, IReadOnlyList<long> DeadLetterIds, IReadOnlyDictionary<int, long[]> NewIdsByPartition);

/// <summary>
/// The operator's side of an outbox consumer's dead-letter table: listing, and replay back into the outbox. A replay
/// is one statement in one transaction: it locks the chosen dead-letter rows (FOR UPDATE), deletes them and inserts
/// them into the outbox in dead-letter id order (the original outbox id order), each in its own partition, with new
/// ids (so they queue behind what is pending there). A row is replayed at most once: a concurrent replay waits for
/// the row lock and then no longer finds it.
/// </summary>
internal static class OutboxDeadLetters
{
    /// <summary>At most this many rows per replay statement (the CLI repeats <c>--all</c> until nothing is left).</summary>
    public const int MaxReplayBatch = 10_000;

    public static async Task<(long Total, IReadOnlyList<DeadLetterItem> Items)> ListAsync(
        OutboxStore store, int limit, CancellationToken cancellationToken)
    {
        var sql = store.Sql;
        await using var connection = await store.OpenSessionAsync(cancellationToken);
        await using var batch = new NpgsqlBatch(connection);
        batch.BatchCommands.Add(new NpgsqlBatchCommand($"SELECT count(*) FROM {sql.DeadLetterTable} WHERE consumer = $1")
        {
            Parameters = { new NpgsqlParameter<string> { TypedValue = store.ConsumerName } },
        });
        batch.BatchCommands.Add(new NpgsqlBatchCommand(
            $"SELECT id, partition, method::text, reason, failed_at, left(payload::text, 200) FROM {sql.DeadLetterTable} " +
            "WHERE consumer = $1 ORDER BY id LIMIT $2")
        {
            Parameters =
            {
                new NpgsqlParameter<string> { TypedValue = store.ConsumerName },
                new NpgsqlParameter<int> { TypedValue = limit },
            },
        });
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        var total = reader.GetInt64(0);
        await reader.NextResultAsync(cancellationToken);
        var items = new List<DeadLetterItem>();
        while (await reader.ReadAsync(cancellationToken))
        {
            items.Add(new DeadLetterItem(store.ConsumerName, reader.GetInt64(0), reader.GetInt32(1), reader.GetString(2),
                reader.IsDBNull(3) ? null : reader.GetString(3), reader.GetFieldValue<DateTimeOffset>(4),
                reader.IsDBNull(5) ? "" : reader.GetString(5)));
        }
        return (total, items);
    }

    /// <summary>Replays the given dead-letter ids (null: the oldest <see cref="MaxReplayBatch"/>) of this consumer.</summary>
    public static async Task<ReplayResult> ReplayAsync(OutboxStore store, IReadOnlyList<long>? ids, CancellationToken cancellationToken)
    {
        var sql = store.Sql;
        var columns = sql.CopiedColumns.Where(c => c != "id").Select(OutboxSql.QuoteIdentifier).ToArray();
        var list = string.Join(", ", columns);
        var text =
            $"WITH picked AS (SELECT * FROM {sql.DeadLetterTable} WHERE consumer = $1 AND ($2::bigint[] IS NULL OR id = ANY($2)) " +
            "ORDER BY id LIMIT $3 FOR UPDATE), " +
            $"gone AS (DELETE FROM {sql.DeadLetterTable} d USING picked p WHERE d.id = p.id AND d.consumer = $1 RETURNING d.id), " +
            $"ins AS (INSERT INTO {sql.OutboxTable} ({list}) SELECT {list} FROM picked ORDER BY id RETURNING id, partition) " +
            "SELECT true, id::bigint, partition::int FROM ins UNION ALL SELECT false, id::bigint, NULL FROM gone";
        await using var connection = await store.OpenSessionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using var command = new NpgsqlCommand(text, connection, transaction);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = store.ConsumerName });
        command.Parameters.Add(new NpgsqlParameter
        {
            Value = ids is null ? DBNull.Value : ids.ToArray(),
            NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Bigint
        });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = MaxReplayBatch });
        var byPartition = new SortedDictionary<int, List<long>>();
        var gone = new List<long>();
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                if (!reader.GetBoolean(0))
                {
                    gone.Add(reader.GetInt64(1));
                    continue;
                }
                var partition = reader.GetInt32(2);
                if (!byPartition.TryGetValue(partition, out var newIds))
                {
                    byPartition[partition] = newIds = [];
                }
                newIds.Add(reader.GetInt64(1));
            }
        }
        await transaction.CommitAsync(cancellationToken);
        gone.Sort();
        return new ReplayResult(store.ConsumerName, byPartition.Values.Sum(v => v.Count), gone,
            byPartition.ToDictionary(p => p.Key, p => p.Value.Order().ToArray()));
    }
}
