using Centrifugo.Actors.Delivery;
using Centrifugo.Actors.Partitions;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Outbox;

/// <summary>An opened partition transaction, or why there is none (lock busy, database error).</summary>
/// <param name="Chain">How many batches in a row were read ahead (0 = read from the head of the partition).</param>
internal sealed record OutboxRead(int Partition, OutboxBatch? Batch, bool LockBusy, string? Error, int Chain = 0);

/// <summary>
/// A <see cref="PassReport"/> of an outbox partition, with what only the outbox has: the lock was busy (try-lock), and
/// the next batch already read ahead. Drives the next wait (immediately, idle, backoff).
/// </summary>
internal sealed record OutboxPassReport(
    int Read,
    int Delivered,
    int DeadLettered,
    bool LockBusy,
    DeliveryFailure? Failure,
    string? DatabaseError) : PassReport(Read, Delivered, DeadLettered, Failure, DatabaseError)
{
    /// <summary>The next batch, already read ahead and locked in a new transaction: process it without waiting.</summary>
    public OutboxRead? Next { get; init; }

    public static OutboxPassReport Busy { get; } = new(0, 0, 0, true, null, null);
}

/// <summary>
/// One pass of Centrifugo's per-partition algorithm (spec §2.3) with batching and dead letters:
/// open the partition's transaction (lock + SELECT), decode, deliver in order, then in the same transaction
/// delete the completed prefix (moving poison rows to the dead-letter table) and commit. Rows after the first
/// command that did not complete stay in the outbox and are read again by the next pass, so order holds.
/// </summary>
internal sealed partial class OutboxBatchProcessor(
    OutboxStore store,
    ICentrifugoClient client,
    ILogger logger)
{
    // One per partition this node has run (bounded by num_partitions); a pass of a partition runs alone.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<int, DeliveryWindow> _windows = new();

    public string Consumer => store.ConsumerName;

    /// <summary>
    /// Read-ahead chains are cut after this many batches so the next read starts at the head again: a row whose lower
    /// id committed late (after a read passed it) is then picked up within a bounded number of batches.
    /// </summary>
    public const int MaxReadAheadChain = 8;

    /// <summary>Opens the partition's transaction (advisory lock + SELECT). Never throws but for cancellation.</summary>
    public async Task<OutboxRead> ReadAsync(int partition, CancellationToken cancellationToken)
    {
        try
        {
            var batch = await store.BeginBatchAsync(partition, cancellationToken);
            return new OutboxRead(partition, batch, batch is null, null);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            LogDatabaseError(logger, Consumer, partition, ex.Message);
            return new OutboxRead(partition, null, false, ex.Message);
        }
    }

    /// <summary>
    /// <see cref="FinishAsync"/>, but an unexpected exception (a bug, an input nothing foresaw) never fails the
    /// partition's stream, which would stop the entity and let the keeper restart it in a silent loop: it is logged
    /// at error level with consumer, partition and the row ids of the batch, the transaction is rolled back (nothing
    /// deleted), and the pass reports a failure, so it is counted and retried with the capped backoff.
    /// </summary>
    public async Task<OutboxPassReport> FinishSafelyAsync(OutboxRead read, CancellationToken cancellationToken, Func<bool>? takeWake = null)
    {
        try
        {
            return await FinishAsync(read, cancellationToken, takeWake);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            var rows = read.Batch?.Rows;
            var first = rows is { Count: > 0 } ? rows[0].Id : (long?)null;
            var last = rows is { Count: > 0 } ? rows[^1].Id : (long?)null;
            LogPassCrashed(logger, Consumer, read.Partition, first, last, e);
            if (read.Batch is { } batch)
            {
                await batch.DisposeAsync();
            }
            return new OutboxPassReport(rows?.Count ?? 0, 0, 0, false, null,
                $"internal error in the pass over ids {first}..{last}: {e.GetType().Name}: {e.Message}");
        }
    }

    /// <summary>The partition's stream ended with an exception (should not happen: passes never throw but for cancellation).</summary>
    public void ReportStreamFailure(int partition, Exception exception) => LogStreamFailed(logger, Consumer, partition, exception);

    /// <summary>Delivers what <paramref name="read"/> holds and completes (or rolls back) its transaction.</summary>
    /// <param name="takeWake">
    /// Consumes the partition's pending wake-up, if any (<see cref="WakeSignal.TryConsume"/>). Asked once the batch was
    /// delivered in full without rows read ahead: when a wake-up (NOTIFY, census) came in meanwhile, the partition's
    /// next batch is read in the commit's round trip (<see cref="OutboxBatch.CompleteAndContinueAsync"/>) and handed
    /// on as <see cref="OutboxPassReport.Next"/>, instead of a separate read after the commit.
    /// </param>
    public async Task<OutboxPassReport> FinishAsync(OutboxRead read, CancellationToken cancellationToken, Func<bool>? takeWake = null)
    {
        var partition = read.Partition;
        if (read.Error is not null)
        {
            return new OutboxPassReport(0, 0, 0, false, null, read.Error);
        }
        if (read.Batch is not { } batch)
        {
            return OutboxPassReport.Busy;
        }

        await using (batch)
        {
            var rows = batch.Rows;
            if (rows.Count == 0)
            {
                try
                {
                    await batch.CompleteAsync([], [], cancellationToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
                {
                    LogDatabaseError(logger, Consumer, partition, ex.Message);
                    return new OutboxPassReport(0, 0, 0, false, null, ex.Message);
                }
                return new OutboxPassReport(0, 0, 0, false, null, null);
            }

            // Decode every row; rows that cannot become a command are set aside in place (order kept).
            var decoded = new DecodeResult[rows.Count];
            for (var i = 0; i < rows.Count; i++)
            {
                decoded[i] = DecodeOrReject(rows[i], partition);
                if (store.Options.DeriveIdempotencyKey)
                {
                    var id = rows[i].Id;
                    decoded[i] = IdempotencyKeys.Attach(decoded[i], () => IdempotencyKeys.ForOutbox(Consumer, partition, id));
                }
            }

            var plan = PartitionPass.Plan(decoded);
            var commands = plan.Commands;

            // A full batch means more rows are likely waiting: read them on this connection, under the same lock,
            // while the commands are being delivered, so the database and HTTP work overlap.
            var readAhead = rows.Count >= store.Options.PartitionSelectLimit && read.Chain < MaxReadAheadChain
                ? batch.ReadAheadAsync(rows[^1].Id, cancellationToken)
                : null;

            DeliveryResult result;
            try
            {
                result = commands.Count == 0
                    ? new DeliveryResult([], null)
                    : await client.DeliverAsync(commands, cancellationToken, batch.MaySend, _windows.GetOrAdd(partition, static _ => new DeliveryWindow()));
            }
            finally
            {
                if (readAhead is not null)
                {
                    // Never leave a command running on the connection; its failure shows in the completion below.
                    await ((Task)readAhead).ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                }
            }
            var next = readAhead is { IsCompletedSuccessfully: true } && result.Failure is null && readAhead.Result.Count > 0
                ? readAhead.Result
                : null;

            // Completed prefix in row terms: every row before the first command that did not complete.
            var settled = PartitionPass.Settle(decoded, plan, result);
            var completedRows = settled.CompletedEnd;
            var delivered = settled.Delivered.Select(i => rows[i].Id).ToList();
            var deadLetters = settled.DeadLetters.Select(d => new DeadLetter(rows[d.Index].Id, d.Reason)).ToList();

            OutboxBatch? continued = null;
            var nextChain = read.Chain + 1;
            try
            {
                if (next is not null)
                {
                    continued = await batch.CompleteAndContinueAsync(delivered, deadLetters, next, cancellationToken);
                }
                else if (result.Failure is null && takeWake?.Invoke() == true)
                {
                    // Read from the head: no chain to cut.
                    nextChain = 0;
                    continued = await batch.CompleteAndContinueAsync(delivered, deadLetters, null, cancellationToken);
                }
                else
                {
                    await batch.CompleteAsync(delivered, deadLetters, cancellationToken);
                }
            }
            catch (OutboxContinuationFailedException ex)
            {
                // The rows are done (deleted, dead letters written); only the read-ahead is dropped: the next pass reads.
                foreach (var dl in deadLetters)
                {
                    LogDeadLettered(logger, Consumer, partition, dl.Id, dl.Reason);
                }
                LogContinuationFailed(logger, Consumer, partition, ex.InnerException?.Message ?? ex.Message);
                return new OutboxPassReport(rows.Count, delivered.Count, deadLetters.Count, false, settled.Failure, ex.Message);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                // Nothing was deleted: the rows are delivered again (at-least-once).
                LogDatabaseError(logger, Consumer, partition, ex.Message);
                return new OutboxPassReport(rows.Count, 0, 0, false, null, ex.Message);
            }

            foreach (var dl in deadLetters)
            {
                LogDeadLettered(logger, Consumer, partition, dl.Id, dl.Reason);
            }

            if (settled.Failure is { } failure)
            {
                var failedRow = rows[completedRows];
                if (failure.Kind == FailureKind.Configuration)
                {
                    LogConfigurationFault(logger, Consumer, partition, failedRow.Id, failure.Message);
                }
                else
                {
                    LogTemporaryFailure(logger, Consumer, partition, failedRow.Id, failure.Message);
                }
            }

            return new OutboxPassReport(rows.Count, delivered.Count, deadLetters.Count, false, settled.Failure, null)
            {
                Next = continued is null ? null : new OutboxRead(partition, continued, false, null, nextChain),
            };
        }
    }

    /// <summary>
    /// <see cref="CommandDecoder.Decode"/>, but a decoder bug or an input it does not foresee can never escape and
    /// stop the partition: the row is dead-lettered with the exception as its reason, and logged at error level.
    /// </summary>
    private DecodeResult DecodeOrReject(OutboxRow row, int partition)
    {
        try
        {
            return CommandDecoder.Decode(row.Method, row.Payload);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            LogDecodeCrashed(logger, Consumer, partition, row.Id, e);
            return DecodeResult.Reject($"cannot decode: {e.GetType().Name}: {e.Message}");
        }
    }

    [LoggerMessage(EventId = 2006, Level = LogLevel.Error,
        Message = "Unexpected error in an outbox pass (rolled back, nothing deleted, retrying with backoff): consumer {Consumer}, partition {Partition}, ids {FirstId}..{LastId}")]
    private static partial void LogPassCrashed(ILogger logger, string consumer, int partition, long? firstId, long? lastId, Exception exception);

    [LoggerMessage(EventId = 2007, Level = LogLevel.Error,
        Message = "Outbox partition stream failed; the entity stops and is restarted: consumer {Consumer}, partition {Partition}")]
    private static partial void LogStreamFailed(ILogger logger, string consumer, int partition, Exception exception);

    [LoggerMessage(EventId = 2005, Level = LogLevel.Error,
        Message = "Decoding an outbox row failed unexpectedly; it goes to the dead letters: consumer {Consumer}, partition {Partition}, id {RowId}")]
    private static partial void LogDecodeCrashed(ILogger logger, string consumer, int partition, long rowId, Exception exception);

    [LoggerMessage(EventId = 2001, Level = LogLevel.Warning,
        Message = "Outbox row moved to the dead-letter table: consumer {Consumer}, partition {Partition}, id {RowId}: {Reason}")]
    private static partial void LogDeadLettered(ILogger logger, string consumer, int partition, long rowId, string reason);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Warning,
        Message = "Temporary delivery failure, retrying with backoff: consumer {Consumer}, partition {Partition}, id {RowId}: {Reason}")]
    private static partial void LogTemporaryFailure(ILogger logger, string consumer, int partition, long rowId, string reason);

    [LoggerMessage(EventId = 2003, Level = LogLevel.Error,
        Message = "Partition stalled by a configuration fault (nothing deleted, readiness red): consumer {Consumer}, partition {Partition}, id {RowId}: {Reason}")]
    private static partial void LogConfigurationFault(ILogger logger, string consumer, int partition, long rowId, string reason);

    [LoggerMessage(EventId = 2008, Level = LogLevel.Warning,
        Message = "Outbox batch of consumer {Consumer}, partition {Partition} committed, but re-taking the partition lock for the next batch failed (it is read again): {Reason}")]
    private static partial void LogContinuationFailed(ILogger logger, string consumer, int partition, string reason);

    [LoggerMessage(EventId = 2004, Level = LogLevel.Warning,
        Message = "Database error, retrying with backoff: consumer {Consumer}, partition {Partition}: {Reason}")]
    private static partial void LogDatabaseError(ILogger logger, string consumer, int partition, string reason);
}
