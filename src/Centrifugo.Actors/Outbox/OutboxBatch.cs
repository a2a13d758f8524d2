using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;

namespace Centrifugo.Actors.Outbox;

/// <summary>An open outbox transaction with the rows it read. Dispose without Complete = rollback (nothing deleted).</summary>
/// <remarks>Not thread-safe: one partition actor uses it at a time.</remarks>
internal sealed class OutboxBatch : IAsyncDisposable
{
    private readonly OutboxStore _store;
    private readonly NpgsqlConnection _connection;
    private readonly OutboxSql _sql;
    private readonly string _consumer;
    private readonly ILogger _logger;
    private readonly int _partition;
    private bool _finished;

    /// <param name="lockedSince">See <see cref="OutboxStore.LockedSinceAsync"/>.</param>
    internal OutboxBatch(OutboxStore store, NpgsqlConnection connection, int partition, IReadOnlyList<OutboxRow> rows, long lockedSince)
    {
        _store = store;
        _connection = connection;
        _sql = store.SqlStatements;
        _consumer = store.ConsumerName;
        _logger = store.Logger;
        _partition = partition;
        Rows = rows;
        _lockedSince = lockedSince;
    }

    private readonly long _lockedSince;

    public IReadOnlyList<OutboxRow> Rows { get; }

    public int Partition => _partition;

    /// <summary>
    /// Whether a request of this batch may still be sent: the database ends a transaction idle for longer than the
    /// fence, releasing the partition's lock to the next owner. A process paused past that point (SIGSTOP, a frozen VM)
    /// must not then send rows the next owner may already have delivered, followed by newer ones; it reads them again.
    /// The window counts from the sending of the round trip that took the lock (<see cref="OutboxStore.LockedSinceAsync"/>),
    /// never from when its answer was read.
    /// </summary>
    public bool MaySend() => System.Diagnostics.Stopwatch.GetElapsedTime(_lockedSince) < _store.Fence.SendWindow;

    /// <summary>
    /// Reads the rows after <paramref name="lastId"/> in this transaction (still under the partition lock), while
    /// this batch's commands are being delivered: the read overlaps the HTTP work. Rows a later transaction of this
    /// partition will be handed through <see cref="CompleteAndContinueAsync"/>.
    /// </summary>
    public Task<IReadOnlyList<OutboxRow>> ReadAheadAsync(long lastId, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_finished, this);
        return SelectRowsAsync(lastId, cancellationToken);
    }

    /// <summary>Up to partition_select_limit rows of the partition, in this transaction: after <paramref name="lastId"/>, or from its
    /// head.</summary>
    private async Task<IReadOnlyList<OutboxRow>> SelectRowsAsync(long? lastId, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(lastId is null ? _sql.Select : _sql.SelectAfter, _connection);
        _store.AddReadParameters(command.Parameters, _partition, lastId);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var rows = new List<OutboxRow>();
        await OutboxStore.ReadRowsAsync(reader, _partition, rows, cancellationToken);
        return rows;
    }

    /// <summary>
    /// Like <see cref="CompleteAsync"/>, and in the same round trip opens the next transaction on this connection and
    /// takes the partition lock again, which then holds <paramref name="next"/> (rows read ahead), or, when
    /// <paramref name="next"/> is null, the partition's head read in that round trip (a wake-up arrived while this batch
    /// was delivered: the next read rides on this commit). Null when use_try_lock is on and the lock went elsewhere in
    /// between (the rows stay in the outbox).
    /// </summary>
    /// <remarks>
    /// Fencing: between the COMMIT and the new lock another owner of the partition (a second deployment on the table, a
    /// stale node) may take the lock and deliver the rows read ahead. The same round trip therefore reads the
    /// partition's head under the new lock: rows are only ever deleted as a prefix of the partition, so the read-ahead is
    /// still valid exactly when its first row is still the head. Otherwise it is dropped and the batch is read afresh.
    /// </remarks>
    public async Task<OutboxBatch?> CompleteAndContinueAsync(
        IReadOnlyCollection<long> deliveredIds, IReadOnlyList<DeadLetter> deadLetters, IReadOnlyList<OutboxRow>? next,
        CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_finished, this);
        await using var batch = BuildCompletion(deliveredIds, deadLetters);
        long[] ids = [.. deliveredIds, .. deadLetters.Select(d => d.Id)];
        batch.BatchCommands.Add(new NpgsqlBatchCommand(_sql.Begin));
        batch.BatchCommands.Add(_store.LockCommand(_partition));
        var head = new NpgsqlBatchCommand(next is null ? _sql.Select : _sql.Head);
        if (next is null)
        {
            _store.AddReadParameters(head.Parameters, _partition, null);
        }
        else
        {
            head.Parameters.Add(new NpgsqlParameter<int> { TypedValue = _partition });
        }
        batch.BatchCommands.Add(head);

        bool locked;
        long? headId = null;
        List<OutboxRow>? headRows = null;
        var sentAt = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
            // The lock statement's row (void, or the try-lock's boolean), then the head's; the others return none.
            var lockRow = await reader.ReadAsync(cancellationToken);
            locked = !_store.Options.UseTryLock || (lockRow && reader.GetBoolean(0));
            await reader.NextResultAsync(cancellationToken);
            if (next is null)
            {
                headRows = [];
                if (locked)
                {
                    await OutboxStore.ReadRowsAsync(reader, _partition, headRows, cancellationToken);
                }
            }
            else
            {
                headId = await reader.ReadAsync(cancellationToken) ? reader.GetInt64(0) : null;
            }
        }
        catch (PostgresException e) when (ids.Length > 0)
        {
            // Which statement failed is not reported for a pipelined batch, so ask the database: when none of the
            // completed rows is left, the completion committed (the server runs the statements in order) and only
            // re-taking the lock (lock_timeout, statement_timeout, a cancel) or reading the head failed.
            await OutboxStore.RollbackQuietlyAsync(_connection, _logger, _consumer);
            var committed = await NoneLeftAsync(ids);
            _finished = true;
            await _connection.DisposeAsync();
            if (committed)
            {
                throw new OutboxContinuationFailedException(e);
            }
            throw;
        }

        // The deletes are committed either way: this batch is done and the connection moves on or goes back.
        _finished = true;
        if (!locked)
        {
            await OutboxStore.RollbackQuietlyAsync(_connection, _logger, _consumer);
            await _connection.DisposeAsync();
            return null;
        }

        try
        {
            var lockedSince = await _store.LockedSinceAsync(_connection, sentAt, cancellationToken);
            if (next is null)
            {
                return new OutboxBatch(_store, _connection, _partition, headRows!, lockedSince);
            }
            if (next.Count > 0 && headId != next[0].Id)
            {
                OutboxLog.ReadAheadStale(_logger, _consumer, _partition, next[0].Id, headId ?? -1);
                next = await SelectRowsAsync(null, cancellationToken); // the partition's head, under the lock
            }
            return new OutboxBatch(_store, _connection, _partition, next, lockedSince);
        }
        catch (Exception e)
        {
            await OutboxStore.RollbackQuietlyAsync(_connection, _logger, _consumer);
            await _connection.DisposeAsync();
            if (e is NpgsqlException npgsql)
            {
                throw new OutboxContinuationFailedException(npgsql);
            }
            throw;
        }
    }

    /// <summary>True when none of <paramref name="ids"/> is in the outbox any more; false when some are, or the check fails.</summary>
    private async Task<bool> NoneLeftAsync(long[] ids)
    {
        try
        {
            await using var command = new NpgsqlCommand(
                $"SELECT NOT EXISTS (SELECT 1 FROM {_sql.OutboxTable} WHERE id = ANY($1))", _connection);
            command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = ids });
            return (bool)(await command.ExecuteScalarAsync(CancellationToken.None))!;
        }
        catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>
    /// In the same transaction: moves <paramref name="deadLetters"/> to the dead-letter table, deletes them
    /// and <paramref name="deliveredIds"/> from the outbox, and commits (one round trip).
    /// </summary>
    /// <exception cref="InvalidOperationException">The batch was already completed or disposed.</exception>
    /// <exception cref="NpgsqlException">Database error: the transaction is rolled back, nothing deleted.</exception>
    public async Task CompleteAsync(
        IReadOnlyCollection<long> deliveredIds, IReadOnlyList<DeadLetter> deadLetters, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_finished, this);
        await using var batch = BuildCompletion(deliveredIds, deadLetters);
        // On failure PostgreSQL skips the rest of the pipeline (COMMIT included); DisposeAsync then rolls back.
        await batch.ExecuteNonQueryAsync(cancellationToken);

        _finished = true;
        await _connection.DisposeAsync();
    }

    /// <summary>Dead-letter INSERT … SELECT, DELETE and COMMIT as one pipelined batch.</summary>
    private NpgsqlBatch BuildCompletion(IReadOnlyCollection<long> deliveredIds, IReadOnlyList<DeadLetter> deadLetters)
    {
        ArgumentNullException.ThrowIfNull(deliveredIds);
        ArgumentNullException.ThrowIfNull(deadLetters);

        var ids = new long[deliveredIds.Count + deadLetters.Count];
        var n = 0;
        foreach (var id in deliveredIds)
        {
            ids[n++] = id;
        }

        var batch = new NpgsqlBatch(_connection);
        if (deadLetters.Count > 0)
        {
            var dlIds = new long[deadLetters.Count];
            var reasons = new string[deadLetters.Count];
            for (var i = 0; i < deadLetters.Count; i++)
            {
                dlIds[i] = deadLetters[i].Id;
                reasons[i] = deadLetters[i].Reason;
                ids[deliveredIds.Count + i] = deadLetters[i].Id;
            }

            var insert = new NpgsqlBatchCommand(_sql.InsertDeadLetters);
            insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _consumer, NpgsqlDbType = NpgsqlDbType.Text });
            insert.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = dlIds });
            insert.Parameters.Add(
                new NpgsqlParameter<string[]> { TypedValue = reasons, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            batch.BatchCommands.Add(insert);
        }

        if (ids.Length > 0)
        {
            var delete = new NpgsqlBatchCommand(_sql.Delete);
            delete.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = ids });
            batch.BatchCommands.Add(delete);
        }

        batch.BatchCommands.Add(new NpgsqlBatchCommand(OutboxSql.Commit));
        return batch;
    }

    public async ValueTask DisposeAsync()
    {
        if (_finished)
        {
            return;
        }

        _finished = true;
        await OutboxStore.RollbackQuietlyAsync(_connection, _logger, _consumer);
        await _connection.DisposeAsync();
    }
}

/// <summary>
/// The outbox's fence against a paused owner: every transaction runs with <c>idle_in_transaction_session_timeout</c> =
/// <see cref="IdleTimeout"/>, and a batch is sent only within <see cref="SendWindow"/> of its read. A live node sends each
/// request well within the window (one request takes at most api.timeout); a paused one loses its session, and so the
/// partition's lock, after <see cref="IdleTimeout"/>, and does not send what it read before the pause.
/// </summary>
internal sealed record TransactionFence(TimeSpan IdleTimeout, TimeSpan SendWindow)
{
    public static TransactionFence Default { get; } = new(TimeSpan.FromSeconds(15), TimeSpan.FromSeconds(8));

    /// <summary>
    /// Idle timeout = requests per batch × api.timeout + 4 s; each request must start with at least one api.timeout + 2 s
    /// left, which leaves the first request 2 s from the sending of the read that took the lock. The idle timeout is also
    /// how long a frozen owner's partitions wait for its lock: 9 s at the defaults (api.timeout 5 s, one request).
    /// </summary>
    public static TransactionFence For(TimeSpan apiTimeout, int maxBatchSize, int selectLimit)
    {
        var requests = (selectLimit + Math.Max(1, maxBatchSize) - 1) / Math.Max(1, maxBatchSize);
        var idle = apiTimeout * requests + TimeSpan.FromSeconds(4);
        if (idle > TimeSpan.FromMinutes(10))
        {
            idle = TimeSpan.FromMinutes(10);
        }
        return new TransactionFence(idle, idle - apiTimeout - TimeSpan.FromSeconds(2));
    }
}

/// <summary>
/// A batch's completion (dead letters inserted, rows deleted) was committed, but continuing on the same connection (re-taking
/// the partition lock for the rows read ahead, or confirming it after a long wait) failed: the caller counts the batch as
/// done and reads again.
/// </summary>
internal sealed class OutboxContinuationFailedException(NpgsqlException inner)
    : Exception("the batch was committed; re-taking the partition lock afterwards failed: " +
        (inner is PostgresException p ? p.MessageText : inner.Message), inner);
