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

    /// <summary>
    /// The batch was delivered in full but its DELETE + COMMIT is still to be sent (<see cref="OutboxBatchProcessor.FinishAsync"/>
    /// with <c>deferCompletion</c>): the caller completes it with the partition's next read
    /// (<see cref="OutboxBatchProcessor.ContinueDeferredAsync"/>) or alone (<see cref="OutboxBatchProcessor.CompleteDeferredAsync"/>).
    /// </summary>
    public DeferredCompletion? Deferred { get; init; }

    public static OutboxPassReport Busy { get; } = new(0, 0, 0, true, null, null);
}

/// <summary>
/// A batch whose commands Centrifugo accepted, with its transaction still open (the partition lock held): the DELETE of
/// <paramref name="DeliveredIds"/> and the COMMIT wait for the next wake-up, to travel in the same round trip as the next
/// read, or go alone after <see cref="OutboxBatchProcessor.CompletionLinger"/>.
/// </summary>
internal sealed record DeferredCompletion(OutboxBatch Batch, IReadOnlyList<long> DeliveredIds);

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

    /// <summary>Someone waits for a session of this consumer: hand the partition's session back after its batch (<see cref="OutboxStore.SessionWanted"/>).</summary>
    public bool SessionWanted => store.SessionWanted;

    /// <summary>
    /// Read-ahead chains are cut after this many batches so the next read starts at the head again: a row whose lower
    /// id committed late (after a read passed it) is then picked up within a bounded number of batches.
    /// </summary>
    public const int MaxReadAheadChain = 8;

    /// <summary>
    /// How long a short batch delivered in full keeps its DELETE + COMMIT back, waiting for the partition's next wake-up:
    /// when one comes, the completion and the next read (COMMIT; BEGIN; lock; SELECT) are one round trip instead of two.
    /// A steady trickle (a row every few ms per partition) then costs the database one round trip per pass. The price:
    /// delivered rows stay in the outbox up to this long (a crash in that window delivers them again, as at-least-once
    /// allows; a stop or pause completes them at once), and the partition's lock is held as long, by its owner.
    /// </summary>
    public static readonly TimeSpan CompletionLinger = TimeSpan.FromMilliseconds(25);

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
    public async Task<OutboxPassReport> FinishSafelyAsync(OutboxRead read, CancellationToken cancellationToken, Func<bool>? takeWake = null, bool deferCompletion = false)
    {
        try
        {
            return await FinishAsync(read, cancellationToken, takeWake, deferCompletion);
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

    /// <summary>
    /// Delivers what <paramref name="read"/> holds and completes (or rolls back) its transaction. The session moves on
    /// to the partition's next batch (read-ahead, <paramref name="takeWake"/>, <paramref name="deferCompletion"/>) only
    /// while nobody waits for one (<see cref="OutboxStore.SessionWanted"/>).
    /// </summary>
    /// <param name="takeWake">
    /// Consumes the partition's pending wake-up, if any (<see cref="WakeSignal.TryConsume"/>). Asked once the batch was
    /// delivered in full without rows read ahead: when a wake-up (NOTIFY, census) came in meanwhile, the partition's
    /// next batch is read in the commit's round trip (<see cref="OutboxBatch.CompleteAndContinueAsync"/>) and handed
    /// on as <see cref="OutboxPassReport.Next"/>, instead of a separate read after the commit.
    /// </param>
    /// <param name="deferCompletion">
    /// A short batch delivered in full (no failure, no dead letter) and no wake-up pending: keep its transaction open and
    /// return it as <see cref="OutboxPassReport.Deferred"/> instead of completing it (<see cref="CompletionLinger"/>).
    /// </param>
    public async Task<OutboxPassReport> FinishAsync(OutboxRead read, CancellationToken cancellationToken, Func<bool>? takeWake = null, bool deferCompletion = false)
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

        var keepOpen = false;
        try
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
            // while the commands are being delivered, so the database and HTTP work overlap. Not while someone waits
            // for a session: this one then goes back to the pool after the batch.
            var readAhead = rows.Count >= store.Options.PartitionSelectLimit && read.Chain < MaxReadAheadChain && !store.SessionWanted
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
                else if (result.Failure is null && !store.SessionWanted && takeWake?.Invoke() == true)
                {
                    // Read from the head: no chain to cut.
                    nextChain = 0;
                    continued = await batch.CompleteAndContinueAsync(delivered, deadLetters, null, cancellationToken);
                }
                else if (deferCompletion && settled.Failure is null && deadLetters.Count == 0 && delivered.Count == rows.Count
                         && rows.Count < store.Options.PartitionSelectLimit && !store.SessionWanted)
                {
                    keepOpen = true;
                    return new OutboxPassReport(rows.Count, delivered.Count, 0, false, null, null)
                    {
                        Deferred = new DeferredCompletion(batch, delivered),
                    };
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
        finally
        {
            if (!keepOpen)
            {
                await batch.DisposeAsync();
            }
        }
    }

    /// <summary>
    /// A wake-up came while <paramref name="deferred"/> waited: its DELETE + COMMIT, BEGIN, the lock and the SELECT of the
    /// partition's head in one round trip. Never throws but for cancellation: a failure comes back as the read's error.
    /// </summary>
    public async Task<OutboxRead> ContinueDeferredAsync(DeferredCompletion deferred, CancellationToken cancellationToken)
    {
        var partition = deferred.Batch.Partition;
        try
        {
            var continued = await deferred.Batch.CompleteAndContinueAsync(deferred.DeliveredIds, [], null, cancellationToken);
            return new OutboxRead(partition, continued, continued is null, null);
        }
        catch (OutboxContinuationFailedException ex)
        {
            LogContinuationFailed(logger, Consumer, partition, ex.InnerException?.Message ?? ex.Message);
            return new OutboxRead(partition, null, false, ex.Message);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // Nothing was deleted: the rows are delivered again (at-least-once).
            await deferred.Batch.DisposeAsync();
            LogDatabaseError(logger, Consumer, partition, ex.Message);
            return new OutboxRead(partition, null, false, ex.Message);
        }
        catch
        {
            await deferred.Batch.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// No wake-up came within <see cref="CompletionLinger"/> (or the entity stops or pauses): <paramref name="deferred"/>'s
    /// DELETE + COMMIT alone. Null when done; otherwise the failed pass to report (nothing deleted, delivered again).
    /// </summary>
    public async Task<OutboxPassReport?> CompleteDeferredAsync(DeferredCompletion deferred, CancellationToken cancellationToken)
    {
        try
        {
            await deferred.Batch.CompleteAsync(deferred.DeliveredIds, [], cancellationToken);
            return null;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            LogDatabaseError(logger, Consumer, deferred.Batch.Partition, ex.Message);
            return new OutboxPassReport(deferred.DeliveredIds.Count, 0, 0, false, null, ex.Message);
        }
        finally
        {
            await deferred.Batch.DisposeAsync();
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
