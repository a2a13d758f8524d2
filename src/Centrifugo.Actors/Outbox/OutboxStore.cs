using Centrifugo.Actors.Configuration;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Outbox;

/// <summary>
/// All SQL access for one postgresql consumer (one pooled NpgsqlDataSource per consumer).
/// STUB: implemented by the PostgreSQL work package.
/// </summary>
internal sealed class OutboxStore : IAsyncDisposable
{
    public OutboxStore(string consumerName, PostgresConsumerOptions options, ILoggerFactory loggerFactory)
    {
        ConsumerName = consumerName;
        Options = options;
        _ = loggerFactory;
    }

    public string ConsumerName { get; }
    public PostgresConsumerOptions Options { get; }

    /// <summary>Checks connectivity (10 s timeout) and that the outbox table exists; creates the dead-letter table if missing.</summary>
    public Task InitializeAsync(CancellationToken cancellationToken) => throw new NotImplementedException();

    /// <summary>
    /// BEGIN (READ COMMITTED); advisory xact lock of (consumer, partition) (try-lock when use_try_lock);
    /// SELECT up to partition_select_limit rows ORDER BY id. Returns null when use_try_lock is on and the
    /// lock is held elsewhere. The returned batch owns the connection and the open transaction.
    /// </summary>
    public Task<OutboxBatch?> BeginBatchAsync(int partition, CancellationToken cancellationToken) => throw new NotImplementedException();

    /// <summary>Number of rows waiting in a partition (for lag/status).</summary>
    public Task<long> CountPendingAsync(int partition, CancellationToken cancellationToken) => throw new NotImplementedException();

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

/// <summary>An open outbox transaction with the rows it read. Dispose without Complete = rollback (nothing deleted).</summary>
internal sealed class OutboxBatch : IAsyncDisposable
{
    public IReadOnlyList<OutboxRow> Rows { get; } = [];

    /// <summary>
    /// In the same transaction: moves <paramref name="deadLetters"/> to the dead-letter table, deletes them
    /// and <paramref name="deliveredIds"/> from the outbox, and commits.
    /// </summary>
    public Task CompleteAsync(IReadOnlyCollection<long> deliveredIds, IReadOnlyList<DeadLetter> deadLetters, CancellationToken cancellationToken)
        => throw new NotImplementedException();

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
