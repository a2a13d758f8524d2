using System.Text;
using Centrifugo.Actors.Configuration;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Centrifugo.Actors.Outbox;

/// <summary>
/// All SQL access for one postgresql consumer (one pooled NpgsqlDataSource per consumer). Thread-safe: each
/// partition works on its own <see cref="OutboxBatch"/> (its own pooled connection).
/// </summary>
/// <remarks>
/// Round trips per batch: one for BEGIN + advisory lock + SELECT, one for dead-letter INSERT + DELETE + COMMIT.
/// Statements are auto-prepared per physical connection. Rows whose <c>method</c> is NULL are returned with
/// method "" (envelope mode) instead of blocking the partition as Centrifugo's scan error does.
/// </remarks>
internal sealed class OutboxStore : IAsyncDisposable
{
    private static readonly TimeSpan PingTimeout = TimeSpan.FromSeconds(10);

    private readonly NpgsqlDataSource _dataSource;
    private readonly OutboxSql _sql;
    private readonly int _nameLockKey;
    private readonly ILogger _logger;

    /// <exception cref="FormatException">The DSN cannot be parsed (message names the parameter, never the password).</exception>
    /// <exception cref="ArgumentException">A table name is invalid or a TLS setting is unusable.</exception>
    public OutboxStore(string consumerName, PostgresConsumerOptions options, ILoggerFactory loggerFactory, TransactionFence? fence = null)
    {
        Fence = fence ?? TransactionFence.Default;
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        ConsumerName = consumerName;
        Options = options;
        _sql = new OutboxSql(options.OutboxTableName, options.DeadLetterTableName);
        _nameLockKey = OutboxLockKey.For(consumerName);
        _logger = loggerFactory.CreateLogger<OutboxStore>();
        _dataSource = PostgresDataSources.Create(options.Dsn, options.Tls, pooling: true, loggerFactory);
    }

    public string ConsumerName { get; }
    public PostgresConsumerOptions Options { get; }
    /// <summary>How long a transaction of this consumer may sit idle, and how long after a read its batch may still be sent.</summary>
    public TransactionFence Fence { get; }

    /// <summary>The SQL this store issues (quoted table names), e.g. for status pages and tests.</summary>
    internal OutboxSql Sql => _sql;

    /// <summary>The pooled data source (operator tools: dead-letter listing and replay).</summary>
    internal NpgsqlDataSource DataSource => _dataSource;

    private int _waitingForSession;

    /// <summary>
    /// Whether someone (a partition, the census, a backlog query) is waiting for one of this consumer's pooled sessions
    /// now. A partition keeps its session from one batch to the next (read-ahead, a read riding on the commit, the
    /// held-back completion) only while nobody waits; otherwise it hands it back after the batch, and the pool gives it
    /// to the longest waiter (Npgsql queues waiters first come, first served). So every partition makes progress with
    /// any pool size, and a single busy partition keeps its session as before.
    /// </summary>
    public bool SessionWanted => Volatile.Read(ref _waitingForSession) > 0;

    /// <summary>A pooled session of this consumer, counted in <see cref="SessionWanted"/> while it is awaited.</summary>
    internal async Task<NpgsqlConnection> OpenSessionAsync(CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _waitingForSession);
        try
        {
            return await _dataSource.OpenConnectionAsync(cancellationToken);
        }
        finally
        {
            Interlocked.Decrement(ref _waitingForSession);
        }
    }

    /// <summary>Checks connectivity (10 s timeout) and that the outbox table exists; creates the dead-letter table if missing.</summary>
    /// <exception cref="InvalidOperationException">The database is unreachable or the outbox table is missing; the message names consumer,
    /// host, port and table, never the password.</exception>
    public async Task InitializeAsync(CancellationToken cancellationToken)
    {
        NpgsqlConnection connection;
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            timeout.CancelAfter(PingTimeout);
            try
            {
                connection = await _dataSource.OpenConnectionAsync(timeout.Token);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or System.Net.Sockets.SocketException or IOException
                                      || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
            {
                throw new InvalidOperationException(
                    $"cannot connect to PostgreSQL at {PostgresDsn.Endpoint(Options.Dsn)} " +
                    $"within {PingTimeout.TotalSeconds:0} s: {Describe(e)}", e is OperationCanceledException ? null : e);
            }
        }

        await using (connection)
        {
            if (!await TableExistsAsync(connection, _sql.OutboxTable, cancellationToken))
            {
                throw new InvalidOperationException(
                    $"outbox table {_sql.OutboxTable} does not exist " +
                    $"(outbox_table_name '{Options.OutboxTableName}'; unquoted names are folded to lower case).");
            }

            await CheckIndexAndTimeoutAsync(connection, cancellationToken);
            await CheckCentrifugoLocksAsync(connection, cancellationToken);
            var outboxColumns = await ColumnsAsync(connection, _sql.OutboxTable, cancellationToken);
            _sql.UsePayloadType(outboxColumns.Find(c => c.Name == "payload")?.Type ?? "bytea");
            if (!await DeadLetterTableReadyAsync(connection, cancellationToken)
                || MissingFromDeadLetters(outboxColumns, await ColumnsAsync(connection, _sql.DeadLetterTable, cancellationToken)).Count > 0)
            {
                await using var tx = await connection.BeginTransactionAsync(cancellationToken);
                await ExecuteAsync(connection, OutboxSql.LockDdl, cancellationToken);
                if (!await TableExistsAsync(connection, _sql.DeadLetterTable, cancellationToken))
                {
                    await ExecuteAsync(connection, _sql.CreateDeadLetterTable, cancellationToken);
                    OutboxLog.DeadLetterTableCreated(_logger, ConsumerName, _sql.DeadLetterTable);
                }

                await ExecuteAsync(connection, _sql.AddDeadLetterColumns, cancellationToken);
                // Columns the application added to the outbox after the dead-letter table was created: added
                // (nullable) so that a dead letter keeps every column of its row.
                foreach (var missing in MissingFromDeadLetters(
                    outboxColumns, await ColumnsAsync(connection, _sql.DeadLetterTable, cancellationToken)))
                {
                    await ExecuteAsync(connection,
                        $"ALTER TABLE {_sql.DeadLetterTable} " +
                        $"ADD COLUMN IF NOT EXISTS {OutboxSql.QuoteIdentifier(missing.Name)} {missing.Type}",
                        cancellationToken);
                    OutboxLog.DeadLetterColumnAdded(_logger, ConsumerName, _sql.DeadLetterTable, missing.Name);
                }

                await tx.CommitAsync(cancellationToken);
            }

            UseDeadLetterColumns(outboxColumns, await ColumnsAsync(connection, _sql.DeadLetterTable, cancellationToken));
        }
    }

    /// <summary>
    /// Start-up checks that never refuse the start: without an index led by <c>partition</c> every census and read
    /// scans the whole table (the exact CREATE INDEX is logged); a server idle_in_transaction_session_timeout is
    /// reported with what the consumer does about it (<see cref="OutboxSql.Lock"/>).
    /// </summary>
    private async Task CheckIndexAndTimeoutAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using (var index = new NpgsqlCommand(OutboxSql.HasPartitionIndex, connection))
        {
            index.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _sql.OutboxTable });
            if (!(bool)(await index.ExecuteScalarAsync(cancellationToken))!)
            {
                OutboxLog.MissingPartitionIndex(_logger, ConsumerName, _sql.OutboxTable, _sql.CreatePartitionIndex);
            }
        }

        await using (var max = new NpgsqlCommand("SELECT current_setting('max_connections')::int", connection))
        {
            var maxConnections = (int)(await max.ExecuteScalarAsync(cancellationToken))!;
            var pool = PostgresDsn.ToBuilder(Options.Dsn).MaxPoolSize;
            // Each partition holds a pooled session for its whole pass: with a backlog a node uses up to the pool
            // size per consumer, and the application writing the outbox needs sessions too.
            if (pool * 2 >= maxConnections)
            {
                OutboxLog.PoolTooLarge(_logger, ConsumerName, pool, maxConnections);
            }
        }

        await using var timeout = new NpgsqlCommand(OutboxSql.IdleInTransactionTimeout, connection);
        if (await timeout.ExecuteScalarAsync(cancellationToken) is long ms && ms > 0)
        {
            IdleInTransactionTimeout = TimeSpan.FromMilliseconds(ms);
            OutboxLog.IdleInTransactionTimeout(_logger, ConsumerName, ms, (long)Fence.IdleTimeout.TotalMilliseconds);
        }
    }

    /// <summary>The server's idle_in_transaction_session_timeout for this consumer's sessions, read at start-up (null = off).</summary>
    public TimeSpan? IdleInTransactionTimeout { get; private set; }

    /// <summary>A live column of a table (pg_attribute).</summary>
    private sealed record TableColumn(string Name, string Type, bool NotNull, bool HasDefault, bool Generated, bool IdentityAlways);

    private static async Task<List<TableColumn>> ColumnsAsync(
        NpgsqlConnection connection, string quotedTable, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(OutboxSql.Columns, connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = quotedTable });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var columns = new List<TableColumn>();
        while (await reader.ReadAsync(cancellationToken))
        {
            columns.Add(new TableColumn(reader.GetString(0), reader.GetString(1), reader.GetBoolean(2), reader.GetBoolean(3),
                reader.GetBoolean(4), reader.GetBoolean(5)));
        }
        return columns;
    }

    /// <summary>Outbox columns (not generated, not the consumer's own) the dead-letter table lacks.</summary>
    private static List<TableColumn> MissingFromDeadLetters(List<TableColumn> outbox, List<TableColumn> deadLetters) =>
        outbox.Where(o => !o.Generated && !OutboxSql.DeadLetterOwnColumns.Contains(o.Name)
                          && !deadLetters.Exists(d => d.Name == o.Name)).ToList();

    /// <summary>
    /// The dead-letter copy takes every column the outbox and the dead-letter table share (whatever the application
    /// added: tenant, trace id…), so an extra NOT NULL column can never make the copy, and with it the deletes of
    /// the delivered rows, fail. A dead-letter column that no copy can ever fill (NOT NULL, no default, not in the
    /// outbox) refuses the start-up with the column named.
    /// </summary>
    /// <exception cref="InvalidOperationException">The dead-letter table can never accept a copy.</exception>
    private void UseDeadLetterColumns(List<TableColumn> outbox, List<TableColumn> deadLetters)
    {
        var copied = new List<string>();
        var retyped = new List<string>();
        var overriding = false;
        foreach (var column in outbox)
        {
            if (column.Generated || OutboxSql.DeadLetterOwnColumns.Contains(column.Name))
            {
                continue;
            }
            var target = deadLetters.Find(d => d.Name == column.Name);
            if (target is null || target.Generated)
            {
                continue;
            }
            copied.Add(column.Name);
            overriding |= target.IdentityAlways;
            if (target.Type != column.Type)
            {
                // The dead-letter table is made LIKE the outbox, so another type is a drift (the outbox retyped
                // later): a copy may fail on every row (no assignment cast) or on some values only (a shorter
                // varchar, a narrower integer), and a failed copy keeps its delivered batch in the outbox.
                var name = OutboxSql.QuoteIdentifier(column.Name);
                retyped.Add($"ALTER TABLE {_sql.DeadLetterTable} ALTER COLUMN {name} TYPE {column.Type} USING {name}::text::{column.Type}");
            }
        }

        if (retyped.Count > 0)
        {
            throw new InvalidOperationException(
                $"dead-letter table {_sql.DeadLetterTable} of consumer {ConsumerName} has column(s) of another type than the outbox " +
                $"{_sql.OutboxTable}; a dead letter could not be copied. Run: {string.Join("; ", retyped)}");
        }

        foreach (var core in new[] { "id", "method", "payload", "partition" })
        {
            if (!copied.Contains(core))
            {
                throw new InvalidOperationException(
                    $"dead-letter table {_sql.DeadLetterTable} of consumer {ConsumerName} has no column \"{core}\" " +
                    $"matching the outbox {_sql.OutboxTable}: " +
                    "drop it (it is re-created like the outbox at start-up) or add the column.");
            }
        }

        var unfillable = deadLetters
            .Where(d => d.NotNull && !d.HasDefault && !d.Generated && !copied.Contains(d.Name) && d.Name is not ("consumer" or "reason"))
            .Select(d => d.Name)
            .ToList();
        if (unfillable.Count > 0)
        {
            throw new InvalidOperationException(
                $"dead-letter table {_sql.DeadLetterTable} of consumer {ConsumerName} has NOT NULL column(s) without a default that " +
                $"the outbox {_sql.OutboxTable} does not have: {string.Join(", ", unfillable)}; no dead letter could ever be written. " +
                $"Run ALTER TABLE {_sql.DeadLetterTable} ALTER COLUMN <column> DROP NOT NULL (or give it a default).");
        }

        _sql.UseDeadLetterColumns(copied, overriding);
    }

    /// <summary>
    /// Re-reads the columns of the outbox and the dead-letter table (a dead-letter copy failed with 42703 or 42804: a
    /// column dropped or retyped while running) and rebuilds the copy. Null when the copy fits the tables again;
    /// otherwise why it cannot, with the statement that fixes it.
    /// </summary>
    /// <exception cref="NpgsqlException">The catalogue could not be read.</exception>
    public async Task<string?> RefreshDeadLetterColumnsAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        var outbox = await ColumnsAsync(connection, _sql.OutboxTable, cancellationToken);
        var deadLetters = await ColumnsAsync(connection, _sql.DeadLetterTable, cancellationToken);
        try
        {
            UseDeadLetterColumns(outbox, deadLetters);
            return null;
        }
        catch (InvalidOperationException e)
        {
            return e.Message;
        }
    }

    /// <summary>
    /// Whether another session holds Centrifugo's own lock of one of this consumer's partitions right now: Centrifugo's
    /// built-in consumer (same name) reads the table, and without centrifugo_compatible_lock the two do not exclude
    /// each other. Sees Centrifugo only while it holds a partition (a backlog, a slow delivery), not between its polls.
    /// </summary>
    private async Task CheckCentrifugoLocksAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        if (Options.CentrifugoCompatibleLock)
        {
            return;
        }

        var partitions = Enumerable.Range(0, Options.NumPartitions).ToArray();
        await using var command = new NpgsqlCommand(OutboxSql.CentrifugoLocksHeld, connection);
        command.Parameters.Add(new NpgsqlParameter<string[]>
            { TypedValue = partitions.Select(p => OutboxLockKey.CentrifugoLockName(ConsumerName, p)).ToArray() });
        command.Parameters.Add(new NpgsqlParameter<int[]> { TypedValue = partitions });
        var held = new List<int>();
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                held.Add(reader.GetInt32(0));
            }
        }
        if (held.Count > 0)
        {
            OutboxLog.CentrifugoLockHeld(_logger, ConsumerName,
                string.Join(",", held.Take(10)) + (held.Count > 10 ? $" (+{held.Count - 10} more)" : ""), _sql.OutboxTable);
        }
    }

    /// <summary>
    /// BEGIN (READ COMMITTED); the partition's advisory xact locks (<see cref="OutboxSql.Lock"/>; try-lock when use_try_lock);
    /// SELECT up to partition_select_limit rows ORDER BY id. Returns null when use_try_lock is on and the
    /// lock is held elsewhere. The returned batch owns the connection and the open transaction.
    /// </summary>
    /// <exception cref="NpgsqlException">Database error; nothing is left open.</exception>
    public async Task<OutboxBatch?> BeginBatchAsync(int partition, CancellationToken cancellationToken)
    {
        var connection = await OpenSessionAsync(cancellationToken);
        var handedOver = false;
        try
        {
            var rows = new List<OutboxRow>();
            var locked = true;
            var sentAt = System.Diagnostics.Stopwatch.GetTimestamp();
            await using (var batch = new NpgsqlBatch(connection))
            {
                batch.BatchCommands.Add(new NpgsqlBatchCommand(_sql.Begin));
                batch.BatchCommands.Add(LockCommand(partition));
                var select = new NpgsqlBatchCommand(_sql.Select);
                AddReadParameters(select.Parameters, partition, null);
                batch.BatchCommands.Add(select);

                await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
                if (Options.UseTryLock)
                {
                    await reader.ReadAsync(cancellationToken);
                    locked = reader.GetBoolean(0);
                }

                await reader.NextResultAsync(cancellationToken);
                if (locked)
                {
                    await ReadRowsAsync(reader, partition, rows, cancellationToken);
                }
            }

            if (!locked)
            {
                return null; // the finally block rolls back and releases the connection
            }

            var lockedSince = await LockedSinceAsync(connection, sentAt, cancellationToken);
            handedOver = true;
            return new OutboxBatch(this, connection, partition, rows, lockedSince);
        }
        finally
        {
            if (!handedOver)
            {
                // Closing returns the session to the pool; an open transaction is rolled back first.
                await RollbackQuietlyAsync(connection, _logger, ConsumerName);
                await connection.DisposeAsync();
            }
        }
    }

    /// <summary>The partition's lock statement (<see cref="OutboxSql.Lock"/>) with its parameters.</summary>
    internal NpgsqlBatchCommand LockCommand(int partition)
    {
        var command = new NpgsqlBatchCommand(OutboxSql.Lock(Options.UseTryLock, Options.CentrifugoCompatibleLock));
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _sql.OutboxTable });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = partition });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = (long)Fence.IdleTimeout.TotalMilliseconds });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = _nameLockKey });
        if (Options.CentrifugoCompatibleLock)
        {
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = OutboxLockKey.CentrifugoLockName(ConsumerName, partition) });
        }
        return command;
    }

    /// <summary>
    /// The start of a batch's send window (<see cref="OutboxBatch.MaySend"/>): when the round trip that took the
    /// partition's lock was sent, as a Stopwatch timestamp. The database's idle-in-transaction clock starts when it
    /// finishes that round trip, which is after it was sent but may be long before this process reads the answer: a
    /// process frozen (SIGSTOP, a stalled VM) while the answer sat in its socket would otherwise count its window from
    /// the thaw and send rows whose lock the database had already taken back. When the round trip took longer than a
    /// quarter of the window (a lock wait: a hand-off, a second owner), one more statement on the connection proves the
    /// session, and so the lock, still alive and restarts the window from its own sending.
    /// </summary>
    /// <exception cref="NpgsqlException">The session is gone (the database ended it after the fence): the lock is lost.</exception>
    internal async Task<long> LockedSinceAsync(NpgsqlConnection connection, long sentAt, CancellationToken cancellationToken)
    {
        if (System.Diagnostics.Stopwatch.GetElapsedTime(sentAt) <= Fence.SendWindow / 4)
        {
            return sentAt;
        }

        var touchedAt = System.Diagnostics.Stopwatch.GetTimestamp();
        await using var command = new NpgsqlCommand(OutboxSql.StillHeld, connection);
        await command.ExecuteScalarAsync(cancellationToken);
        return touchedAt;
    }

    internal OutboxSql SqlStatements => _sql;
    internal ILogger Logger => _logger;

    /// <summary>Parameters of <see cref="OutboxSql.Select"/> (<paramref name="lastId"/> null) or
    /// <see cref="OutboxSql.SelectAfter"/>.</summary>
    internal void AddReadParameters(NpgsqlParameterCollection parameters, int partition, long? lastId)
    {
        parameters.Add(new NpgsqlParameter<int> { TypedValue = partition });
        if (lastId is { } after)
        {
            parameters.Add(new NpgsqlParameter<long> { TypedValue = after });
        }
        parameters.Add(new NpgsqlParameter<int> { TypedValue = Options.PartitionSelectLimit });
        parameters.Add(new NpgsqlParameter<long> { TypedValue = Options.PartitionSelectMaxBytes });
        parameters.Add(new NpgsqlParameter<long> { TypedValue = Options.PayloadMaxBytes });
    }

    /// <summary>
    /// True when a read may have left rows behind: it took partition_select_limit rows, or its payloads reached
    /// partition_select_max_bytes (below that, the next row would have come too).
    /// </summary>
    internal bool IsFullRead(IReadOnlyList<OutboxRow> rows)
    {
        if (rows.Count >= Options.PartitionSelectLimit)
        {
            return true;
        }

        var bytes = 0L;
        foreach (var row in rows)
        {
            bytes += row.PayloadBytes;
        }

        return bytes >= Options.PartitionSelectMaxBytes;
    }

    /// <summary>
    /// Rows of an outbox read (id, method, payload, payload size): bytea as is, json/jsonb/text as UTF-8; a NULL payload
    /// with a size was over payload_max_bytes and left in the database.
    /// </summary>
    internal static async Task ReadRowsAsync(
        NpgsqlDataReader reader, int partition, List<OutboxRow> rows, CancellationToken cancellationToken)
    {
        var payloadIsBytes = reader.GetFieldType(2) == typeof(byte[]);
        while (await reader.ReadAsync(cancellationToken))
        {
            var id = reader.GetInt64(0);
            var method = reader.IsDBNull(1) ? "" : reader.GetString(1);
            var size = reader.GetInt32(3);
            var isNull = reader.IsDBNull(2);
            ReadOnlyMemory<byte> payload = isNull ? ReadOnlyMemory<byte>.Empty
                : payloadIsBytes ? reader.GetFieldValue<byte[]>(2)
                : Encoding.UTF8.GetBytes(reader.GetString(2));
            rows.Add(new OutboxRow(id, method, payload, partition, size, PayloadOmitted: isNull && size > 0));
        }
    }

    /// <summary>Number of rows waiting in a partition (for lag/status).</summary>
    public async Task<long> CountPendingAsync(int partition, CancellationToken cancellationToken)
    {
        await using var connection = await OpenSessionAsync(cancellationToken);
        await using var command = new NpgsqlCommand(_sql.CountPending, connection);
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = partition });
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <summary>The partitions in [0, num_partitions) that have at least one row (one query for all of them).</summary>
    public async Task<IReadOnlyList<int>> NonEmptyPartitionsAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenSessionAsync(cancellationToken);
        await using var command = new NpgsqlCommand(_sql.NonEmptyPartitions, connection);
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = Options.NumPartitions });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var partitions = new List<int>();
        while (await reader.ReadAsync(cancellationToken))
        {
            partitions.Add(reader.GetInt32(0));
        }
        return partitions;
    }

    public ValueTask DisposeAsync() => _dataSource.DisposeAsync();

    private async Task<bool> DeadLetterTableReadyAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(OutboxSql.CountDeadLetterColumns, connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _sql.DeadLetterTable });
        return (long)(await command.ExecuteScalarAsync(cancellationToken))! == 3;
    }

    private static async Task<bool> TableExistsAsync(NpgsqlConnection connection, string quotedTable, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(OutboxSql.TableExists, connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = quotedTable });
        return (bool)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    internal static async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    internal static async Task RollbackQuietlyAsync(NpgsqlConnection connection, ILogger logger, string consumer)
    {
        if (connection.FullState != System.Data.ConnectionState.Open)
        {
            return; // broken: the server rolls back when the session ends, and the pool drops it
        }

        try
        {
            await ExecuteAsync(connection, OutboxSql.Rollback, CancellationToken.None);
        }
        catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException or InvalidOperationException)
        {
            OutboxLog.RollbackFailed(logger, consumer, e);
        }
    }

    private static string Describe(Exception e) => e switch
    {
        OperationCanceledException => "timed out",
        PostgresException pg => $"{pg.SqlState} {pg.MessageText}",
        _ => e.Message,
    };
}
