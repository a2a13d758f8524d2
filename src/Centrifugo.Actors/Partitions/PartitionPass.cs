using Centrifugo.Actors.Delivery;

namespace Centrifugo.Actors.Partitions;

/// <summary>
/// What one pass over a partition did, whatever its source: read, finished (delivered or dead-lettered), and what
/// ended it. Drives the entity's state and counters (<see cref="PartitionProgress"/>) and its next wait.
/// </summary>
/// <param name="Read">Items the pass looked at (rows read, or records not finished before it).</param>
/// <param name="Failure">The delivery failure that ended the pass early (a temporary error or a configuration fault).</param>
/// <param name="SourceError">Another error that ended it (database error, internal error); null when none.</param>
internal record PassReport(int Read, int Delivered, int DeadLettered, DeliveryFailure? Failure, string? SourceError = null)
{
    public bool Failed => Failure is not null || SourceError is not null;

    /// <summary>Temporary failures the pass retried at once and got past (each a failed attempt, counted as an error).</summary>
    public int Retried { get; init; }
}

/// <summary>The commands of one pass, in order, and for each the index of the batch item it came from.</summary>
internal sealed record PassPlan(int Start, IReadOnlyList<ApiCommand> Commands, IReadOnlyList<int> CommandItems);

/// <summary>An item of the completed prefix that goes to the dead letters, with why.</summary>
internal readonly record struct ItemDeadLetter(int Index, string Reason);

/// <summary>
/// How a delivery settled the batch: items [start, <see cref="CompletedEnd"/>) are finished — each either
/// <see cref="Delivered"/> or in <see cref="DeadLetters"/> (in item order) — and the items from
/// <see cref="CompletedEnd"/> on are not (the first of them is the command that failed). <see cref="Failure"/> is
/// null exactly when the whole batch completed.
/// </summary>
internal sealed record PassSettlement(
    int CompletedEnd, IReadOnlyList<int> Delivered, IReadOnlyList<ItemDeadLetter> DeadLetters, DeliveryFailure? Failure);

/// <summary>
/// The partition entity's core step, shared by the outbox and Kafka sources: from a decoded batch, the ordered
/// commands to deliver (<see cref="Plan"/>), then, from what Centrifugo did with them, the completed prefix and which of
/// its items were delivered and which go to the dead letters (<see cref="Settle"/>). Items that could not become a
/// command are dead-lettered in place, so the order holds: nothing after the first command that did not complete is
/// finished. Pure: no I/O, no state; each source does its own reading, dead-letter writes and acknowledgement.
/// </summary>
internal static class PartitionPass
{
    /// <summary>
    /// The commands of items [<paramref name="start"/>, end) that are not <paramref name="finished"/> yet (an earlier
    /// pass delivered them or wrote their dead letter), in item order.
    /// </summary>
    public static PassPlan Plan(IReadOnlyList<DecodeResult> items, int start = 0, IReadOnlyList<bool>? finished = null)
    {
        ArgumentNullException.ThrowIfNull(items);
        var commands = new List<ApiCommand>(items.Count - start);
        var commandItems = new List<int>(items.Count - start);
        for (var i = start; i < items.Count; i++)
        {
            if (finished?[i] != true && items[i].Command is { } command)
            {
                commands.Add(command);
                commandItems.Add(i);
            }
        }

        return new PassPlan(start, commands, commandItems);
    }

    /// <summary>
    /// Splits <paramref name="result"/> (the delivery of <paramref name="plan"/>'s commands) into the completed prefix
    /// of <paramref name="items"/>: delivered items, dead letters (items that are no command, and commands Centrifugo
    /// refused for good), and where the prefix ends. Items already <paramref name="finished"/> are skipped.
    /// </summary>
    public static PassSettlement Settle(
        IReadOnlyList<DecodeResult> items, PassPlan plan, DeliveryResult result, IReadOnlyList<bool>? finished = null)
    {
        ArgumentNullException.ThrowIfNull(items);
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(result);
        var completedEnd = result.Failure is null || result.Completed.Count >= plan.CommandItems.Count
            ? items.Count
            : plan.CommandItems[result.Completed.Count];

        var delivered = new List<int>(completedEnd - plan.Start);
        var deadLetters = new List<ItemDeadLetter>();
        var commandIndex = 0;
        for (var i = plan.Start; i < completedEnd; i++)
        {
            if (finished?[i] == true)
            {
                continue;
            }

            if (items[i].Command is null)
            {
                deadLetters.Add(new ItemDeadLetter(i, items[i].RejectReason ?? "rejected"));
                continue;
            }

            var outcome = result.Completed[commandIndex++];
            if (outcome.Delivered)
            {
                delivered.Add(i);
            }
            else
            {
                deadLetters.Add(new ItemDeadLetter(i, outcome.Reason ?? $"centrifugo error {outcome.ErrorCode}"));
            }
        }

        return new PassSettlement(completedEnd, delivered, deadLetters, completedEnd < items.Count ? result.Failure : null);
    }
}
