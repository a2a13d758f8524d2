using Centrifugo.Actors.Delivery;
using Centrifugo.Actors.Partitions;
using Microsoft.Extensions.Logging;
using Npgsql;

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
/// One pass of Centrifugo's per-partition algorithm (lock, read in id order, deliver, delete) with batching and dead letters:
/// open the partition's transaction (lock + SELECT), decode, deliver in order, then in the same transaction
/// delete the completed prefix (moving poison rows to the dead-letter table) and commit. Rows after the first
/// command that did not complete stay in the outbox and are read again by the next pass, so order holds.
/// </summary>
internal sealed class OutboxBatchProcessor(
    OutboxStore store,
    ICentrifugoClient client,
    ILogger logger)
{
    // One per partition this node has run (bounded by num_partitions); a pass of a partition runs alone.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<int, DeliveryWindow> _windows = new();

    // Partitions stalled because the dead-letter copy does not fit the tables: they deliver nothing (a delivered batch
    // whose copy fails stays in the outbox and would be sent again on every retry) until the copy fits again.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<int, string> _deadLetterFaults = new();

    public string Consumer => store.ConsumerName;

    /// <summary>Someone waits for a session of this consumer: hand the partition's session back after its batch
    /// (<see cref="OutboxStore.SessionWanted"/>).</summary>
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
            OutboxLog.DatabaseError(logger, Consumer, partition, ex.Message);
            return new OutboxRead(partition, null, false, ex.Message);
        }
    }

    /// <summary>
    /// <see cref="FinishAsync"/>, but an unexpected exception (a bug, an input nothing foresaw) never fails the
    /// partition's stream, which would stop the entity and let the keeper restart it in a silent loop: it is logged
    /// at error level with consumer, partition and the row ids of the batch, the transaction is rolled back (nothing
    /// deleted), and the pass reports a failure, so it is counted and retried with the capped backoff.
    /// </summary>
    public async Task<OutboxPassReport> FinishSafelyAsync(
        OutboxRead read, CancellationToken cancellationToken, Func<bool>? takeWake = null, bool deferCompletion = false)
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
            OutboxLog.PassCrashed(logger, Consumer, read.Partition, first, last, e);
            if (read.Batch is { } batch)
            {
                await batch.DisposeAsync();
            }
            return new OutboxPassReport(rows?.Count ?? 0, 0, 0, false, null,
                $"internal error in the pass over ids {first}..{last}: {e.GetType().Name}: {e.Message}");
        }
    }

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
    public async Task<OutboxPassReport> FinishAsync(
        OutboxRead read, CancellationToken cancellationToken, Func<bool>? takeWake = null, bool deferCompletion = false)
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
            if (_deadLetterFaults.ContainsKey(partition) && await DeadLetterFaultAsync(partition, cancellationToken) is { } stalled)
            {
                return stalled;
            }
            if (rows.Count == 0)
            {
                try
                {
                    await batch.CompleteAsync([], [], cancellationToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
                {
                    OutboxLog.DatabaseError(logger, Consumer, partition, ex.Message);
                    return new OutboxPassReport(0, 0, 0, false, null, ex.Message);
                }
                return new OutboxPassReport(0, 0, 0, false, null, null);
            }

            // Decode every row; rows that cannot become a command are set aside in place (order kept).
            var decoded = new DecodeResult[rows.Count];
            Func<(OutboxRow Row, string Consumer, int MaxBytes), string>? key = store.Options.DeriveIdempotencyKey
                ? static m => IdempotencyKeys.ForOutbox(m.Consumer, m.Row.Partition, m.Row.Id)
                : null;
            for (var i = 0; i < rows.Count; i++)
            {
                decoded[i] = DecodeStep.Run((Row: rows[i], Consumer, store.Options.PayloadMaxBytes), Decode, key, out var thrown);
                if (thrown is not null)
                {
                    OutboxLog.DecodeCrashed(logger, Consumer, partition, rows[i].Id, thrown);
                }
            }

            var plan = PartitionPass.Plan(decoded);
            var commands = plan.Commands;

            // A full batch means more rows are likely waiting: read them on this connection, under the same lock,
            // while the commands are being delivered, so the database and HTTP work overlap. Not while someone waits
            // for a session: this one then goes back to the pool after the batch.
            var readAhead = store.IsFullRead(rows) && read.Chain < MaxReadAheadChain && !store.SessionWanted
                ? batch.ReadAheadAsync(rows[^1].Id, cancellationToken)
                : null;

            DeliveryResult result;
            var retried = 0;
            try
            {
                (result, retried) = commands.Count == 0
                    ? (new DeliveryResult([], null), 0)
                    : await DeliverAsync(batch, plan, cancellationToken);
            }
            finally
            {
                if (readAhead is not null)
                {
                    // Never leave a command running on the connection; its failure shows in the completion below.
                    await ((Task)readAhead).ContinueWith(static t => _ = t.Exception,
                        CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
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
                         && !store.IsFullRead(rows) && !store.SessionWanted)
                {
                    keepOpen = true;
                    return new OutboxPassReport(rows.Count, delivered.Count, 0, false, null, null)
                    {
                        Deferred = new DeferredCompletion(batch, delivered),
                        Retried = retried,
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
                    OutboxLog.DeadLettered(logger, Consumer, partition, dl.Id, dl.Reason);
                }
                OutboxLog.ContinuationFailed(logger, Consumer, partition, ex.InnerException?.Message ?? ex.Message);
                return new OutboxPassReport(rows.Count, delivered.Count, deadLetters.Count, false, settled.Failure, ex.Message);
            }
            catch (PostgresException ex)
                when (deadLetters.Count > 0 && ex.SqlState is PostgresErrorCodes.UndefinedColumn or PostgresErrorCodes.DatatypeMismatch)
            {
                // The dead-letter copy no longer fits the tables (a column dropped or retyped while running); nothing
                // was deleted. Rebuilt from the catalogue, the next pass writes it (this batch is delivered once more);
                // when it cannot be, the partition stalls instead of delivering the batch again and again.
                OutboxLog.DatabaseError(logger, Consumer, partition, ex.MessageText);
                _deadLetterFaults[partition] = ex.MessageText;
                return await DeadLetterFaultAsync(partition, cancellationToken)
                    ?? new OutboxPassReport(rows.Count, 0, 0, false, null, ex.MessageText);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                // Nothing was deleted: the rows are delivered again (at-least-once).
                OutboxLog.DatabaseError(logger, Consumer, partition, ex.Message);
                return new OutboxPassReport(rows.Count, 0, 0, false, null, ex.Message);
            }

            foreach (var dl in deadLetters)
            {
                OutboxLog.DeadLettered(logger, Consumer, partition, dl.Id, dl.Reason);
            }

            if (settled.Failure is { } failure)
            {
                var failedRow = rows[completedRows];
                if (failure.Kind == FailureKind.Configuration)
                {
                    OutboxLog.ConfigurationFault(logger, Consumer, partition, failedRow.Id, failure.Message);
                }
                else
                {
                    OutboxLog.TemporaryFailure(logger, Consumer, partition, failedRow.Id, failure.Message);
                }
            }

            return new OutboxPassReport(rows.Count, delivered.Count, deadLetters.Count, false, settled.Failure, null)
            {
                Next = continued is null ? null : new OutboxRead(partition, continued, false, null, nextChain),
                Retried = retried,
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
    /// Delivers the commands of <paramref name="plan"/>. A temporary failure after progress (the attempt completed a
    /// prefix) is retried at once from the failed command, in this pass: the rows stay locked and read, so the retry
    /// costs one request, not a commit, a new transaction and a new read, and the batch read ahead stays valid (at a 1-2 %
    /// error-100 rate nearly every batch holds a failed command). Order holds as across passes: nothing after the
    /// failed command is deleted before it completes. The first attempt that completes nothing ends the pass with its
    /// failure, and the partition's backoff takes over (<see cref="OutboxPassControl"/>).
    /// </summary>
    private async Task<(DeliveryResult Result, int Retried)> DeliverAsync(
        OutboxBatch batch, PassPlan plan, CancellationToken cancellationToken)
    {
        var window = _windows.GetOrAdd(batch.Partition, static _ => new DeliveryWindow());
        var commands = plan.Commands;
        var result = await client.DeliverAsync(commands, cancellationToken, batch.MaySend, window);
        if (result.Failure is not { Kind: FailureKind.Temporary } || result.Completed.Count == 0)
        {
            return (result, 0);
        }

        var completed = new List<CommandOutcome>(commands.Count);
        var retried = 0;
        while (result.Failure is { Kind: FailureKind.Temporary } failure && result.Completed.Count > 0)
        {
            completed.AddRange(result.Completed);
            retried++;
            OutboxLog.RetryingInPass(logger, Consumer, batch.Partition, batch.Rows[plan.CommandItems[completed.Count]].Id, failure.Message);
            result = await client.DeliverAsync(commands.Skip(completed.Count).ToList(), cancellationToken, batch.MaySend, window);
        }

        completed.AddRange(result.Completed);
        return (new DeliveryResult(completed, result.Failure), retried);
    }

    /// <summary>
    /// Re-checks a partition stalled by the dead-letter copy against the catalogue: null (and the stall lifted) when the
    /// copy fits the tables again, else the stalled pass's report (a configuration fault, logged, nothing delivered).
    /// </summary>
    private async Task<OutboxPassReport?> DeadLetterFaultAsync(int partition, CancellationToken cancellationToken)
    {
        string? fault;
        try
        {
            fault = await store.RefreshDeadLetterColumnsAsync(cancellationToken);
        }
        catch (NpgsqlException ex)
        {
            OutboxLog.DatabaseError(logger, Consumer, partition, ex.Message);
            return new OutboxPassReport(0, 0, 0, false, null, ex.Message);
        }
        if (fault is null)
        {
            if (_deadLetterFaults.TryRemove(partition, out _))
            {
                OutboxLog.DeadLetterCopyRebuilt(logger, Consumer, partition);
            }
            return null;
        }
        _deadLetterFaults[partition] = fault;
        OutboxLog.DeadLetterCopyStalled(logger, Consumer, partition, fault);
        return new OutboxPassReport(0, 0, 0, false, new DeliveryFailure(FailureKind.Configuration, fault), null);
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
            OutboxLog.ContinuationFailed(logger, Consumer, partition, ex.InnerException?.Message ?? ex.Message);
            return new OutboxRead(partition, null, false, ex.Message);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // Nothing was deleted: the rows are delivered again (at-least-once).
            await deferred.Batch.DisposeAsync();
            OutboxLog.DatabaseError(logger, Consumer, partition, ex.Message);
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
            OutboxLog.DatabaseError(logger, Consumer, deferred.Batch.Partition, ex.Message);
            return new OutboxPassReport(deferred.DeliveredIds.Count, 0, 0, false, null, ex.Message);
        }
        finally
        {
            await deferred.Batch.DisposeAsync();
        }
    }

    /// <summary>A row's command, or its rejection; a payload left in the database for its size is rejected by that size.</summary>
    private static DecodeResult Decode((OutboxRow Row, string Consumer, int MaxBytes) message) => message.Row.PayloadOmitted
        ? DecodeResult.Reject(string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"payload of {message.Row.PayloadBytes} bytes is over payload_max_bytes ({message.MaxBytes}): not read, not delivered"))
        : CommandDecoder.Decode(message.Row.Method, message.Row.Payload);
}
