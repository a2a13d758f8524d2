using System.Text;
using Centrifugo.Actors.Outbox;
using Npgsql;
using NpgsqlTypes;

namespace Centrifugo.Actors.Testing.Postgres;

/// <summary>Column type of <c>payload</c> (spec §2.2 allows all four).</summary>
internal enum OutboxPayloadType { Bytea, Jsonb, Json, Text }

/// <summary>A row to insert. <paramref name="Method"/> null inserts SQL NULL (the table is then created without NOT NULL).</summary>
internal sealed record OutboxInsert(string? Method, string Payload, int Partition);

/// <summary>A row of the dead-letter table.</summary>
internal sealed record DeadLetterRow(
    long Id, string? Method, string Payload, int Partition, string? Consumer, string? Reason, DateTimeOffset FailedAt);

/// <summary>
/// An outbox table with Centrifugo's DDL (spec §2.2) in a test database: create, fill (COPY binary), count, and
/// read its dead letters. The name is folded and quoted like the consumer does (<see cref="OutboxSql.QuoteTableName"/>).
/// </summary>
internal sealed class OutboxTestTable
{
    private readonly NpgsqlDataSource _dataSource;

    private OutboxTestTable(NpgsqlDataSource dataSource, string name, OutboxPayloadType payloadType)
    {
        _dataSource = dataSource;
        Name = name;
        QuotedName = OutboxSql.QuoteTableName(name);
        PayloadType = payloadType;
    }

    /// <summary>Name as a user writes it in outbox_table_name.</summary>
    public string Name { get; }
    public string QuotedName { get; }
    public OutboxPayloadType PayloadType { get; }

    /// <summary>Creates the table (and its schema), an index on (partition, id), and optionally Centrifugo's NOTIFY trigger.</summary>
    /// <param name="methodNullable">Drop NOT NULL from method, to test NULL methods.</param>
    public static async Task<OutboxTestTable> CreateAsync(
        NpgsqlDataSource dataSource, string name, OutboxPayloadType payloadType = OutboxPayloadType.Bytea,
        string? notifyChannel = null, bool methodNullable = false, CancellationToken cancellationToken = default)
    {
        var table = new OutboxTestTable(dataSource, name, payloadType);
        var q = table.QuotedName;
        var sql = new StringBuilder();
        if (name.Contains('.', StringComparison.Ordinal))
        {
            sql.Append($"CREATE SCHEMA IF NOT EXISTS {OutboxSql.QuoteIdentifier(name.Split('.')[0].ToLowerInvariant())};");
        }

        var type = payloadType switch
        {
            OutboxPayloadType.Bytea => "BYTEA", OutboxPayloadType.Jsonb => "JSONB",
            OutboxPayloadType.Json => "JSON", _ => "TEXT",
        };
        sql.Append($"CREATE TABLE {q} (id BIGSERIAL PRIMARY KEY, method text{(methodNullable ? "" : " NOT NULL")}, " +
            $"payload {type} NOT NULL, partition INTEGER NOT NULL);");
        var indexName = OutboxSql.QuoteIdentifier("ix_" + Guid.NewGuid().ToString("N"));
        sql.Append($"CREATE INDEX {indexName} ON {q} (partition, id);");
        if (notifyChannel is not null)
        {
            var fn = OutboxSql.QuoteIdentifier("notify_" + Guid.NewGuid().ToString("N"));
            var channelLiteral = "'" + notifyChannel.Replace("'", "''", StringComparison.Ordinal) + "'";
            sql.Append($"CREATE FUNCTION {fn}() RETURNS TRIGGER AS $$ BEGIN PERFORM pg_notify({channelLiteral}, NEW.partition::text); " +
                $"RETURN NEW; END; $$ LANGUAGE plpgsql;");
            sql.Append($"CREATE TRIGGER {fn} AFTER INSERT ON {q} FOR EACH ROW EXECUTE FUNCTION {fn}();");
        }

        await using var command = dataSource.CreateCommand(sql.ToString());
        await command.ExecuteNonQueryAsync(cancellationToken);
        return table;
    }

    /// <summary>
    /// key1 of the partitions' advisory locks (<see cref="OutboxSql.Lock"/>): the table's oid as an int, what
    /// <c>pg_advisory_xact_lock(key1, partition)</c> takes; pg_locks shows it as classid (unsigned).
    /// </summary>
    public async Task<int> LockKeyAsync(CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand("SELECT $1::regclass::oid::int");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = QuotedName });
        return (int)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <summary>Inserts rows in order with COPY … FROM STDIN (BINARY); ids follow the order. Fires row triggers.</summary>
    public async Task InsertAsync(IEnumerable<OutboxInsert> rows, CancellationToken cancellationToken = default)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await CopyAsync(connection, rows, cancellationToken);
    }

    /// <summary>
    /// Like <see cref="InsertAsync"/>, and in the same transaction sends one NOTIFY on <paramref name="channel"/> per
    /// partition in [0, <paramref name="partitions"/>) with the partition number as payload, as a producer (or the
    /// per-row trigger of spec §2.2, deduplicated by PostgreSQL within the transaction) would. The rows and the
    /// notifications become visible together at the commit.
    /// </summary>
    public async Task InsertAndNotifyAsync(
        IEnumerable<OutboxInsert> rows, string channel, int partitions, CancellationToken cancellationToken = default)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await CopyAsync(connection, rows, cancellationToken);
        await using (var notify = new NpgsqlCommand(
            "SELECT pg_notify($1, p::text) FROM generate_series(0, $2 - 1) AS p", connection, transaction))
        {
            notify.Parameters.Add(new NpgsqlParameter<string> { TypedValue = channel });
            notify.Parameters.Add(new NpgsqlParameter<int> { TypedValue = partitions });
            await notify.ExecuteNonQueryAsync(cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
    }

    private async Task CopyAsync(NpgsqlConnection connection, IEnumerable<OutboxInsert> rows, CancellationToken cancellationToken)
    {
        await using var importer = await connection.BeginBinaryImportAsync(
            $"COPY {QuotedName} (method, payload, partition) FROM STDIN (FORMAT BINARY)", cancellationToken);
        var payloadDbType = PayloadType switch
        {
            OutboxPayloadType.Bytea => NpgsqlDbType.Bytea, OutboxPayloadType.Jsonb => NpgsqlDbType.Jsonb,
            OutboxPayloadType.Json => NpgsqlDbType.Json, _ => NpgsqlDbType.Text,
        };
        foreach (var row in rows)
        {
            await importer.StartRowAsync(cancellationToken);
            if (row.Method is null)
            {
                await importer.WriteNullAsync(cancellationToken);
            }
            else
            {
                await importer.WriteAsync(row.Method, NpgsqlDbType.Text, cancellationToken);
            }

            if (PayloadType == OutboxPayloadType.Bytea)
            {
                await importer.WriteAsync(Encoding.UTF8.GetBytes(row.Payload), payloadDbType, cancellationToken);
            }
            else
            {
                await importer.WriteAsync(row.Payload, payloadDbType, cancellationToken);
            }

            await importer.WriteAsync(row.Partition, NpgsqlDbType.Integer, cancellationToken);
        }

        await importer.CompleteAsync(cancellationToken);
    }

    /// <summary>Inserts one row with a plain INSERT (fires the NOTIFY trigger like a producer would) and returns its id.</summary>
    public async Task<long> InsertOneAsync(OutboxInsert row, CancellationToken cancellationToken = default)
    {
        var cast = PayloadType switch
        {
            OutboxPayloadType.Bytea => "convert_to($2, 'UTF8')", OutboxPayloadType.Jsonb => "$2::jsonb",
            OutboxPayloadType.Json => "$2::json", _ => "$2",
        };
        await using var command = _dataSource.CreateCommand(
            $"INSERT INTO {QuotedName} (method, payload, partition) VALUES ($1, {cast}, $3) RETURNING id");
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)row.Method ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = row.Payload });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = row.Partition });
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <summary>Rows left in the outbox (all partitions, or one).</summary>
    public async Task<long> CountAsync(int? partition = null, CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand(partition is null
            ? $"SELECT count(*) FROM {QuotedName}"
            : $"SELECT count(*) FROM {QuotedName} WHERE partition = $1");
        if (partition is not null)
        {
            command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = partition.Value });
        }

        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <summary>Ids left in the outbox, ascending.</summary>
    public async Task<IReadOnlyList<long>> IdsAsync(CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand($"SELECT id FROM {QuotedName} ORDER BY id");
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var ids = new List<long>();
        while (await reader.ReadAsync(cancellationToken))
        {
            ids.Add(reader.GetInt64(0));
        }

        return ids;
    }

    /// <summary>Reads the dead-letter table (default name: "&lt;name&gt;_dead_letter"), ordered by id; payload as text.</summary>
    public async Task<IReadOnlyList<DeadLetterRow>> ReadDeadLettersAsync(
        string? deadLetterTableName = null, CancellationToken cancellationToken = default)
    {
        var table = OutboxSql.QuoteTableName(deadLetterTableName ?? Name + "_dead_letter");
        var payload = PayloadType == OutboxPayloadType.Bytea ? "convert_from(payload, 'UTF8')" : "payload::text";
        await using var command = _dataSource.CreateCommand(
            $"SELECT id, method, {payload}, partition, consumer, reason, failed_at FROM {table} ORDER BY id");
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var rows = new List<DeadLetterRow>();
        while (await reader.ReadAsync(cancellationToken))
        {
            rows.Add(new DeadLetterRow(
                reader.GetInt64(0), reader.IsDBNull(1) ? null : reader.GetString(1), reader.GetString(2), reader.GetInt32(3),
                reader.IsDBNull(4) ? null : reader.GetString(4), reader.IsDBNull(5) ? null : reader.GetString(5),
                reader.GetFieldValue<DateTimeOffset>(6)));
        }

        return rows;
    }
}
