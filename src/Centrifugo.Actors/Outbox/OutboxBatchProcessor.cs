using Centrifugo.Actors.Delivery;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Outbox;

/// <summary>An opened partition transaction, or why there is none (lock busy, database error).</summary>
internal sealed record OutboxRead(int Partition, OutboxBatch? Batch, bool LockBusy, string? Error);

/// <summary>What one pass over a partition did; drives the next wait (immediately, idle, backoff).</summary>
internal sealed record OutboxPassReport(
    int Read,
    int Delivered,
    int DeadLettered,
    bool LockBusy,
    DeliveryFailure? Failure,
    string? DatabaseError)
{
    public static OutboxPassReport Busy { get; } = new(0, 0, 0, true, null, null);

    public bool Failed => Failure is not null || DatabaseError is not null;
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
    public string Consumer => store.ConsumerName;

    /// <summary>Read then finish, as one call (tests, benchmarks).</summary>
    public async Task<OutboxPassReport> ProcessOnceAsync(int partition, CancellationToken cancellationToken) =>
        await FinishAsync(await ReadAsync(partition, cancellationToken), cancellationToken);

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

    /// <summary>Delivers what <paramref name="read"/> holds and completes (or rolls back) its transaction.</summary>
    public async Task<OutboxPassReport> FinishAsync(OutboxRead read, CancellationToken cancellationToken)
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
            var commands = new List<ApiCommand>(rows.Count);
            var commandRowIndex = new List<int>(rows.Count);
            var rejections = new string?[rows.Count];
            for (var i = 0; i < rows.Count; i++)
            {
                var decoded = CommandDecoder.Decode(rows[i].Method, rows[i].Payload);
                if (decoded.Command is { } command)
                {
                    commands.Add(command);
                    commandRowIndex.Add(i);
                }
                else
                {
                    rejections[i] = decoded.RejectReason ?? "rejected";
                }
            }

            var result = commands.Count == 0
                ? new DeliveryResult([], null)
                : await client.DeliverAsync(commands, cancellationToken);

            // Completed prefix in row terms: every row before the first command that did not complete.
            var completedRows = result.Failure is null || result.Completed.Count >= commandRowIndex.Count
                ? rows.Count
                : commandRowIndex[result.Completed.Count];

            var delivered = new List<long>(completedRows);
            var deadLetters = new List<DeadLetter>();
            var commandIndex = 0;
            for (var i = 0; i < completedRows; i++)
            {
                var row = rows[i];
                if (rejections[i] is { } reason)
                {
                    deadLetters.Add(new DeadLetter(row.Id, reason));
                    continue;
                }
                var outcome = result.Completed[commandIndex++];
                if (outcome.Delivered)
                {
                    delivered.Add(row.Id);
                }
                else
                {
                    deadLetters.Add(new DeadLetter(row.Id, outcome.Reason ?? $"centrifugo error {outcome.ErrorCode}"));
                }
            }

            try
            {
                await batch.CompleteAsync(delivered, deadLetters, cancellationToken);
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

            if (result.Failure is { } failure)
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

            return new OutboxPassReport(rows.Count, delivered.Count, deadLetters.Count, false, result.Failure, null);
        }
    }

    [LoggerMessage(EventId = 2001, Level = LogLevel.Warning,
        Message = "Outbox row moved to the dead-letter table: consumer {Consumer}, partition {Partition}, id {RowId}: {Reason}")]
    private static partial void LogDeadLettered(ILogger logger, string consumer, int partition, long rowId, string reason);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Warning,
        Message = "Temporary delivery failure, retrying with backoff: consumer {Consumer}, partition {Partition}, id {RowId}: {Reason}")]
    private static partial void LogTemporaryFailure(ILogger logger, string consumer, int partition, long rowId, string reason);

    [LoggerMessage(EventId = 2003, Level = LogLevel.Error,
        Message = "Partition stalled by a configuration fault (nothing deleted, readiness red): consumer {Consumer}, partition {Partition}, id {RowId}: {Reason}")]
    private static partial void LogConfigurationFault(ILogger logger, string consumer, int partition, long rowId, string reason);

    [LoggerMessage(EventId = 2004, Level = LogLevel.Warning,
        Message = "Database error, retrying with backoff: consumer {Consumer}, partition {Partition}: {Reason}")]
    private static partial void LogDatabaseError(ILogger logger, string consumer, int partition, string reason);
}
